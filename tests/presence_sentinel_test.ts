/**
 * RedisPresence under Sentinel: a primary, a replica and three sentinels
 * started by this file. The shared contract, then a failover: kill -9 of the
 * primary while three nodes hold pseudos.
 */
import assert from "node:assert/strict";
import { parseHostPorts, type RedisTarget } from "../src/presence/redis.ts";
import { RecordingInbox } from "./helpers/presence_node.ts";
import { assertServesAfterFailover } from "./helpers/failover_checks.ts";
import { type SentinelSet, startSentinelSet } from "./helpers/redis_server.ts";
import {
  contractOver,
  log,
  namedTests,
  node,
  rejectsUnavailable,
  uniq,
  until,
} from "./helpers/presence_testkit.ts";

let shared: Promise<SentinelSet> | null = null;
const sentinelSet = () => shared ??= startSentinelSet();

async function target(): Promise<RedisTarget> {
  const set = await sentinelSet();
  const sentinels = parseHostPorts(set.sentinels);
  if (typeof sentinels === "string") throw new Error(sentinels);
  return { mode: "sentinel", sentinels, name: set.name };
}

contractOver("sentinel", target);

const test = namedTests("sentinel presence");

test("deno task presence finds the primary through the sentinels", async () => {
  const set = await sentinelSet();
  const p = await node(await target(), { clientAddress: "127.0.0.1:4344" });
  try {
    const u = uniq("opss");
    await p.login(u, new RecordingInbox());
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "--allow-net", "--allow-env", "src/ops/presence.ts"],
        ...["--redis-sentinels", set.sentinels, "--redis-sentinel-name", set.name],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(text.includes("127.0.0.1:4344"), text);
    assert.match(text, new RegExp(`${u}\\s+${p.nodeId}`));
  } finally {
    await p.close();
  }
});

/** From the primary's death to every node ready again: detection 1 s, election, reconnects. */
const FAILOVER_BOUND_MS = 12_000;

test("kill -9 of the primary: calls fail fast, then a replica takes over, pseudos held once", async () => {
  const set = await sentinelSet();
  const t = await target();
  const nodes = await Promise.all([node(t), node(t), node(t)]);
  const [p, q, r] = nodes;
  try {
    const alice = uniq("alice"), bob = uniq("bob");
    const ia = new RecordingInbox(), ib = new RecordingInbox();
    assert.equal(await p.login(alice, ia), "ok");
    assert.equal(await q.login(bob, ib), "ok");
    const oldPrimary = await set.primaryPort();
    const victim = set.servers.find((s) => s.port === oldPrimary)!;
    const t0 = Date.now();
    await victim.kill();
    // While no primary answers: an answer within the command timeout, never a hang.
    await rejectsUnavailable(r.login(uniq("during"), new RecordingInbox()), 2500, "reserve");
    await until("a new primary", FAILOVER_BOUND_MS, async () => {
      return (await set.primaryPort()) !== oldPrimary;
    });
    await until("every node ready again", FAILOVER_BOUND_MS, () => nodes.every((n) => n.ready));
    const took = Date.now() - t0;
    assert.ok(took < FAILOVER_BOUND_MS, `recovered in ${took} ms`);
    log("info", "sentinel failover: every node ready again", { tookMs: took });
    await assertServesAfterFailover([p, q, r], alice, bob, ia, ib);
  } finally {
    for (const n of nodes) await n.close();
  }
});

// Runs last: the shared servers must not outlive the run (they are also killed on unload).
test("stop the sentinel set", async () => {
  await (await shared)?.stop();
  shared = null;
});
