/**
 * The three Redis connections of a node, and what their state changes mean:
 * - `cmd`: request/response commands (reserve, release, handshakes, strikes,
 *   heartbeat), no auto-pipelining so each call has the lowest latency;
 * - `pub`: auto-pipelined, for everything that publishes (send, broadcast,
 *   liveness pings); one connection, so frames from one sender keep their order;
 * - `sub`: subscribed to this node's channel and the broadcast channel.
 *
 * No command waits in an offline queue or longer than `commandTimeoutMs`.
 * Loss and recovery are reported through `ConnectionEvents` once the node runs.
 */
import { Redis, type RedisOptions } from "ioredis";
import { withDeadline } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import { PresenceUnavailable } from "../presence.ts";
import { type ScriptName, scripts } from "./scripts.ts";

export type Kind = "cmd" | "pub" | "sub";
export type ScriptArg = string | number | Uint8Array;

export interface ConnectionEvents {
  /** A running node's connection dropped; the client library is reconnecting it. */
  lost(kind: Kind): void;
  /** A running node's connection is back (Redis may have restarted empty). */
  ready(kind: Kind): void;
}

export interface ConnectionOptions {
  url: string;
  nodeId: string;
  commandTimeoutMs: number;
  log: LogFn;
}

type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

/** Wraps any failure as the error the Presence interface promises. */
export function unavailable(e: unknown): PresenceUnavailable {
  if (e instanceof PresenceUnavailable) return e;
  return new PresenceUnavailable(`presence store unavailable: ${errorMessage(e)}`, { cause: e });
}

export class Connections {
  readonly cmd: Redis;
  readonly pub: Redis;
  readonly sub: Redis;
  readonly #log: LogFn;
  readonly #nodeId: string;
  #events: ConnectionEvents | null = null;
  #lost: Record<Kind, boolean> = { cmd: false, pub: false, sub: false };

  constructor(opts: ConnectionOptions) {
    this.#log = opts.log;
    this.#nodeId = opts.nodeId;
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: opts.commandTimeoutMs,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: Math.max(1000, 2 * opts.commandTimeoutMs),
      // Quick reconnects: 100, 200, 400, 800, then every 1000 ms.
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    };
    const name = (kind: Kind) => `chatos-${opts.nodeId}-${kind}`;
    this.cmd = new Redis(opts.url, { ...base, connectionName: name("cmd") });
    this.pub = new Redis(opts.url, {
      ...base,
      enableAutoPipelining: true,
      connectionName: name("pub"),
    });
    this.sub = new Redis(opts.url, { ...base, autoResubscribe: true, connectionName: name("sub") });
    for (const [script, def] of Object.entries(scripts)) this.cmd.defineCommand(script, def);
    this.pub.defineCommand("sendBatch", scripts.sendBatch);
    this.#watch("cmd", this.cmd);
    this.#watch("pub", this.pub);
    this.#watch("sub", this.sub);
  }

  /** All three connected; rejects with PresenceUnavailable after `ms`. */
  connect(ms: number): Promise<void> {
    return withDeadline(
      Promise.all([this.cmd, this.pub, this.sub].map(connected)).then(() => {}),
      ms,
      () => new PresenceUnavailable("timed out connecting to redis"),
    );
  }

  /** From now on, report losses and recoveries. */
  run(events: ConnectionEvents): void {
    this.#events = events;
  }

  get allReady(): boolean {
    return this.cmd.status === "ready" && this.pub.status === "ready" &&
      this.sub.status === "ready";
  }

  /** Whether `kind` is down (reported lost and not ready again). */
  isLost(kind: Kind): boolean {
    return this.#lost[kind];
  }

  /** Runs a script on `cmd` (or `sendBatch` on `pub`); rejects with what ioredis rejects. */
  script(name: ScriptName, ...args: ScriptArg[]): Promise<unknown> {
    const conn = name === "sendBatch" ? this.pub : this.cmd;
    return (conn as unknown as Record<ScriptName, ScriptFn>)[name](...args);
  }

  /** Drops every socket at once, releasing nothing. */
  disconnect(): void {
    this.#events = null;
    for (const c of [this.cmd, this.pub, this.sub]) c.disconnect();
  }

  /** Closes the three connections politely, each within a second. */
  async quit(): Promise<void> {
    this.#events = null;
    await Promise.all([quit(this.cmd), quit(this.pub), quit(this.sub)]);
  }

  #watch(kind: Kind, c: Redis): void {
    c.on("error", (e: unknown) => {
      // ioredis reports every failed reconnect attempt; say it loudly once per outage.
      const loud = this.#events !== null && !this.#lost[kind];
      this.#log(loud ? "warn" : "debug", `redis ${kind} error`, { error: errorMessage(e) });
    });
    c.on("close", () => {
      if (!this.#events || this.#lost[kind]) return;
      this.#lost[kind] = true;
      this.#log("warn", `redis ${kind} connection lost; reconnecting`, { node: this.#nodeId });
      this.#events.lost(kind);
    });
    c.on("ready", () => {
      if (!this.#events) return;
      this.#lost[kind] = false;
      this.#log("info", `redis ${kind} connection ready again`, { node: this.#nodeId });
      this.#events.ready(kind);
    });
  }
}

function connected(c: Redis): Promise<void> {
  const ready = new Promise<void>((resolve) => c.once("ready", () => resolve()));
  c.connect().catch(() => {}); // failures surface as 'error' events and retries
  return ready;
}

async function quit(c: Redis): Promise<void> {
  if (c.status === "end") return;
  if (c.status === "reconnecting" || c.status === "wait") {
    c.disconnect(); // no socket: nothing to wait for
    return;
  }
  const ended = new Promise<void>((resolve) => c.once("end", () => resolve()));
  const late = () => new Error("redis connection did not close in time");
  if (c.status === "ready") {
    await withDeadline(c.quit(), 1000, late).catch(() => c.disconnect());
  } else {
    c.disconnect();
  }
  await withDeadline(ended, 1000, late).catch(() => c.disconnect());
}
