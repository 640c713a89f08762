/**
 * This node's lease in Redis (`keys.lease`): proof to the other nodes that this node is alive,
 * and the fence its Redis Cluster reservations are written under. The heartbeat (heartbeat.ts)
 * renews it; this class owns what it says: whether it is held, its fence, and the event that it
 * lapsed (Redis refused a call because it is gone).
 */
import { sleep } from "../../lib/async.ts";
import { PresenceUnavailable } from "../presence.ts";
import type { Connections } from "./connections.ts";
import type { NodeList } from "./nodes.ts";
import { keys } from "./schema.ts";
import { RELAY_PROTOCOL } from "./envelope.ts";

/** Heartbeat script answers. */
const HELD_ELSEWHERE = 0, CREATED = 2;

export interface LeaseOptions {
  nodeId: string;
  bridge: string;
  clientAddress: string;
  leaseMs: number;
  /** A unique id of this process: who holds the lease. */
  instance: string;
}

/** What a renewal found: the lease refreshed, created anew (it had lapsed), or another's. */
export type Renewal = "renewed" | "created" | "held-elsewhere";

/** The lease's fence, as a Redis Cluster reservation reads it. */
export interface Fence {
  /** The fence of the lease as last written, while it is held; null otherwise. */
  readonly fence: string | null;
}

export class Lease implements Fence {
  readonly #o: LeaseOptions;
  readonly #conns: Connections;
  readonly #nodes: NodeList;
  readonly #key: string;
  readonly #started = Date.now();
  #held = false;
  /**
   * Until when (this process' clock) the lease is surely alive in Redis: a renewal that succeeded
   * was sent no earlier than this minus leaseMs. Past it the node cannot vouch for its users.
   */
  #validUntil = 0;
  /** The fence of the lease this process holds (see heartbeat.lua), null before the first. */
  #fence: string | null = null;
  readonly #lapsedListeners: Array<() => void> = [];

  constructor(opts: LeaseOptions, conns: Connections, nodes: NodeList) {
    this.#o = opts;
    this.#conns = conns;
    this.#nodes = nodes;
    this.#key = keys.lease(opts.nodeId);
  }

  get fence(): string | null {
    return this.#held ? this.#fence : null;
  }

  /** The last renewal succeeded, and nothing since says the lease is gone. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * The lease is alive in Redis now, by this process' clock: a node delivers frames from other
   * nodes only then (a node that stalled past its lease may have had its users taken over).
   */
  get valid(): boolean {
    return Date.now() < this.#validUntil;
  }

  /**
   * Takes the lease at start-up. A crashed process with this node id leaves a lease that lapses
   * within leaseMs (a quick restart under the same id just waits); a live one keeps it, and this
   * rejects by `deadline` (or the lease's own lapse, if later).
   */
  async acquire(deadline: number, users: number): Promise<void> {
    const idDeadline = Math.max(deadline, Date.now() + this.#o.leaseMs + 500);
    while (await this.renew(users) === "held-elsewhere") {
      if (Date.now() + 250 > idDeadline) {
        throw new PresenceUnavailable(`node id ${this.#o.nodeId} is held by another live process`);
      }
      await sleep(250);
    }
  }

  /** Refreshes the lease (writing this node's user count into it), or creates it anew. */
  async renew(users: number): Promise<Renewal> {
    const o = this.#o;
    const sentAt = Date.now();
    const [r, fence] = await this.#conns.script(
      "heartbeat",
      this.#key,
      o.instance,
      o.bridge,
      o.clientAddress,
      String(this.#started),
      String(users),
      String(Math.max(1, Math.ceil(o.leaseMs))),
      RELAY_PROTOCOL,
    ) as [number, string?];
    if (r === HELD_ELSEWHERE) {
      this.#held = false;
      this.#validUntil = 0;
      return "held-elsewhere";
    }
    this.#validUntil = sentAt + o.leaseMs;
    this.#fence = fence ?? null;
    // Listed for pruning and broadcasts; a separate key, so not in the script (Redis Cluster).
    await this.#nodes.join();
    this.#held = true;
    return r === CREATED ? "created" : "renewed";
  }

  /** The command connection dropped, or a renewal failed: the lease can no longer be vouched for. */
  lost(): void {
    this.#held = false;
  }

  /** Redis refused a call because the lease is gone: not held, and whoever listens renews it now. */
  lapsed(): void {
    this.#held = false;
    this.#validUntil = 0;
    for (const l of this.#lapsedListeners) l();
  }

  /** Calls `listener` each time Redis is found to have lost the lease. */
  onLapsed(listener: () => void): void {
    this.#lapsedListeners.push(listener);
  }
}
