/**
 * The three Redis connections of a node, and what their state changes mean:
 * - `cmd`: request/response commands (reserve, release, handshakes, strikes,
 *   heartbeat), no auto-pipelining so each call has the lowest latency;
 * - `pub`: auto-pipelined, for everything that publishes (send, broadcast,
 *   liveness pings); one connection, so frames from one sender keep their order;
 * - `sub`: subscribed to this node's channel and the broadcast channel.
 *
 * No command waits in an offline queue or longer than `commandTimeoutMs`.
 * On a Redis Cluster, "ready" also needs a connected socket to the primary of
 * every slot in cmd's and pub's slot maps (shards.ts).
 * Loss and recovery are reported through `ConnectionEvents` once the node runs.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { sleep, withDeadline } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import { PresenceUnavailable } from "../presence.ts";
import { type ScriptName, scripts } from "./scripts.ts";
import { ShardRoutes } from "./shards.ts";
import type { RedisTarget } from "./target.ts";

export type Kind = "cmd" | "pub" | "sub";
const ERROR_LOG_INTERVAL_MS = 10_000;
export type ScriptArg = string | number | Uint8Array;

export interface ConnectionEvents {
  /** A running node's connection dropped; the client library is reconnecting it. */
  lost(kind: Kind): void;
  /** A running node's connection is back (Redis may have restarted empty). */
  ready(kind: Kind): void;
}

export interface ConnectionOptions {
  target: RedisTarget;
  nodeId: string;
  commandTimeoutMs: number;
  log: LogFn;
}

type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

/** One Redis, or a Redis Cluster: ioredis gives both the same command methods. */
export type Client = Redis | Cluster;

/** Wraps any failure as the error the Presence interface promises. */
export function unavailable(e: unknown): PresenceUnavailable {
  if (e instanceof PresenceUnavailable) return e;
  return new PresenceUnavailable(`presence store unavailable: ${errorMessage(e)}`, { cause: e });
}

export class Connections {
  readonly cmd: Client;
  readonly pub: Client;
  readonly sub: Client;
  /** Redis Cluster: per-node channels are sharded (SSUBSCRIBE, SPUBLISH). */
  readonly cluster: boolean;
  readonly #log: LogFn;
  readonly #nodeId: string;
  /** Redis Cluster only: cmd's and pub's sockets to each primary. */
  readonly #shards: ShardRoutes | null;
  #events: ConnectionEvents | null = null;
  #lost: Record<Kind, boolean> = { cmd: false, pub: false, sub: false };
  #loudErrorAt: Record<Kind, number> = { cmd: -Infinity, pub: -Infinity, sub: -Infinity };

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
    const t = opts.target;
    this.cluster = t.mode === "cluster";
    const open = (o: RedisOptions & Partial<ClusterOptions>): Client =>
      t.mode === "cluster"
        ? openCluster(t.seeds, base, o)
        : t.mode === "single"
        ? new Redis(t.url, { ...base, ...o })
        : new Redis({
          ...base,
          ...o,
          sentinels: t.sentinels,
          name: t.name,
          role: "master",
          // Reconnect as soon as the sentinels announce a new primary, not when the old one's
          // socket finally fails.
          failoverDetector: true,
          sentinelRetryStrategy: (times: number) => Math.min(100 * times, 1000),
        });
    this.cmd = open({ connectionName: name("cmd") });
    this.pub = open({ commandTimeout: undefined, connectionName: name("pub") });
    this.sub = open({
      autoResubscribe: true,
      shardedSubscribers: true,
      connectionName: name("sub"),
    });
    for (const [script, def] of Object.entries(scripts)) this.cmd.defineCommand(script, def);
    this.#shards = this.cmd instanceof Cluster && this.pub instanceof Cluster
      ? new ShardRoutes([this.cmd, this.pub], opts.log)
      : null;
    this.#watch("cmd", this.cmd);
    this.#watch("pub", this.pub);
    this.#watch("sub", this.sub);
  }

  /**
   * All three connected (Redis Cluster: cmd and pub to every primary too, so a started node is
   * ready); rejects with PresenceUnavailable after about `ms`.
   */
  async connect(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    await withDeadline(
      Promise.all([this.cmd, this.pub, this.sub].map(connected)),
      ms,
      () => new PresenceUnavailable("timed out connecting to redis"),
    );
    while (!this.shardsReady) {
      if (Date.now() >= deadline) {
        throw new PresenceUnavailable("timed out connecting to every redis cluster primary");
      }
      await this.#shards!.follow();
      if (!this.shardsReady) await sleep(100);
    }
  }

  /** From now on, report losses and recoveries. */
  run(events: ConnectionEvents): void {
    this.#events = events;
  }

  get allReady(): boolean {
    return this.cmd.status === "ready" && this.pub.status === "ready" &&
      this.sub.status === "ready" && this.shardsReady;
  }

  /**
   * Redis Cluster: cmd and pub each have a connected socket to the primary of every slot, and
   * their slot maps were read since the last failover (always true elsewhere).
   */
  get shardsReady(): boolean {
    return this.#shards?.ready ?? true;
  }

  /** Redis Cluster: reads the slot maps again and opens the primaries' sockets (not awaited). */
  followShards(): void {
    this.#shards?.follow();
  }

  /** Redis Cluster failed over: not ready until the slot maps are read again. */
  slotsMoved(): void {
    this.#shards?.stale();
  }

  /**
   * A command met MOVED: the map was stale. ioredis reads it again itself only when every command
   * of an auto-pipelined batch failed alike, so read it here too.
   */
  redirected(e: unknown): void {
    if (/\bMOVED \d/.test(errorMessage(e))) this.followShards();
  }

  /** Whether `kind` is down (reported lost and not ready again). */
  isLost(kind: Kind): boolean {
    return this.#lost[kind];
  }

  /** Runs a script on `cmd`; rejects with what ioredis rejects. */
  script(name: ScriptName, ...args: ScriptArg[]): Promise<unknown> {
    return (this.cmd as unknown as Record<ScriptName, ScriptFn>)[name](...args);
  }

  /** Publishes on a node's channel: sharded on Redis Cluster. */
  publishTo(channel: string, payload: Uint8Array): Promise<number> {
    return this.cluster
      ? this.pub.spublish(channel, payload as Buffer) as Promise<number>
      : this.pub.publish(channel, payload as Buffer);
  }

  /** Subscribes `sub` to these channels: per-node channels sharded on Redis Cluster. */
  subscribe(own: string, broadcast: string): Promise<unknown> {
    return this.cluster ? this.sub.ssubscribe(own) : this.sub.subscribe(own, broadcast);
  }

  /** Subscribes `sub` to per-user channels (sharded on Redis Cluster). */
  listen(channels: string[]): Promise<unknown> {
    return this.cluster ? this.sub.ssubscribe(...channels) : this.sub.subscribe(...channels);
  }

  /** Unsubscribes `sub` from per-user channels. */
  unlisten(channels: string[]): Promise<unknown> {
    return this.cluster ? this.sub.sunsubscribe(...channels) : this.sub.unsubscribe(...channels);
  }

  /**
   * Redis Cluster's current epoch, which grows with every failover (null elsewhere): a change
   * means a shard may have lost its last writes, so reservations are written again.
   */
  async clusterEpoch(): Promise<number | null> {
    if (!(this.cmd instanceof Cluster)) return null;
    const info = String(await this.cmd.cluster("INFO"));
    const m = info.match(/cluster_current_epoch:(\d+)/);
    return m ? Number(m[1]) : null;
  }

  /** Drops every socket at once, releasing nothing. */
  disconnect(): void {
    this.#events = null;
    this.#shards?.stop();
    for (const c of [this.cmd, this.pub, this.sub]) c.disconnect();
  }

  /** Closes the three connections politely, each within a second. */
  async quit(): Promise<void> {
    this.#events = null;
    this.#shards?.stop();
    await Promise.all([quit(this.cmd), quit(this.pub), quit(this.sub)]);
  }

  #watch(kind: Kind, c: Client): void {
    c.on("error", (e: unknown) => {
      // ioredis reports every failed reconnect attempt (and Cluster every failed shard, without
      // a 'close'): say it loudly once per outage, and at most every 10 s.
      const now = performance.now();
      const loud = this.#events !== null && !this.#lost[kind] &&
        now - this.#loudErrorAt[kind] > ERROR_LOG_INTERVAL_MS;
      if (loud) this.#loudErrorAt[kind] = now;
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
      // A cluster client that reconnected opens its primaries' sockets only on demand: now.
      if (kind !== "sub") this.followShards();
      this.#log("info", `redis ${kind} connection ready again`, { node: this.#nodeId });
      this.#events.ready(kind);
    });
  }
}

function openCluster(
  seeds: { host: string; port: number }[],
  base: RedisOptions,
  o: RedisOptions & Partial<ClusterOptions>,
): Cluster {
  const { retryStrategy, lazyConnect: _, ...perNode } = base;
  const { enableAutoPipelining, shardedSubscribers, connectionName, ...rest } = o;
  return new Cluster(seeds, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: "master",
    enableAutoPipelining,
    shardedSubscribers,
    clusterRetryStrategy: retryStrategy,
    // During a failover: retry a command on a moved or down slot a few times, then fail.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 8,
    slotsRefreshTimeout: 1000,
    redisOptions: { ...perNode, ...rest, connectionName },
  });
}

function connected(c: Client): Promise<void> {
  const ready = new Promise<void>((resolve) => c.once("ready", () => resolve()));
  c.connect().catch(() => {}); // failures surface as 'error' events and retries
  return ready;
}

async function quit(c: Client): Promise<void> {
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
