/**
 * The private-connection handshakes one chat session takes part in: those its
 * user asked for (as A, each with an expiry timer, limited in number while
 * unanswered) and those offered to it (as B). When the session ends, these
 * are the handshakes to abort.
 */
import type { HandshakeKey } from "../../protocol/mod.ts";
import { handshakeId, Op } from "../../protocol/mod.ts";
import { clearTimer, type TimerId, unrefTimeout } from "../../lib/timers.ts";

interface Asked {
  key: HandshakeKey;
  timer: TimerId;
  /** B has answered (TCPAccept or TCPAbort reached A): no longer counts toward the limit. */
  answered: boolean;
}

/** An offer this user has not answered; `until`: past the ttl, its asker has given up on it. */
interface Invited {
  key: HandshakeKey;
  until: number;
}

/** Offers kept before a new one sweeps out those past their ttl. */
const INVITED_SWEEP_AT = 32;

export interface AskLimits {
  /** Unanswered asks one user may have pending. */
  maxPendingAsks: number;
  /** An ask not completed by then expires. */
  handshakeTtlMs: number;
}

export class HandshakeBook {
  #limits: AskLimits;
  #onExpire: (key: HandshakeKey) => void;
  // Created on first use: most sessions never touch a private connection,
  // and idle sessions are what the per-session memory budget is about.
  #askedMap: Map<string, Asked> | null = null;
  #invitedMap: Map<string, Invited> | null = null;
  #now: () => number;
  #sweepAt = INVITED_SWEEP_AT;

  /** `onExpire` is called (from a timer) for an ask that outlived its ttl. */
  constructor(
    limits: AskLimits,
    onExpire: (key: HandshakeKey) => void,
    now: () => number = Date.now,
  ) {
    this.#limits = limits;
    this.#onExpire = onExpire;
    this.#now = now;
  }

  /** Handshakes this user started (as A), by id. */
  get #asked(): Map<string, Asked> {
    return (this.#askedMap ??= new Map());
  }
  /** Handshakes offered to this user (as B), by id. */
  get #invited(): Map<string, Invited> {
    return (this.#invitedMap ??= new Map());
  }

  /** Offers pending for this user (as B). */
  get invitedCount(): number {
    return this.#invitedMap?.size ?? 0;
  }

  /**
   * Records an offer. Most end with a TCPAbort or the session; one whose
   * asker's node died, or that became a link, never hears of it again: past
   * the ttl it is dropped when offers pile up, so a long session holds no
   * more than one ttl's worth.
   */
  #invite(id: string, key: HandshakeKey): void {
    const invited = this.#invited;
    if (invited.size >= this.#sweepAt) {
      const now = this.#now();
      for (const [i, o] of invited) if (o.until <= now) invited.delete(i);
      // The next sweep waits until the map doubles: O(1) per offer, however many are live.
      this.#sweepAt = Math.max(INVITED_SWEEP_AT, 2 * invited.size);
    }
    invited.set(id, { key, until: this.#now() + this.#limits.handshakeTtlMs });
  }

  /** False if `key` is already pending, or the user has too many unanswered asks. */
  mayAsk(key: HandshakeKey): boolean {
    if (this.#asked.has(handshakeId(key))) return false;
    let unanswered = 0;
    for (const a of this.#asked.values()) if (!a.answered) unanswered++;
    return unanswered < this.#limits.maxPendingAsks;
  }

  /** Records an ask that presence accepted; its timer starts now. */
  asked(key: HandshakeKey): void {
    const timer = unrefTimeout(() => this.#onExpire(key), this.#limits.handshakeTtlMs);
    this.#asked.set(handshakeId(key), { key, timer, answered: false });
  }

  /** The ask's timer fired: forget it (the caller aborts it). */
  expired(key: HandshakeKey): void {
    this.#asked.delete(handshakeId(key));
  }

  /** A TCPAsk, TCPAccept or TCPAbort for this user (`me`) is being delivered. */
  delivered(op: number, key: HandshakeKey, me: string | null): void {
    const id = handshakeId(key);
    if (op === Op.TCPAsk && key.b === me) this.#invite(id, key);
    if (op === Op.TCPAbort) {
      this.#invitedMap?.delete(id);
      const asked = this.#askedMap?.get(id);
      if (asked) {
        clearTimer(asked.timer);
        this.#asked.delete(id);
      }
    }
    if (op === Op.TCPAccept) {
      const asked = this.#askedMap?.get(id);
      if (asked) asked.answered = true;
    }
  }

  /** Every handshake still pending, asked first; forgets them all and stops their timers. */
  takeAll(): HandshakeKey[] {
    // Read through the nullable fields: the getters would allocate maps just to drop them.
    const asked = [...(this.#askedMap?.values() ?? [])];
    for (const a of asked) clearTimer(a.timer);
    const invited = [...(this.#invitedMap?.values() ?? [])].map((o) => o.key);
    const keys = asked.map((a) => a.key).concat(invited);
    this.#askedMap = null;
    this.#invitedMap = null;
    return keys;
  }
}
