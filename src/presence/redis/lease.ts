/**
 * This node's lease in Redis and the heartbeat that keeps it: the one owner
 * of "the lease is held". Each tick refreshes the lease; when the lease had
 * lapsed or the command connection came back, it writes every reservation
 * again (resync) before the node counts as ready; every few ticks it prunes
 * what dead nodes left behind.
 */
import { sleep } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { LocalUsers } from "../local_users.ts";
import { PresenceUnavailable } from "../presence.ts";
import type { Connections } from "./connections.ts";
import type { Reservations } from "./reservations.ts";
import { keys, PREFIX } from "./schema.ts";

const PRUNE_EVERY = 5;
const PRUNE_BATCH = 1000;
/** Prune calls per dead node per pass; the rest waits for the next pass. */
const PRUNE_ROUNDS = 50;
/** Heartbeat script answers. */
const HELD_ELSEWHERE = 0, CREATED = 2;

export interface LeaseOptions {
  nodeId: string;
  bridge: string;
  clientAddress: string;
  leaseMs: number;
  heartbeatMs: number;
}

export interface LeaseDeps {
  conns: Connections;
  users: LocalUsers;
  reservations: Reservations;
  log: LogFn;
}

export class Lease {
  readonly #o: LeaseOptions;
  readonly #d: LeaseDeps;
  readonly #key: string;
  readonly #ownUsers: string;
  readonly #instance = crypto.randomUUID();
  readonly #started = Date.now();
  #held = false;
  /** Set on every (re)connect of `cmd`: reservations must be written again before ready. */
  #needResync = false;
  #resyncGen = 0;
  #ticking = false;
  #tickAgain = false;
  #tickFailing = false;
  #ticks = 0;
  #running = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(opts: LeaseOptions, deps: LeaseDeps) {
    this.#o = opts;
    this.#d = deps;
    this.#key = keys.lease(opts.nodeId);
    this.#ownUsers = keys.nodeUsers(opts.nodeId);
  }

  /** Held, and every reservation written again since the last reconnect. */
  get held(): boolean {
    return this.#held && !this.#needResync;
  }

  /** A unique id of this process, for values other processes must not collide with. */
  get instance(): string {
    return this.#instance;
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
    await this.#d.reservations.reconcile(); // forget what a previous process with this id left
  }

  /** Starts (or resumes) the heartbeat, with one tick now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const t = setInterval(() => this.#kick(false), this.#o.heartbeatMs);
    Deno.unrefTimer(t as unknown as number);
    this.#timer = t;
    this.#kick(false);
  }

  /** Stops the heartbeat: no tick runs until start(), even on a reconnect. */
  stop(): void {
    this.#running = false;
    clearInterval(this.#timer);
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
    this.#held = false;
    await this.#d.conns.script(
      "close",
      this.#key,
      this.#ownUsers,
      keys.nodes,
      this.#instance,
      this.#o.nodeId,
      PREFIX,
    );
  }

  #heartbeat(): Promise<unknown> {
    const o = this.#o;
    return this.#d.conns.script(
      "heartbeat",
      this.#key,
      keys.nodes,
      this.#ownUsers,
      this.#instance,
      o.nodeId,
      o.bridge,
      o.clientAddress,
      String(this.#started),
      String(this.#d.users.size),
      String(Math.max(1, Math.ceil(o.leaseMs))),
    );
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
      if (this.#needResync) {
        // A reconnect during the resync sets #needResync again and kicks another tick.
        const gen = this.#resyncGen;
        await reservations.reassert();
        await reservations.reconcile();
        if (gen === this.#resyncGen) this.#needResync = false;
      }
      await reservations.flushUncertain();
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
    const { conns, log } = this.#d;
    const ids = await conns.cmd.smembers(keys.nodes);
    for (const id of ids) {
      if (id === this.#o.nodeId) continue;
      for (let i = 0; i < PRUNE_ROUNDS; i++) {
        const r = await conns.script(
          "prune",
          keys.lease(id),
          keys.nodeUsers(id),
          keys.nodes,
          id,
          PREFIX,
          PRUNE_BATCH,
        );
        if (r === 0) log("info", "pruned a dead node", { node: id });
        if (r !== 1) break;
      }
    }
  }
}
