/**
 * Presence: what the nodes of a cluster share. A node delivers to its own users itself
 * (src/server/local_users.ts); a store is only
 * - the directory: who holds which pseudonym, with its name keys and client key, on every node;
 * - the handshake registry: pending private-link handshakes and their strikes;
 * - the relay: frames for users on other nodes, and broadcasts to them.
 * `MemoryPresence` (one process) and `RedisPresence` (a cluster) implement each part, and each
 * part has one contract suite that every store and topology passes (tests/contract/).
 *
 * A store that cannot answer (its backend is down) rejects with `PresenceUnavailable`; it never
 * hangs longer than its own timeout.
 */

import type { HandshakeKey } from "../protocol/frames.ts";
import { Histogram } from "../lib/histogram.ts";

/** A result that may be available at once. Await it, or test `instanceof Promise` on a hot path. */
export type MaybePromise<T> = T | Promise<T>;

export class PresenceUnavailable extends Error {
  override name = "PresenceUnavailable";
}

export type ReserveResult = "ok" | "taken";

/** What a login holds besides its display pseudo (docs/PROTOCOL.md, "Pseudonyms", "Link guessing"). */
export interface Claim {
  /**
   * The name's uniqueness keys (chat/pseudonym.ts: one or two). A reserve is
   * refused while any of them is held by another pseudo; all are taken
   * together and released together.
   */
  readonly keys: readonly string[];
  /** The client key of the user's chat connection: whose address may send the user's private ends. */
  readonly client: string;
}

/** The claim of a reserve that names none: the pseudo is its own key, no client key. */
export function bareClaim(pseudo: string): Claim {
  return { keys: [pseudo], client: "" };
}

/** Who holds which pseudonym, across every node. */
export interface Directory {
  /**
   * Binds `pseudo` and every key of `claim` to this node, atomically; "taken" if another node,
   * or another pseudo, holds the pseudo or any of the keys. The node checks its own users first
   * (LocalUsers): a directory is asked only for a pseudo this node does not hold.
   */
  reserve(pseudo: string, claim: Claim): Promise<ReserveResult>;
  /** Releases `pseudo` and its keys, if this node holds it. */
  release(pseudo: string): Promise<void>;
  /** The client key `pseudo` logged in with, on any node; null if nobody holds it. */
  clientOf(pseudo: string): Promise<string | null>;
}

/**
 * Where the parked end of a private link waits: a node, a token naming the
 * end on that node, and the node's bridge address ("host:port") that other
 * nodes dial to join it ("" when the store is single-node).
 */
export interface LinkEndpoint {
  node: string;
  token: string;
  bridge: string;
}

/** The pending private-link handshakes of every node, keyed by (A, B, password). */
export interface HandshakeRegistry {
  /** Registers a pending handshake; false if that (A, B, password) is already pending. */
  open(key: HandshakeKey, ttlMs: number): Promise<boolean>;
  /** Drops a pending handshake (asked or accepted); false if none was pending. */
  cancel(key: HandshakeKey): Promise<boolean>;
  /** Records B's parked private end; false unless the handshake is pending and not yet accepted. */
  accept(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean>;
  /** Consumes an accepted handshake and returns B's endpoint; null if none is waiting. */
  claim(key: HandshakeKey): Promise<LinkEndpoint | null>;
  /** Drops every pending handshake between A and B, returning their keys. */
  cancelPair(a: string, b: string): Promise<HandshakeKey[]>;
  /**
   * One failed attempt to join a link between A and B (a wrong password, or
   * a step out of order, from A's or B's own address): one strike against
   * each handshake of (A, B) pending now. Those whose strikes reach `budget`
   * are dropped, atomically, and returned (the caller tells A and B). Strikes
   * live in the handshake: a new one starts clean.
   */
  strikePair(a: string, b: string, budget: number): Promise<HandshakeKey[]>;
}

/**
 * Frames for the users of other nodes. The caller delivers to this node's users itself, and asks
 * the relay only for the rest; frames from other nodes reach this node's users through
 * `NodeUsers`.
 */
export interface Relay {
  /**
   * Delivers `frame` to `to` on whichever other node holds the user. False: no other node
   * received it. Synchronous where the answer is known at once (one node: always false).
   */
  send(to: string, frame: Uint8Array): MaybePromise<boolean>;
  /**
   * Delivers `frame` once to every user of every other node except `except`. Rejects only when it
   * reached no other node (their users got nothing).
   */
  broadcast(frame: Uint8Array, except: string): MaybePromise<void>;
  /**
   * `pseudo` is logging in on this node: frames for it from other nodes come here once this
   * resolves (before the login is answered). One node: nothing to do.
   */
  listen(pseudo: string): MaybePromise<void>;
  /** `pseudo` logged out of this node: frames for it stop coming here. */
  unlisten(pseudo: string): void;
  /**
   * Whether frames can leave this node now. While false, `send` and `broadcast` reject at once
   * and the caller delivers nothing locally either: an SMA answered ERROR 9 reached nobody.
   */
  readonly available: boolean;
  /**
   * The users of the other nodes: what a broadcast reaches beyond this node (flood control
   * charges an SMA for each, so it is asked on every SMA and must be a field, never a round
   * trip). A networked store counts them as of its last heartbeat, at most one lease period old
   * (a node whose count it lacks counts 0).
   */
  readonly remoteUsers: number;
}

/** Counters of a store that relays between nodes. */
export interface RelayStats {
  publishes: number;
  receives: number;
  reconnects: number;
  /** The last round trip of the liveness ping through pub/sub. */
  lastRttMs: number;
  /** Frames sent to users of other nodes, and how each ended. */
  sent: number;
  /** Answered delivered (or reached their node in time, the answer lost). */
  delivered: number;
  /** The user is on no other node (ERROR 4). */
  unreachable: number;
  /** Not delivered: Redis unreachable, or no answer in time (ERROR 9). */
  failed: number;
  /** From send to answer, for frames that ended delivered or unreachable (ms). */
  sendLatency: Histogram;
  /** Frames and broadcasts that arrived after their deadline, dropped (their sender was told). */
  expired: number;
  /** Frames that found their user gone when they arrived (it left after the publish). */
  notHere: number;
  /** Frames held while this node could not vouch for its users, dropped past the bound. */
  heldDropped: number;
  /** Redis Cluster broadcasts that reached some nodes and not others (a shard down). */
  broadcastsPartial: number;
  /** The route cache: sends that knew their node, sends that looked it up, routes found wrong. */
  routeHits: number;
  routeMisses: number;
  routeStale: number;
}

/** Stats of a relay that has sent nothing yet. */
export function newRelayStats(): RelayStats {
  return {
    publishes: 0,
    receives: 0,
    reconnects: 0,
    lastRttMs: 0,
    sent: 0,
    delivered: 0,
    unreachable: 0,
    failed: 0,
    sendLatency: new Histogram(),
    expired: 0,
    notHere: 0,
    heldDropped: 0,
    broadcastsPartial: 0,
    routeHits: 0,
    routeMisses: 0,
    routeStale: 0,
  };
}

/**
 * What a networked store tells about itself; the admin endpoint reads it. A
 * store with nothing to tell (the in-memory one) leaves `Presence.health` out.
 */
export interface StoreHealth {
  /** False while the backend is unreachable or this node's lease is not held. */
  readonly ready: boolean;
  readonly stats: Readonly<RelayStats>;
}

/** A presence store: its three parts, and its lifecycle. */
export interface Presence {
  /** This node's id; a LinkEndpoint whose `node` equals it is local. */
  readonly nodeId: string;
  readonly directory: Directory;
  readonly handshakes: HandshakeRegistry;
  readonly relay: Relay;
  /** Readiness and relay counters, for stores that have them. */
  readonly health?: StoreHealth;
  /** Releases everything this node holds and stops. */
  close(): Promise<void>;
}

/**
 * This node's users as a networked store sees them. The node owns them (src/server/local_users.ts)
 * and gives this view to the store it starts.
 */
export interface NodeUsers {
  /** Users logged in on this node. */
  readonly size: number;
  /** Logged in here. */
  has(pseudo: string): boolean;
  /** Logged in here, or logging in: the directory may bind it to this node already. */
  holds(pseudo: string): boolean;
  /** Every logged-in user and its claim, for writing them again after Redis lost them. */
  loggedIn(): Iterable<[string, Claim]>;
  /**
   * A frame from another node for a user of this one; false if nobody here takes it. A login
   * still in flight here takes it too (Redis binds the pseudo here before the reply arrives).
   */
  receive(pseudo: string, frame: Uint8Array): boolean;
  /** A broadcast from another node: to every user here but `except`. */
  fanOut(frame: Uint8Array, except: string): void;
  /** Another node holds `pseudo` now (found after a Redis outage): the session here must end. */
  evict(pseudo: string): void;
}
