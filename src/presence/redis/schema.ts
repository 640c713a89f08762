/**
 * The Redis key and channel schema shared by RedisPresence and the ops tool.
 * docs/REDIS.md describes it for operators; keep the two in step.
 */
import type { HandshakeKey } from "../../protocol/frames.ts";

export const PREFIX = "chatos:";

/** A node id is used inside key names, so it may not contain ':' (or anything exotic). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

/**
 * Keys in braces share a hash tag, so on Redis Cluster they live in one slot: a node's lease, its
 * users set and its channel ({<node id>}); a pair's handshakes and their index ({<pair>}). The
 * tags are harmless on a single Redis, so every mode uses the same names.
 */
const pair = (a: string, b: string) => `${a.length}:${a}${b.length}:${b}`;

export const keys = {
  /** SET of the ids of nodes that have (or had) a lease; pruned lazily. */
  nodes: `${PREFIX}nodes`,
  /** HASH {instance, fence, bridge, client, started, heartbeat, users} with PEXPIRE = lease. */
  lease: (nodeId: string) => `${PREFIX}node:{${nodeId}}`,
  /** SET of the pseudos reserved by that node. */
  nodeUsers: (nodeId: string) => `${PREFIX}node:{${nodeId}}:users`,
  /** STRING: who holds the pseudo: "<node id>" (single Redis) or "<node id>|<fence>" (Cluster). */
  user: (pseudo: string) => `${PREFIX}user:${pseudo}`,
  /** HASH {client, k1[, k2]}: the pseudo's client key and name keys; dropped with the user key. */
  profile: (pseudo: string) => `${PREFIX}profile:${pseudo}`,
  /** STRING: who holds this name key (a canonical form), as a user key's value; free once gone. */
  name: (key: string) => `${PREFIX}name:${key}`,
  /** HASH {a, b, password, state, asker, node, token, bridge, strikes} with PEXPIRE = handshake ttl. */
  handshake: (k: HandshakeKey) => `${PREFIX}hs:{${pair(k.a, k.b)}}${k.password}`,
  /** Every handshake key of the pair (a, b) is this prefix followed by the password. */
  handshakePrefix: (a: string, b: string) => `${PREFIX}hs:{${pair(a, b)}}`,
  /** SET of the passwords with a pending handshake for (a, b). */
  pairIndex: (a: string, b: string) => `${PREFIX}hsp:{${pair(a, b)}}`,
} as const;

/** A user key's value read: its node, and the lease fence it was written under (Cluster form only). */
export interface Holder {
  node: string;
  /** null for the single-Redis form, which names no fence. */
  fence: string | null;
}

/** Reads a user key's value, either form. */
export function parseHolder(value: string): Holder {
  const bar = value.indexOf("|");
  return bar < 0
    ? { node: value, fence: null }
    : { node: value.slice(0, bar), fence: value.slice(bar + 1) };
}

/** The value a Cluster-mode node writes: "<node id>|<fence>". */
export function holderValue(node: string, fence: string): string {
  return `${node}|${fence}`;
}

/** The node id in a user key's value (either form). */
export function holderNode(value: string): string {
  return parseHolder(value).node;
}

/** Payloads: envelope.ts. */
export const channels = {
  /** Batches of frames for users on that node, its own liveness pings, and (Cluster) broadcasts. */
  to: (nodeId: string) => `${PREFIX}to:{${nodeId}}`,
  /** Broadcasts, with their origin node and the pseudo they skip (single Redis and Sentinel). */
  all: `${PREFIX}all`,
} as const;

// Match patterns used with SCAN by the ops tool.
export const patterns = {
  leases: `${PREFIX}node:*`,
  users: `${PREFIX}user:*`,
  names: `${PREFIX}name:*`,
  handshakes: `${PREFIX}hs:*`,
} as const;

/** The node id of a key matched by `patterns.leases` if it is a lease (and not a `:users` set). */
export function leaseKeyNodeId(key: string): string | null {
  const open = `${PREFIX}node:{`;
  if (!key.startsWith(open) || !key.endsWith("}")) return null;
  const id = key.slice(open.length, -1);
  return NODE_ID_PATTERN.test(id) ? id : null;
}
