/**
 * Presence: who holds which pseudonym, how to reach them, and the registry of
 * pending private-link handshakes. The session code talks only to this
 * interface; `MemoryPresence` (one process) and `RedisPresence` (a cluster)
 * implement it and pass the same contract suite (tests/presence_contract.ts).
 *
 * Every method is async so a networked store fits. A store that cannot answer
 * (its backend is down) rejects with `PresenceUnavailable`; it never hangs
 * longer than its own timeout.
 */

import type { HandshakeKey } from "../protocol/frames.ts";

/**
 * The local sink of one logged-in user: the store pushes frames addressed to
 * that user here (SPM, SMA, TCPAsk, TCPAccept, TCPAbort). `deliver` must not
 * block, and must not keep or mutate `frame` beyond queueing it: the same
 * bytes may be handed to many inboxes.
 */
export interface Inbox {
  deliver(frame: Uint8Array): void;
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

/** A result that may be available at once. Await it, or test `instanceof Promise` on a hot path. */
export type MaybePromise<T> = T | Promise<T>;

export class PresenceUnavailable extends Error {
  override name = "PresenceUnavailable";
}

/** Counters of a store that relays between nodes. */
export interface RelayStats {
  publishes: number;
  receives: number;
  reconnects: number;
  /** The last round trip of the liveness ping through pub/sub. */
  lastRttMs: number;
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

export interface Presence {
  /** This node's id; a LinkEndpoint whose `node` equals it is local. */
  readonly nodeId: string;
  /** Readiness and relay counters, for stores that have them. */
  readonly health?: StoreHealth;

  /**
   * Binds `pseudo` to `inbox` everywhere, with every key of `claim`,
   * atomically; "taken" if anyone holds the pseudo or any of the keys.
   * Without a claim the pseudo is its only key (bareClaim).
   */
  reserve(pseudo: string, inbox: Inbox, claim?: Claim): Promise<ReserveResult>;
  /** Releases `pseudo` and its keys if it is still bound to `inbox`. */
  release(pseudo: string, inbox: Inbox): Promise<void>;
  /** The client key `pseudo` logged in with, wherever connected; null if nobody holds it. */
  clientOf(pseudo: string): Promise<string | null>;

  /**
   * Delivers `frame` to the user, wherever connected. False: nobody received
   * it. Answers synchronously when it can (the user is on this node): the
   * hot path of a one-node chat then costs no promise per message. A
   * synchronous false also means nothing kept `frame` (the caller may reuse it).
   */
  send(to: string, frame: Uint8Array): MaybePromise<boolean>;
  /** Delivers `frame` once to every connected user except `except`; synchronous when all are local. */
  broadcast(frame: Uint8Array, except: string): MaybePromise<void>;
  /**
   * How many users are logged in on every node together: what a broadcast reaches (flood control
   * charges an SMA for each). Synchronous and cheap, for it is asked on every SMA: this node's
   * users are counted as they are now; a networked store adds the other nodes' counts as of its
   * last heartbeat, at most one lease period old (a node whose count it lacks counts 0).
   */
  userCount(): number;

  /** Registers a pending handshake; false if that (A, B, password) is already pending. */
  openHandshake(key: HandshakeKey, ttlMs: number): Promise<boolean>;
  /** Drops a pending handshake (asked or accepted); false if none was pending. */
  cancelHandshake(key: HandshakeKey): Promise<boolean>;
  /** Records B's parked private end; false unless the handshake is pending and not yet accepted. */
  acceptHandshake(key: HandshakeKey, endpoint: LinkEndpoint): Promise<boolean>;
  /** Consumes an accepted handshake and returns B's endpoint; null if none is waiting. */
  claimHandshake(key: HandshakeKey): Promise<LinkEndpoint | null>;
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

  /** Releases everything this node holds and stops. */
  close(): Promise<void>;
}
