/**
 * RedisPresence: the presence store for a cluster of ChatOS nodes sharing one Redis (standalone,
 * Sentinel or Redis Cluster). Schema and operations: docs/REDIS.md. `assembleRedisPresence`
 * builds its parts under ./redis/, each with what it uses:
 * - connections.ts: the three connections (cmd, pub, sub) and their events;
 * - single_topology.ts, cluster_topology.ts: the Redis side of each operation, per topology
 *   (one Redis or Sentinel: any-key scripts; Redis Cluster: one slot per step);
 * - nodes.ts: the list of nodes; lease.ts: this node's lease and its fence;
 * - heartbeat.ts: renews the lease, writes reservations again after trouble, prunes dead nodes;
 * - census.ts: the other nodes' user counts, read on the heartbeat;
 * - directory.ts: reserve, release, and the client key of any user;
 * - probe.ts: the liveness ping through pub/sub;
 * - relay.ts: remote sends, broadcasts, and receiving (envelope.ts: the bytes);
 * - handshake_registry.ts: handshake scripts, strikes included (scripts.ts, lua/: the scripts).
 *
 * Failure model: no command waits in an offline queue or longer than
 * `commandTimeoutMs`; every failure rejects with PresenceUnavailable. After a
 * reconnect the lease and every local reservation are written again, since
 * Redis may have come back empty.
 */
import type { LogFn } from "../lib/log.ts";
import {
  newRelayStats,
  type NodeUsers,
  type Presence,
  type RelayStats,
  type StoreHealth,
} from "./presence.ts";
import { Routes } from "./redis/routes.ts";
import { Connections, unavailable } from "./redis/connections.ts";
import type { RedisTarget } from "./redis/target.ts";
import { RedisHandshakeRegistry } from "./redis/handshake_registry.ts";
import { Census } from "./redis/census.ts";
import { Heartbeat } from "./redis/heartbeat.ts";
import { Lease } from "./redis/lease.ts";
import { NodeList } from "./redis/nodes.ts";
import { Probe } from "./redis/probe.ts";
import { RedisRelay } from "./redis/relay.ts";
import { RedisDirectory } from "./redis/directory.ts";
import { ClusterTopology } from "./redis/cluster_topology.ts";
import { SingleTopology } from "./redis/single_topology.ts";
import type { RedisTopology } from "./redis/topology.ts";
import { channels, NODE_ID_PATTERN } from "./redis/schema.ts";

export { parseHostPorts, type RedisTarget, redisTarget } from "./redis/target.ts";

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
  /** Remote users whose node this node remembers, at most (routes.ts). Default 100,000. */
  maxRoutes?: number;
  log?: LogFn;
}

const defaultLog: LogFn = (level, msg, fields) => {
  if (level === "error" || level === "warn") {
    console.error(`[presence] ${level}: ${msg}`, fields ?? "");
  }
};

/** The parts of a Redis store, built by `assembleRedisPresence`. */
export interface RedisParts {
  readonly nodeId: string;
  readonly bridge: string;
  readonly log: LogFn;
  readonly connectTimeoutMs: number;
  readonly stats: RelayStats;
  readonly conns: Connections;
  readonly lease: Lease;
  readonly heartbeat: Heartbeat;
  readonly probe: Probe;
  readonly census: Census;
  readonly topology: RedisTopology;
  readonly directory: RedisDirectory;
  readonly handshakes: RedisHandshakeRegistry;
  readonly relay: RedisRelay;
}

/** Builds every part of a Redis store for this node's `users`, connecting nothing yet. */
export function assembleRedisPresence(opts: RedisPresenceOptions, users: NodeUsers): RedisParts {
  if (!NODE_ID_PATTERN.test(opts.nodeId)) {
    throw new TypeError(
      `invalid node id ${JSON.stringify(opts.nodeId)}: use 1-64 of [A-Za-z0-9_.-]`,
    );
  }
  const { nodeId, bridge } = opts;
  const log = opts.log ?? defaultLog;
  const stats = newRelayStats();
  const conns = new Connections({
    target: opts.target ?? { mode: "single", url: opts.url! },
    nodeId,
    commandTimeoutMs: opts.commandTimeoutMs ?? 1000,
    log,
  });
  // A unique id of this process: the lease's owner, and part of every fence and strike id.
  const instance = crypto.randomUUID();
  const nodes = new NodeList(conns.cmd, nodeId);
  const lease = new Lease(
    {
      nodeId,
      bridge,
      clientAddress: opts.clientAddress ?? "",
      leaseMs: opts.leaseMs ?? 3000,
      instance,
    },
    conns,
    nodes,
  );
  const topology: RedisTopology = conns.cluster
    ? new ClusterTopology(conns, nodeId, instance, lease, nodes)
    : new SingleTopology(conns, nodeId, instance);
  const directory = new RedisDirectory({ nodeId, topology, cmd: conns.cmd, lease, users, log });
  const census = new Census(conns.cmd, nodes, log);
  const handshakes = new RedisHandshakeRegistry(conns, nodeId);
  const probe = new Probe(
    {
      nodeId,
      channel: channels.to(nodeId),
      intervalMs: opts.probeIntervalMs ?? 1000,
      timeoutMs: opts.probeTimeoutMs ?? 3000,
    },
    conns,
    stats,
    log,
  );
  const heartbeat = new Heartbeat({
    nodeId,
    heartbeatMs: opts.heartbeatMs ?? 1000,
    conns,
    lease,
    directory,
    handshakes,
    census,
    nodes,
    topology,
    probe,
    users,
    log,
  });
  const relay = new RedisRelay({
    nodeId,
    conns,
    topology,
    users,
    voucher: heartbeat,
    routes: new Routes(opts.maxRoutes ?? 100_000, stats),
    census,
    probe,
    stats,
    commandTimeoutMs: opts.commandTimeoutMs ?? 1000,
    log,
  });
  return {
    nodeId,
    bridge,
    log,
    connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    stats,
    conns,
    lease,
    heartbeat,
    probe,
    census,
    topology,
    directory,
    handshakes,
    relay,
  };
}

/** Starts a RedisPresence for this node's `users`: connects, takes the lease, subscribes. */
export async function createRedisPresence(
  opts: RedisPresenceOptions,
  users: NodeUsers,
): Promise<RedisPresence> {
  const p = new RedisPresence(assembleRedisPresence(opts, users));
  await p.start();
  return p;
}

export class RedisPresence implements Presence, StoreHealth {
  readonly nodeId: string;
  readonly directory: RedisDirectory;
  readonly handshakes: RedisHandshakeRegistry;
  readonly relay: RedisRelay;
  readonly #p: RedisParts;
  #running = false;
  #closing: Promise<void> | null = null;

  /** A store of `parts` (assembleRedisPresence); not connected until start(). */
  constructor(parts: RedisParts) {
    this.#p = parts;
    this.nodeId = parts.nodeId;
    this.directory = parts.directory;
    this.handshakes = parts.handshakes;
    this.relay = parts.relay;
  }

  get stats(): Readonly<RelayStats> {
    return this.#p.stats;
  }

  /**
   * Redis reachable on all three connections, lease held, reservations re-asserted since the
   * last reconnect, and pub/sub proven by a recent ping.
   */
  get health(): StoreHealth {
    return this;
  }

  get ready(): boolean {
    const { heartbeat, conns, probe } = this.#p;
    return this.#running && heartbeat.synced && conns.allReady && probe.fresh;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Connects, takes the lease, subscribes, proves pub/sub with one ping. */
  async start(): Promise<void> {
    const { conns, lease, heartbeat, directory, relay, probe, census, log } = this.#p;
    const deadline = Date.now() + this.#p.connectTimeoutMs;
    const left = () => Math.max(1, deadline - Date.now());
    try {
      // ioredis keeps retrying a refused connection; wait for all three up to the deadline.
      await conns.connect(left());
      await lease.acquire(deadline, 0);
      await heartbeat.begin();
      await directory.reconcile(); // forget what a previous process with this id left
      await relay.subscribe();
      await probe.first(left());
      await census.refresh();
      await relay.announce();
    } catch (e) {
      this.#closeParts();
      conns.disconnect();
      throw unavailable(e);
    }
    this.#running = true;
    conns.run({
      lost: (kind) => {
        if (kind === "cmd") heartbeat.connectionLost();
      },
      ready: (kind) => {
        this.#p.stats.reconnects++;
        if (kind === "cmd") heartbeat.connectionReady();
        else if (kind === "sub") {
          probe.subscriberReady();
          // autoResubscribe restores what ioredis knew; this also covers a lost subscription.
          relay.subscribe().catch((e: unknown) =>
            log("warn", "resubscribe failed", { error: unavailable(e).message })
          );
        }
      },
    });
    heartbeat.start();
    probe.start();
    log("info", "presence ready", { node: this.nodeId, bridge: this.#p.bridge });
  }

  /** Releases this node's users and lease at once, then closes the connections. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const { heartbeat, probe, topology, lease, conns, log } = this.#p;
    const wasRunning = this.#running;
    this.#running = false;
    probe.stop();
    heartbeat.stop();
    this.#closeParts();
    if (wasRunning) {
      try {
        await topology.close();
        lease.lost();
      } catch (e) {
        log("warn", "close: could not release reservations; they lapse with the lease", {
          error: unavailable(e).message,
        });
      }
    }
    await conns.quit();
  }

  #closeParts(): void {
    this.directory.close();
    this.handshakes.close();
    this.relay.close();
  }
}
