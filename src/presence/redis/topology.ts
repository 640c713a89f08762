/**
 * What RedisPresence needs from Redis, per topology: a single Redis (or a
 * Sentinel-managed primary), where one Lua script may touch any key, or a
 * Redis Cluster, where each atomic step stays inside one hash slot. The local
 * bookkeeping (directory.ts, heartbeat.ts, relay.ts) is the same for both.
 */
import type { Buffer } from "node:buffer";
import type { Claim } from "../presence.ts";

export interface Settle<T> {
  resolve(value: T): void;
  reject(e: unknown): void;
}

/** A frame leaving this node: for one user (an envelope entry) or for everyone (a broadcast). */
export type Outgoing =
  | { kind: "send"; to: string; entry: Buffer; settle: Settle<boolean> }
  | { kind: "broadcast"; payload: Buffer; settle: Settle<void> };

/** Pseudos per batch of Redis calls when many are written or released at once. */
const CHUNK = 500;
/** Pseudos of a dead node removed per prune call. */
export const PRUNE_BATCH = 1000;
/** Prune calls per dead node per pass; the rest waits for the next pass. */
export const PRUNE_ROUNDS = 50;

/** `xs` in slices of at most CHUNK. */
export function chunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK));
  return out;
}

/** The message of the error a store rejects with when this node's own lease is gone. */
export const NO_LEASE = "NOLEASE node lease missing";

export interface RedisTopology {
  /**
   * Broadcasts wait for the end of the turn like sends (Redis Cluster: they share each node's
   * per-turn script call), rather than leaving at once (single Redis: one PUBLISH each).
   */
  readonly batchesBroadcasts: boolean;
  /**
   * True: `pseudo` and every name key of `claim` are now bound to this node, and its profile
   * (client key, name keys) written; false: a live node holds the pseudo or a key (nothing taken).
   */
  reserve(pseudo: string, claim: Claim): Promise<boolean>;
  /** Unbinds the pseudos that are still bound to this node, with their name keys and profiles. */
  release(pseudos: readonly string[]): Promise<unknown>;
  /**
   * Binds the pseudos and their claims again (Redis may have lost them); returns those a live
   * node now holds, or whose name key it holds.
   */
  reassert(pseudos: readonly string[], claimOf: (pseudo: string) => Claim): Promise<string[]>;
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
