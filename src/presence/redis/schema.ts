/**
 * The Redis key and channel schema shared by RedisPresence and the ops tool.
 * docs/REDIS.md describes it for operators; keep the two in step.
 */
import { handshakeId, pairId } from "../presence.ts";
import type { HandshakeKey } from "../../protocol/frames.ts";

export const PREFIX = "chatos:";

/** A node id is used inside key names, so it may not contain ':' (or anything exotic). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

export const keys = {
  /** SET of the ids of nodes that have (or had) a lease; pruned lazily. */
  nodes: `${PREFIX}nodes`,
  /** HASH {instance, bridge, client, started, heartbeat, users} with PEXPIRE = lease. */
  lease: (nodeId: string) => `${PREFIX}node:${nodeId}`,
  /** SET of the pseudos reserved by that node. */
  nodeUsers: (nodeId: string) => `${PREFIX}node:${nodeId}:users`,
  /** STRING: the id of the node holding the pseudo. */
  user: (pseudo: string) => `${PREFIX}user:${pseudo}`,
  /** HASH {client, k1[, k2]}: the pseudo's client key and name keys; dropped with the user key. */
  profile: (pseudo: string) => `${PREFIX}profile:${pseudo}`,
  /** STRING: the pseudo holding this name key (a canonical form); free once that pseudo is gone. */
  name: (key: string) => `${PREFIX}name:${key}`,
  /** HASH {a, b, password, state, asker, node, token, bridge, strikes} with PEXPIRE = handshake ttl. */
  handshake: (k: HandshakeKey) => `${PREFIX}hs:${handshakeId(k)}`,
  /** Every handshake key of the pair (a, b) is this prefix followed by the password. */
  handshakePrefix: (a: string, b: string) => `${PREFIX}hs:${a.length}:${a}${b.length}:${b}`,
  /** SET of the passwords with a pending handshake for (a, b). */
  pairIndex: (a: string, b: string) => `${PREFIX}hsp:${pairId(a, b)}`,
} as const;

/** Payloads: envelope.ts. */
export const channels = {
  /** Batches of frames for users on that node, and the node's own liveness pings. */
  to: (nodeId: string) => `${PREFIX}to:${nodeId}`,
  /** Broadcasts, with their origin node and the pseudo they skip. */
  all: `${PREFIX}all`,
} as const;

// Match patterns used with SCAN by the ops tool.
export const patterns = {
  leases: `${PREFIX}node:*`,
  users: `${PREFIX}user:*`,
  names: `${PREFIX}name:*`,
  handshakes: `${PREFIX}hs:*`,
} as const;

/** Whether a key matched by `patterns.leases` is a lease (and not a `:users` set). */
export function leaseKeyNodeId(key: string): string | null {
  const id = key.slice(`${PREFIX}node:`.length);
  return NODE_ID_PATTERN.test(id) ? id : null;
}
