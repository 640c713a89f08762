/** What the Redis presence test files share: unique names, a kept log, polling, nodes. */
import assert from "node:assert/strict";
import { eventually } from "./harness.ts";
import type { LogFn } from "../../src/lib/log.ts";
import { PresenceUnavailable } from "../../src/presence/presence.ts";
import type { RedisPresenceSettings, RedisTarget } from "../../src/presence/redis.ts";
import { BreakableRedisNode } from "./redis_presence_probe.ts";
import { presenceContract } from "../contract/mod.ts";

export const bytes = (...xs: number[]) => Uint8Array.from(xs);
let seq = 0;
export const uniq = (base: string) => `${base}${++seq}_${Math.random().toString(36).slice(2, 6)}`;

/** Log lines kept for assertions; printed only with CHATOS_TEST_LOG=1. */
export const logLines: string[] = [];
const verbose = Deno.env.get("CHATOS_TEST_LOG") === "1";
export const log: LogFn = (level, msg, fields) => {
  const line = `${level} ${msg} ${fields ? JSON.stringify(fields) : ""}`;
  logLines.push(line);
  if (logLines.length > 2000) logLines.splice(0, 1000);
  if (verbose) console.error(line);
};

/**
 * `test(name, fn)` for one file's Redis tests: named `${prefix}: ${name}`, with
 * the op and resource sanitizers off (ioredis's sockets and timers outlive a test by design).
 */
export function namedTests(prefix: string): (name: string, fn: () => Promise<void>) => void {
  return (name, fn) =>
    Deno.test({ name: `${prefix}: ${name}`, sanitizeOps: false, sanitizeResources: false, fn });
}

/** The shared contract over up to three nodes on `target` (a Sentinel set, a Redis Cluster). */
export function contractOver(name: string, target: () => Promise<RedisTarget>): void {
  presenceContract({
    name,
    maxNodes: 3,
    async nodes(n) {
      const t = await target();
      return await Promise.all(Array.from({ length: n }, () => node(t)));
    },
  });
}

/** A started node on `where` (a redis:// URL or a target). */
export function node(
  where: string | RedisTarget,
  extra: Partial<RedisPresenceSettings> = {},
): Promise<BreakableRedisNode> {
  const settings = {
    nodeId: uniq("n"),
    bridge: `127.0.0.1:${7000 + (seq % 1000)}`,
    clientAddress: "127.0.0.1:1234",
    log,
    ...extra,
  };
  return BreakableRedisNode.start(
    typeof where === "string" ? { url: where, ...settings } : { target: where, ...settings },
  );
}

/** Polls `fn` until true (harness.ts's `eventually`, what first); an error thrown by `fn` fails. */
export function until(what: string, ms: number, fn: () => boolean | Promise<boolean>) {
  return eventually(fn, ms, what);
}

export async function rejectsUnavailable(p: unknown, withinMs: number, what: string) {
  const t0 = Date.now();
  await assert.rejects(Promise.resolve(p), PresenceUnavailable, what);
  const took = Date.now() - t0;
  assert.ok(took <= withinMs, `${what}: rejected after ${took} ms, expected <= ${withinMs}`);
}
