/**
 * The users of this node: pseudo → session, and what each login holds (its name keys and client
 * key) from the moment it starts until it ends. The one registry of local users in the process:
 * sessions deliver to each other through it, and the presence store reads it (`NodeUsers`) to
 * hand over frames from other nodes and to write the reservations again after Redis lost them.
 */
import type { Logger } from "../lib/log.ts";
import { ClaimTable } from "../presence/claims.ts";
import type { Claim, NodeUsers, Presence, ReserveResult } from "../presence/presence.ts";

/** What a login and a logout touch of the presence store. */
export type Store = Pick<Presence, "directory" | "relay">;

/** What the registry needs of a session. */
export interface LocalUser {
  /** A frame for this user; must not block, keep or mutate it beyond queueing (shared bytes). */
  deliver(frame: Uint8Array): void;
  /** Ends the session from outside. */
  evict(reason: string): void;
}

/** Frames held for one login in flight, at most (count, bytes). */
const EARLY_MAX_FRAMES = 1024;
const EARLY_MAX_BYTES = 1024 * 1024;

/** Frames that arrived for a login in flight: Redis binds the pseudo here before the reply comes. */
interface Early {
  frames: Uint8Array[];
  bytes: number;
  /** Frames past the bound were dropped (logged once per login). */
  overflowed: boolean;
}

export class LocalUsers<U extends LocalUser = LocalUser> implements NodeUsers {
  readonly #log: Logger;
  readonly #users = new Map<string, U>();
  /** Logged in and logging in: a second login of a pseudo or key held here never reaches Redis. */
  readonly #claims = new ClaimTable();
  /** By pseudo, for logins in flight that were sent frames already. */
  readonly #early = new Map<string, Early>();
  #missed: ((pseudo: string, frame: Uint8Array) => void) | null = null;

  constructor(log: Logger) {
    this.#log = log;
  }

  get size(): number {
    return this.#users.size;
  }

  get(pseudo: string): U | undefined {
    return this.#users.get(pseudo);
  }

  has(pseudo: string): boolean {
    return this.#users.has(pseudo);
  }

  holds(pseudo: string): boolean {
    return this.#claims.has(pseudo);
  }

  values(): IterableIterator<U> {
    return this.#users.values();
  }

  /** The client key of a user logged in here; undefined if not here. */
  clientOf(pseudo: string): string | undefined {
    return this.#users.has(pseudo) ? this.#claims.get(pseudo)?.client : undefined;
  }

  *loggedIn(): Iterable<[string, Claim]> {
    for (const pseudo of this.#users.keys()) yield [pseudo, this.#claims.get(pseudo)!];
  }

  /**
   * Logs `user` in as `pseudo`: held here at once (so no second login of it, or of a lookalike,
   * starts on this node), then reserved in the directory for every node, then listened for by
   * the relay (frames from other nodes reach it from then on). Rejects as the store does
   * (PresenceUnavailable), with nothing held.
   */
  async login(pseudo: string, claim: Claim, user: U, store: Store): Promise<ReserveResult> {
    if (!this.#claims.hold(pseudo, claim)) return "taken";
    let result: ReserveResult;
    try {
      result = await store.directory.reserve(pseudo, claim);
      if (result === "ok") await this.#listen(pseudo, store);
    } catch (e) {
      this.#abandon(pseudo);
      throw e;
    }
    if (result === "taken") {
      this.#abandon(pseudo);
      return result;
    }
    this.#users.set(pseudo, user);
    const early = this.#early.get(pseudo);
    this.#early.delete(pseudo);
    for (const f of early?.frames ?? []) user.deliver(f);
    return "ok";
  }

  /**
   * Logs `user` out of `pseudo` if it still holds it: gone from here, no longer listened for, and,
   * in the same turn, released in the directory (a login of the same pseudo that starts after
   * this is ordered behind the release, on the same Redis connection).
   */
  logout(pseudo: string, user: U, store: Store): Promise<void> {
    if (this.#users.get(pseudo) !== user) return Promise.resolve();
    this.#users.delete(pseudo);
    this.#claims.drop(pseudo);
    store.relay.unlisten(pseudo);
    return store.directory.release(pseudo);
  }

  /** The relay listens for `pseudo`; if it cannot, the reservation just made is given back. */
  async #listen(pseudo: string, store: Store): Promise<void> {
    try {
      await store.relay.listen(pseudo);
    } catch (e) {
      await store.directory.release(pseudo).catch(() => {}); // retried by the heartbeat
      throw e;
    }
  }

  #abandon(pseudo: string): void {
    this.#claims.drop(pseudo);
    this.#early.delete(pseudo);
  }

  /** Delivers the same bytes to every user here but `except`; returns how many. */
  fanOut(frame: Uint8Array, except: string): number {
    let n = 0;
    for (const [pseudo, user] of this.#users) {
      if (pseudo === except) continue;
      user.deliver(frame);
      n++;
    }
    return n;
  }

  /** Delivers `frame` to `pseudo` if logged in here; false if not. */
  send(pseudo: string, frame: Uint8Array): boolean {
    const user = this.#users.get(pseudo);
    user?.deliver(frame);
    return user !== undefined;
  }

  /** Told of each frame from another node for a user who is not here (it left). */
  onMissed(listener: (pseudo: string, frame: Uint8Array) => void): void {
    this.#missed = listener;
  }

  receive(pseudo: string, frame: Uint8Array): boolean {
    if (this.send(pseudo, frame)) return true;
    // Not logging in here either: the user left (or never came).
    if (!this.#claims.has(pseudo)) {
      this.#missed?.(pseudo, frame);
      return false;
    }
    this.#holdEarly(pseudo, frame);
    return true;
  }

  /**
   * Keeps a frame for a login in flight: the sender was told it was delivered. Bounded like a
   * reader's output queue, so a flood in the reply's window cannot grow it; past the bound the
   * frame is lost, and logged once per login.
   */
  #holdEarly(pseudo: string, frame: Uint8Array): void {
    let early = this.#early.get(pseudo);
    if (!early) this.#early.set(pseudo, early = { frames: [], bytes: 0, overflowed: false });
    if (early.frames.length < EARLY_MAX_FRAMES && early.bytes + frame.length <= EARLY_MAX_BYTES) {
      early.frames.push(frame);
      early.bytes += frame.length;
      return;
    }
    if (early.overflowed) return;
    early.overflowed = true;
    this.#log.warn("frames for a pseudo being reserved dropped past the bound", {
      pseudo,
      heldBytes: early.bytes,
    });
  }

  evict(pseudo: string): void {
    this.#users.get(pseudo)?.evict("pseudo taken by another node during a Redis outage");
  }
}
