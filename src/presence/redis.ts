/**
 * RedisPresence: the Presence store for a cluster of ChatOS nodes sharing one
 * Redis. Schema and operations: docs/REDIS.md. This file composes the parts
 * under ./redis/:
 * - connections.ts: the three connections (cmd, pub, sub) and their events;
 * - single_topology.ts, cluster_topology.ts: the Redis side of each operation, per topology
 *   (one Redis or Sentinel: any-key scripts; Redis Cluster: one slot per step);
 * - lease.ts: the lease, heartbeat, resync after reconnects, pruning;
 * - census.ts: the other nodes' user counts, read on the heartbeat (userCount);
 * - reservations.ts: reserve, release, and writing them again;
 * - probe.ts: the liveness ping through pub/sub;
 * - relay.ts: remote sends, broadcasts, and receiving (envelope.ts: the bytes);
 * - handshakes.ts: handshake scripts, strikes included (scripts.ts, lua/: the scripts).
 *
 * Failure model: no command waits in an offline queue or longer than
 * `commandTimeoutMs`; every failure rejects with PresenceUnavailable. After a
 * reconnect the lease and every local reservation are written again, since
 * Redis may have come back empty.
 */
import type { HandshakeKey } from "../protocol/frames.ts";
import type { LogFn } from "../lib/log.ts";
import { LocalUsers } from "./local_users.ts";
import {
  bareClaim,
  type Claim,
  type Inbox,
  type LinkEndpoint,
  type Presence,
  PresenceUnavailable,
  type RelayStats,
  type ReserveResult,
  type StoreHealth,
} from "./presence.ts";
import { Connections, type Kind, unavailable } from "./redis/connections.ts";
import type { RedisTarget } from "./redis/target.ts";
import { RedisHandshakeRegistry } from "./redis/handshake_registry.ts";
import { Census } from "./redis/census.ts";
import { Lease } from "./redis/lease.ts";
import { Probe } from "./redis/probe.ts";
import { Relay } from "./redis/relay.ts";
import { Reservations } from "./redis/reservations.ts";
import { ClusterTopology } from "./redis/cluster_topology.ts";
import { SingleTopology } from "./redis/single_topology.ts";
import type { RedisTopology } from "./redis/topology.ts";
import { channels, keys, NODE_ID_PATTERN } from "./redis/schema.ts";
import type { ScriptName } from "./redis/scripts.ts";

/** Where Redis is: `url` (redis://[user:password@]host:port[/db]) or a `target`. */
export type RedisLocation = { url: string; target?: never } | { target: RedisTarget; url?: never };

export type RedisPresenceOptions = RedisLocation & RedisPresenceSettings;

export interface RedisPresenceSettings {
  /** This node's id: 1–64 of [A-Za-z0-9_.-] (it is part of key names). */
  nodeId: string;
  /** This node's bridge address "host:port", stored in the lease. */
  bridge: string;
  /** The address clients connect to, for operators (stored in the lease). */
  clientAddress?: string;
  /** How long the lease lives without a heartbeat. Default 3000. */
  leaseMs?: number;
  /** Heartbeat period. Default 1000. */
  heartbeatMs?: number;
  /** Longest wait for any one Redis command. Default 1000. */
  commandTimeoutMs?: number;
  /**
   * Longest wait for Redis at start-up before createRedisPresence rejects. Default 5000. If
   * another process holds this node id's lease, start-up waits up to leaseMs + 500 ms for it to
   * lapse (a crashed predecessor) before failing.
   */
  connectTimeoutMs?: number;
  /** Liveness ping period on the pub/sub path. Default 1000. */
  probeIntervalMs?: number;
  /** A subscriber that received no ping for this long is reconnected. Default 3000. */
  probeTimeoutMs?: number;
  log?: LogFn;
  /**
   * Called when, after Redis trouble, a pseudo this node still serves turned
   * out to be held by another live node. The local binding is left in place;
   * the server should end that user's session.
   */
  onLost?: (pseudo: string) => void;
}

const defaultLog: LogFn = (level, msg, fields) => {
  if (level === "error" || level === "warn") {
    console.error(`[presence] ${level}: ${msg}`, fields ?? "");
  }
};

/** Starts a RedisPresence: connects, takes the lease, subscribes. Rejects with PresenceUnavailable. */
export { parseHostPorts, type RedisTarget, redisTarget } from "./redis/target.ts";

export async function createRedisPresence(opts: RedisPresenceOptions): Promise<RedisPresence> {
  const p = new RedisPresence(opts);
  await p.start();
  return p;
}

export class RedisPresence implements Presence, StoreHealth {
  readonly nodeId: string;
  readonly bridge: string;
  readonly clientAddress: string;
  readonly users = new LocalUsers();
  readonly stats: RelayStats = { publishes: 0, receives: 0, reconnects: 0, lastRttMs: 0 };

  protected readonly conns: Connections;
  protected readonly lease: Lease;
  protected readonly probe: Probe;
  readonly #reservations: Reservations;
  readonly #census: Census;
  readonly #relay: Relay;
  readonly #handshakes: RedisHandshakeRegistry;
  readonly #log: LogFn;
  readonly #connectTimeoutMs: number;
  #running = false;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** Use createRedisPresence(); a bare instance is not connected until start(). */
  constructor(opts: RedisPresenceOptions) {
    if (!NODE_ID_PATTERN.test(opts.nodeId)) {
      throw new TypeError(
        `invalid node id ${JSON.stringify(opts.nodeId)}: use 1-64 of [A-Za-z0-9_.-]`,
      );
    }
    const nodeId = this.nodeId = opts.nodeId;
    this.bridge = opts.bridge;
    this.clientAddress = opts.clientAddress ?? "";
    const log = this.#log = opts.log ?? defaultLog;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    const conns = this.conns = new Connections({
      target: opts.target ?? { mode: "single", url: opts.url! },
      nodeId,
      commandTimeoutMs: opts.commandTimeoutMs ?? 1000,
      log,
    });
    const users = this.users;
    // A unique id of this process: the lease's owner, and part of every fence and strike id.
    const instance = crypto.randomUUID();
    // The cluster store reads the lease's fence when it runs, after construction.
    const store: RedisTopology = conns.cluster
      ? new ClusterTopology(conns, nodeId, instance, () => this.lease.fence)
      : new SingleTopology(conns, nodeId, instance);
    const reservations = this.#reservations = new Reservations({
      nodeId,
      store,
      users,
      log,
      onNoLease: () => this.lease.lapsed(),
      onLost: opts.onLost,
    });
    const census = this.#census = new Census(conns.cmd, nodeId, log);
    this.lease = new Lease({
      nodeId,
      bridge: this.bridge,
      clientAddress: this.clientAddress,
      leaseMs: opts.leaseMs ?? 3000,
      heartbeatMs: opts.heartbeatMs ?? 1000,
      instance,
    }, {
      conns,
      store,
      users,
      reservations,
      census,
      log,
      onFailover: () => this.probe.subscriberReady(),
    });
    this.probe = new Probe(
      {
        nodeId,
        channel: channels.to(nodeId),
        intervalMs: opts.probeIntervalMs ?? 1000,
        timeoutMs: opts.probeTimeoutMs ?? 3000,
      },
      conns,
      this.stats,
      log,
    );
    this.#relay = new Relay({
      nodeId,
      conns,
      store,
      users,
      reservations,
      probe: this.probe,
      stats: this.stats,
      log,
    });
    this.#handshakes = new RedisHandshakeRegistry(
      (name, ...args) => this.#call(name, ...args),
      nodeId,
    );
  }

  /**
   * Redis reachable on all three connections, lease held, reservations re-asserted since the
   * last reconnect, and pub/sub proven by a recent ping.
   */
  get health(): StoreHealth {
    return this;
  }

  get ready(): boolean {
    return this.#running && this.lease.held && this.conns.allReady && this.probe.fresh;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Connects, takes the lease, subscribes, proves pub/sub with one ping. */
  async start(): Promise<void> {
    const deadline = Date.now() + this.#connectTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    try {
      // ioredis keeps retrying a refused connection; wait for all three up to the deadline.
      await this.conns.connect(left());
      await this.lease.acquire(deadline);
      await this.#relay.subscribe();
      await this.probe.first(left());
    } catch (e) {
      this.#closed = true;
      this.conns.disconnect();
      throw unavailable(e);
    }
    this.#running = true;
    this.conns.run({
      lost: (k) => this.#connectionLost(k),
      ready: (k) => this.#connectionReady(k),
    });
    this.lease.start();
    this.probe.start();
    this.#log("info", "presence ready", { node: this.nodeId, bridge: this.bridge });
  }

  /** Releases this node's users and lease at once, then closes the connections. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const wasRunning = this.#running;
    this.probe.stop();
    this.lease.stop();
    this.#closed = true;
    this.#running = false;
    this.#reservations.close();
    if (wasRunning) {
      try {
        await this.lease.release();
      } catch (e) {
        this.#log("warn", "close: could not release reservations; they lapse with the lease", {
          error: unavailable(e).message,
        });
      }
    }
    await this.conns.quit();
  }

  #connectionLost(kind: Kind): void {
    if (kind === "cmd") this.lease.connectionLost();
  }

  #connectionReady(kind: Kind): void {
    this.stats.reconnects++;
    if (kind === "cmd") this.lease.connectionReady();
    else if (kind === "sub") {
      this.probe.subscriberReady();
      // autoResubscribe restores what ioredis knew; this also covers a lost subscription.
      this.#relay.subscribe().catch((e: unknown) =>
        this.#log("warn", "resubscribe failed", { error: unavailable(e).message })
      );
    }
  }

  // ---------------------------------------------------------------- Presence

  reserve(pseudo: string, inbox: Inbox, claim: Claim = bareClaim(pseudo)): Promise<ReserveResult> {
    if (this.#closed) return Promise.reject(new PresenceUnavailable("presence closed"));
    return this.#reservations.reserve(pseudo, inbox, claim);
  }

  async clientOf(pseudo: string): Promise<string | null> {
    const local = this.#reservations.localClient(pseudo);
    if (local !== undefined) return local || null;
    if (this.#closed) throw new PresenceUnavailable("presence closed");
    try {
      return (await this.conns.cmd.hget(keys.profile(pseudo), "client")) || null;
    } catch (e) {
      throw unavailable(e);
    }
  }

  release(pseudo: string, inbox: Inbox): Promise<void> {
    return this.#reservations.release(pseudo, inbox);
  }

  /** This node's users now, plus the other nodes' as of the last heartbeat (census.ts). */
  userCount(): number {
    return this.users.size + this.#census.others;
  }

  send(to: string, frame: Uint8Array): boolean | Promise<boolean> {
    const local = this.users.get(to);
    if (local) {
      local.deliver(frame);
      return true;
    }
    if (this.#closed) return Promise.reject(new PresenceUnavailable("presence closed"));
    return this.#relay.send(to, frame);
  }

  broadcast(frame: Uint8Array, except: string): Promise<void> {
    this.users.fanOut(frame, except);
    if (this.#closed) return Promise.reject(new PresenceUnavailable("presence closed"));
    return this.#relay.broadcast(frame, except);
  }

  openHandshake(key: HandshakeKey, ttlMs: number): Promise<boolean> {
    return this.#handshakes.open(key, ttlMs);
  }

  cancelHandshake(key: HandshakeKey): Promise<boolean> {
    return this.#handshakes.cancel(key);
  }

  acceptHandshake(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean> {
    return this.#handshakes.accept(key, endpoint);
  }

  claimHandshake(key: HandshakeKey): Promise<LinkEndpoint | null> {
    return this.#handshakes.claim(key);
  }

  cancelPair(a: string, b: string): Promise<HandshakeKey[]> {
    return this.#handshakes.cancelPair(a, b);
  }

  strikePair(a: string, b: string, budget: number): Promise<HandshakeKey[]> {
    return this.#handshakes.strikePair(a, b, budget);
  }

  async #call(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    if (this.#closed) throw new PresenceUnavailable("presence closed");
    try {
      return await this.conns.script(name, ...args);
    } catch (e) {
      throw unavailable(e);
    }
  }
}
