/**
 * This node's lease in Redis and the heartbeat that keeps it: the one owner
 * of "the lease is held". Each tick refreshes the lease; when the lease had
 * lapsed or the command connection came back, it writes every reservation
 * again (resync) before the node counts as ready; it reads the other nodes'
 * user counts (census.ts); every few ticks it prunes what dead nodes left behind.
 * On Redis Cluster it also has the slot maps read again after a failover, or
 * while a primary's socket is closed (shards.ts).
 */
import { clearTimer, type TimerId, unrefInterval } from "../../lib/timers.ts";
import { sleep } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { LocalUsers } from "../local_users.ts";
import { PresenceUnavailable } from "../presence.ts";
import type { Census } from "./census.ts";
import type { Connections } from "./connections.ts";
import type { Reservations } from "./reservations.ts";
import { keys } from "./schema.ts";
import type { RedisTopology } from "./topology.ts";

const PRUNE_EVERY = 5;
/** Heartbeat script answers. */
const HELD_ELSEWHERE = 0, CREATED = 2;

export interface LeaseOptions {
  nodeId: string;
  bridge: string;
  clientAddress: string;
  leaseMs: number;
  heartbeatMs: number;
  /** A unique id of this process: who holds the lease. */
  instance: string;
}

export interface LeaseDeps {
  /** Redis Cluster failed over (its epoch changed): subscriptions may have moved. */
  onFailover?: () => void;
  conns: Connections;
  store: RedisTopology;
  users: LocalUsers;
  reservations: Reservations;
  /** Refreshed on every tick: the heartbeat writes this node's count, the census reads the others'. */
  census: Census;
  log: LogFn;
}

export class Lease {
  readonly #o: LeaseOptions;
  readonly #d: LeaseDeps;
  readonly #key: string;
  readonly #instance: string;
  readonly #started = Date.now();
  #held = false;
  /** The fence of the lease this process holds (see heartbeat.lua), null before the first. */
  #fence: string | null = null;
  /** Redis Cluster's epoch at the last tick: a failover since means a resync. */
  #epoch: number | null = null;
  /** Set on every (re)connect of `cmd`: reservations must be written again before ready. */
  #needResync = false;
  #resyncGen = 0;
  #ticking = false;
  #tickAgain = false;
  #tickFailing = false;
  #ticks = 0;
  #running = false;
  #timer: TimerId | undefined;

  constructor(opts: LeaseOptions, deps: LeaseDeps) {
    this.#o = opts;
    this.#d = deps;
    this.#key = keys.lease(opts.nodeId);
    this.#instance = opts.instance;
  }

  /** The fence of the lease as last written, while it is held. */
  get fence(): string | null {
    return this.#held ? this.#fence : null;
  }

  /** Held, and every reservation written again since the last reconnect. */
  get held(): boolean {
    return this.#held && !this.#needResync;
  }

  /**
   * Takes the lease at start-up. A crashed process with this node id leaves a lease that lapses
   * within leaseMs (a quick restart under the same id just waits); a live one keeps it, and this
   * rejects by `deadline` (or the lease's own lapse, if later).
   */
  async acquire(deadline: number): Promise<void> {
    const idDeadline = Math.max(deadline, Date.now() + this.#o.leaseMs + 500);
    for (;;) {
      const r = await this.#heartbeat();
      if (r !== HELD_ELSEWHERE) break;
      if (Date.now() + 250 > idDeadline) {
        throw new PresenceUnavailable(`node id ${this.#o.nodeId} is held by another live process`);
      }
      await sleep(250);
    }
    this.#held = true;
    this.#epoch = await this.#d.conns.clusterEpoch();
    await this.#d.reservations.reconcile(); // forget what a previous process with this id left
  }

  /** Starts (or resumes) the heartbeat, with one tick now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#timer = unrefInterval(() => this.#kick(false), this.#o.heartbeatMs);
    this.#kick(false);
  }

  /** Stops the heartbeat: no tick runs until start(), even on a reconnect. */
  stop(): void {
    this.#running = false;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** The command connection dropped: the lease can no longer be vouched for. */
  connectionLost(): void {
    this.#held = false;
  }

  /** The command connection is back: Redis may have restarted empty, so resync. */
  connectionReady(): void {
    this.#needResync = true;
    this.#resyncGen++;
    this.#kick(true);
  }

  /** Redis refused a call because the lease is gone: take it again now. */
  lapsed(): void {
    this.#held = false;
    this.#kick(true);
  }

  /** Stops, then drops this node's reservations and lease in Redis at once. */
  async release(): Promise<void> {
    this.stop();
    await this.#d.store.close();
    this.#held = false;
  }

  /** Refreshes the lease; HELD_ELSEWHERE, or 1 / CREATED with the fence now in force. */
  async #heartbeat(): Promise<number> {
    const o = this.#o;
    const [r, fence] = await this.#d.conns.script(
      "heartbeat",
      this.#key,
      this.#instance,
      o.bridge,
      o.clientAddress,
      String(this.#started),
      String(this.#d.users.size),
      String(Math.max(1, Math.ceil(o.leaseMs))),
    ) as [number, string?];
    if (r === HELD_ELSEWHERE) return r;
    this.#fence = fence ?? null;
    // Listed for pruning and broadcasts; a separate key, so not in the script (Redis Cluster).
    await this.#d.conns.cmd.sadd(keys.nodes, o.nodeId);
    return r;
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
    const { log, reservations, conns } = this.#d;
    // Redis Cluster: a primary's socket is closed, or the slot map is stale: read the maps again.
    // Not awaited: the heartbeat must not wait for it; readiness does (connections.ts).
    if (!conns.shardsReady) conns.followShards();
    try {
      const r = await this.#heartbeat();
      if (!this.#running) return;
      if (r === HELD_ELSEWHERE) {
        if (this.#held) {
          log("error", "another process holds this node id's lease", { node: this.#o.nodeId });
        }
        this.#held = false;
        return;
      }
      if (r === CREATED) {
        // The lease was gone: Redis lost our keys, or we stalled past the lease.
        if (this.#held) log("warn", "lease had lapsed; re-asserting reservations");
        this.#needResync = true;
      }
      this.#held = true;
      const epoch = await conns.clusterEpoch();
      if (epoch !== this.#epoch) {
        // A shard failed over and may have lost its last writes, ours among them.
        if (this.#epoch !== null) {
          log("info", "redis cluster failed over; re-asserting", { node: this.#o.nodeId });
          conns.slotsMoved();
          this.#d.onFailover?.();
        }
        this.#epoch = epoch;
        this.#needResync = true;
      }
      if (this.#needResync) {
        // A reconnect during the resync sets #needResync again and kicks another tick.
        const gen = this.#resyncGen;
        await reservations.reassert();
        await reservations.reconcile();
        if (gen === this.#resyncGen) this.#needResync = false;
      }
      await reservations.flushUncertain();
      await this.#d.census.refresh();
      if (++this.#ticks % PRUNE_EVERY === 0) await this.#pruneDeadNodes();
      this.#tickFailing = false;
    } catch (e) {
      if (!this.#running) return;
      this.#held = false;
      // Once per outage is enough; a dropped connection is reported by its 'close' already.
      const loud = !this.#tickFailing && !conns.isLost("cmd");
      this.#tickFailing = true;
      log(loud ? "warn" : "debug", "heartbeat failed", { error: errorMessage(e) });
    }
  }

  /** Housekeeping only: a dead node's pseudos are free as soon as its lease is gone. */
  async #pruneDeadNodes(): Promise<void> {
    const ids = await this.#d.conns.cmd.smembers(keys.nodes);
    for (const id of ids) {
      if (id === this.#o.nodeId) continue;
      if (await this.#d.store.prune(id)) this.#d.log("info", "pruned a dead node", { node: id });
    }
  }
}
