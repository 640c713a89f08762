/**
 * The Redis key and channel schema shared by RedisPresence and the ops tool.
 * docs/REDIS.md describes it for operators; keep the two in step.
 */
import type { HandshakeKey } from "../../protocol/frames.ts";

const PREFIX = "chatos:";

/** A node id is used inside key names, so it may not contain ':' (or anything exotic). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

/**
 * The ordered pair (a, b) as its keys' hash tag holds it; length prefixes keep ("ab","c") apart
 * from ("a","bc"). A script that reads a pair's index gets this as an argument.
 */
export const pairTag = (a: string, b: string) => `${a.length}:${a}${b.length}:${b}`;

const pairHandshake = (tag: string, password: string) => `${PREFIX}hs:{${tag}}${password}`;

/**
 * Keys in braces share a hash tag, so on Redis Cluster they live in one slot: a node's lease, its
 * users set and its channel ({<node id>}); a pair's handshakes and their index ({<pair>}). The
 * tags are harmless on a single Redis, so every mode uses the same names.
 */
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
  handshake: (k: HandshakeKey) => pairHandshake(pairTag(k.a, k.b), String(k.password)),
  /** The same key from the pair's tag and a password read from its index. */
  pairHandshake,
  /** SET of the passwords with a pending handshake for (a, b). */
  pairIndex: (a: string, b: string) => `${PREFIX}hsp:{${pairTag(a, b)}}`,
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
  /** That node's own liveness pings, answers to frames it sent, and (Cluster) broadcasts. */
  to: (nodeId: string) => `${PREFIX}to:{${nodeId}}`,
  /**
   * Frames for `pseudo` while it is logged in on that node: the node subscribes on login and
   * unsubscribes on logout, so a publish's receiver count says whether it holds the user. Same
   * hash tag as the node's channel and lease: one shard serves a node's users.
   */
  user: (nodeId: string, pseudo: string) => `${PREFIX}to:{${nodeId}}:u:${pseudo}`,
  /** Broadcasts, with their origin node and the pseudo they skip (single Redis and Sentinel). */
  all: `${PREFIX}all`,
} as const;

// Match patterns used with SCAN by the ops tool: the builders with a wildcard for each value.
export const patterns = {
  /** Every key and channel of ChatOS. */
  all: `${PREFIX}*`,
  leases: keys.lease("*"),
  users: keys.user("*"),
  handshakes: keys.pairHandshake("*", "*"),
} as const;

/** What `build` put into `key`, or null if `build` cannot have made `key`. */
function valueIn(build: (value: string) => string, key: string): string | null {
  const [open, close] = build("\u0000").split("\u0000");
  const fits = key.length >= open.length + close.length && key.startsWith(open) &&
    key.endsWith(close);
  return fits ? key.slice(open.length, key.length - close.length) : null;
}

/** The node id of a lease key (null for any other key). */
export function leaseKeyNodeId(key: string): string | null {
  const id = valueIn(keys.lease, key);
  return id !== null && NODE_ID_PATTERN.test(id) ? id : null;
}

/** The pseudo of a user key (null for any other key). */
export function userKeyPseudo(key: string): string | null {
  return valueIn(keys.user, key);
}
