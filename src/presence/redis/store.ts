/**
 * What RedisPresence needs from Redis, per topology: a single Redis (or a
 * Sentinel-managed primary), where one Lua script may touch any key, or a
 * Redis Cluster, where each atomic step stays inside one hash slot. The local
 * bookkeeping (reservations.ts, lease.ts, relay.ts) is the same for both.
 */
import type { Buffer } from "node:buffer";

export interface Settle<T> {
  resolve(value: T): void;
  reject(e: unknown): void;
}

/** A frame leaving this node: for one user (an envelope entry) or for everyone (a broadcast). */
export type Outgoing =
  | { kind: "send"; to: string; entry: Buffer; settle: Settle<boolean> }
  | { kind: "broadcast"; payload: Buffer; settle: Settle<void> };

/** The message of the error a store rejects with when this node's own lease is gone. */
export const NO_LEASE = "NOLEASE node lease missing";

export interface PresenceStore {
  /**
   * Broadcasts wait for the end of the turn like sends (Redis Cluster: they share each node's
   * per-turn script call), rather than leaving at once (single Redis: one PUBLISH each).
   */
  readonly batchesBroadcasts: boolean;
  /** True: `pseudo` is now bound to this node; false: a live node holds it. */
  reserve(pseudo: string): Promise<boolean>;
  /** Unbinds the pseudos that are still bound to this node. */
  release(pseudos: readonly string[]): Promise<unknown>;
  /** Binds the pseudos again (Redis may have lost them); returns those a live node now holds. */
  reassert(pseudos: readonly string[]): Promise<string[]>;
  /** The pseudos Redis lists as this node's. */
  members(): Promise<string[]>;
  /** Clean shutdown: unbinds everything of this node and drops its lease. */
  close(): Promise<void>;
  /** Housekeeping for another node: true if its lease was gone and its leftovers are removed. */
  prune(nodeId: string): Promise<boolean>;
  /** Publishes, in this order, and settles each item (sends: whether a node received it). */
  publish(items: readonly Outgoing[]): void;
  /** Subscribes (again) to this node's channel, and where broadcasts arrive. */
  subscribe(): Promise<unknown>;
}
