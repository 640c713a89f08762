/**
 * The heartbeat: every tick renews the lease (lease.ts); when the lease had lapsed, the command
 * connection came back or a Redis Cluster failed over, it writes every reservation again (resync)
 * before the node counts as synced; it retries releases and handshake cancels whose outcome was
 * unknown, reads the other nodes' user counts (census.ts), and every few ticks prunes what dead
 * nodes left behind.
 * On Redis Cluster it also has the slot maps read again after a failover, or while a primary's
 * socket is closed (shards.ts).
 */
import { clearTimer, type TimerId, unrefInterval } from "../../lib/timers.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { NodeUsers } from "../presence.ts";
import type { Census } from "./census.ts";
import type { Connections } from "./connections.ts";
import type { RedisDirectory } from "./directory.ts";
import type { RedisHandshakeRegistry } from "./handshake_registry.ts";
import type { Lease } from "./lease.ts";
import type { NodeList } from "./nodes.ts";
import type { Probe } from "./probe.ts";
import type { RedisTopology } from "./topology.ts";

const PRUNE_EVERY = 5;

export interface HeartbeatDeps {
  nodeId: string;
  heartbeatMs: number;
  conns: Connections;
  lease: Lease;
  /** Written again on a resync; its unknown releases retried on every tick. */
  directory: RedisDirectory;
  /** Its failed cancels retried on every tick. */
  handshakes: RedisHandshakeRegistry;
  /** Refreshed on every tick: the lease carries this node's count, the census reads the others'. */
  census: Census;
  nodes: NodeList;
  topology: RedisTopology;
  /** Told when a Redis Cluster failed over: its pings from before prove nothing now. */
  probe: Probe;
  users: NodeUsers;
  log: LogFn;
}

export class Heartbeat {
  readonly #d: HeartbeatDeps;
  /** Redis Cluster's epoch at the last tick: a failover since means a resync. */
  #epoch: number | null = null;
  /** Set on every (re)connect of `cmd`: reservations must be written again before synced. */
  #needResync = false;
  #resyncGen = 0;
  #ticking = false;
  #tickAgain = false;
  #tickFailing = false;
  #ticks = 0;
  #running = false;
  #timer: TimerId | undefined;

  constructor(deps: HeartbeatDeps) {
    this.#d = deps;
    deps.lease.onLapsed(() => this.#kick(true));
  }

  /** The lease is held, and every reservation was written again since the last reconnect. */
  get synced(): boolean {
    return this.#d.lease.held && !this.#needResync;
  }

  /**
   * This node may vouch for its users now: synced, and its lease alive in Redis by this
   * process' clock. Frames from other nodes are delivered only then: a node that stalled past
   * its lease may have had users taken over, and evicts them only once it has written its
   * reservations again.
   */
  get vouching(): boolean {
    return this.synced && this.#d.lease.valid;
  }

  /** At start-up, after the lease is acquired: where the cluster's epoch stands now. */
  async begin(): Promise<void> {
    this.#epoch = await this.#d.conns.clusterEpoch();
  }

  /** Starts (or resumes) the ticks, with one now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#timer = unrefInterval(() => this.#kick(false), this.#d.heartbeatMs);
    this.#kick(false);
  }

  /** Stops: no tick runs until start(), even on a reconnect. */
  stop(): void {
    this.#running = false;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** The command connection dropped. */
  connectionLost(): void {
    this.#d.lease.lost();
  }

  /** The command connection is back: Redis may have restarted empty, so resync. */
  connectionReady(): void {
    this.#needResync = true;
    this.#resyncGen++;
    this.#kick(true);
  }

  /** Runs one tick now, or right after the running one if `again`. */
  #kick(again: boolean): void {
    if (!this.#running) return;
    if (this.#ticking) {
      if (again) this.#tickAgain = true;
      return;
    }
    this.#ticking = true;
    this.#tick().finally(() => {
      this.#ticking = false;
      if (this.#tickAgain) {
        this.#tickAgain = false;
        this.#kick(false);
      }
    });
  }

  async #tick(): Promise<void> {
    const { log, lease, directory, conns } = this.#d;
    // Redis Cluster: a primary's socket is closed, or the slot map is stale: read the maps again.
    // Not awaited: the heartbeat must not wait for it; readiness does (connections.ts).
    if (!conns.shardsReady) conns.followShards();
    try {
      const wasHeld = lease.held;
      const r = await lease.renew(this.#d.users.size);
      if (!this.#running) return;
      if (r === "held-elsewhere") {
        if (wasHeld) {
          log("error", "another process holds this node id's lease", { node: this.#d.nodeId });
        }
        return;
      }
      if (r === "created") {
        // The lease was gone: Redis lost our keys, or we stalled past the lease.
        if (wasHeld) log("warn", "lease had lapsed; re-asserting reservations");
        this.#needResync = true;
      }
      const epoch = await conns.clusterEpoch();
      if (epoch !== this.#epoch) {
        // A shard failed over and may have lost its last writes, ours among them.
        if (this.#epoch !== null) {
          log("info", "redis cluster failed over; re-asserting", { node: this.#d.nodeId });
          conns.slotsMoved();
          this.#d.probe.subscriberReady();
        }
        this.#epoch = epoch;
        this.#needResync = true;
      }
      if (this.#needResync) {
        // A reconnect during the resync sets #needResync again and kicks another tick.
        const gen = this.#resyncGen;
        await directory.reassert();
        await directory.reconcile();
        if (gen === this.#resyncGen) this.#needResync = false;
      }
      await directory.flushUncertain();
      await this.#d.handshakes.retryCancels();
      await this.#d.census.refresh();
      if (++this.#ticks % PRUNE_EVERY === 0) await this.#pruneDeadNodes();
      this.#tickFailing = false;
    } catch (e) {
      if (!this.#running) return;
      lease.lost();
      // Once per outage is enough; a dropped connection is reported by its 'close' already.
      const loud = !this.#tickFailing && !conns.isLost("cmd");
      this.#tickFailing = true;
      log(loud ? "warn" : "debug", "heartbeat failed", { error: errorMessage(e) });
    }
  }

  /** Housekeeping only: a dead node's pseudos are free as soon as its lease is gone. */
  async #pruneDeadNodes(): Promise<void> {
    for (const id of await this.#d.nodes.others()) {
      if (await this.#d.topology.prune(id)) this.#d.log("info", "pruned a dead node", { node: id });
    }
  }
}
