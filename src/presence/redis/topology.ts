/**
 * What RedisPresence needs from Redis, per topology: a single Redis (or a
 * Sentinel-managed primary), where one Lua script may touch any key, or a
 * Redis Cluster, where each atomic step stays inside one hash slot. The local
 * bookkeeping (directory.ts, heartbeat.ts) is the same for both, and so are frames between
 * nodes: plain publishes (relay.ts, outbox.ts), no script.
 */
import type { Claim } from "../presence.ts";

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
  /** Subscribes (again) to this node's channel, and where broadcasts arrive. */
  subscribe(): Promise<unknown>;
}
