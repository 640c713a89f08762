/**
 * Aborting a private-connection handshake: drop it from presence, tell both
 * users with a TCPAbort, and tell this node's listeners (the link broker,
 * which closes a parked end of it) through an event.
 */
import { encode, type HandshakeKey, Op } from "../../protocol/mod.ts";
import { type Presence, PresenceUnavailable } from "../../presence/presence.ts";
import type { Logger } from "../../lib/log.ts";
import { errorMessage } from "../../lib/errors.ts";

/** The store refused because this node closed it (stopping), not because Redis is away. */
function stopped(e: unknown): boolean {
  return e instanceof PresenceUnavailable && e.message === "presence closed";
}

export function abortFrame(k: HandshakeKey): Uint8Array {
  return encode({ op: Op.TCPAbort, sender: k.a, recipient: k.b, password: k.password });
}

/** Who hears of an abort: everyone (A and B), or everyone but a user who is leaving. */
export interface TellOptions {
  /** A pseudo not to tell: its holder is gone, and a later holder must not hear of it. */
  except?: string;
}

export class Handshakes {
  #presence: Presence;
  #log: Logger;
  #listeners: Array<(k: HandshakeKey) => void> = [];

  constructor(presence: Presence, log: Logger) {
    this.#presence = presence;
    this.#log = log;
  }

  /** Calls `listener` with each handshake this node learns is over. */
  onAborted(listener: (k: HandshakeKey) => void): void {
    this.#listeners.push(listener);
  }

  /** Emits the end of `k` on this node (e.g. a TCPAbort reached one of its users). */
  ended(k: HandshakeKey): void {
    for (const l of this.#listeners) l(k);
  }

  /**
   * Drops the handshake if it is still pending and tells A and B with a
   * TCPAbort. Returns whether it was pending. Never rejects.
   */
  async abort(k: HandshakeKey, reason: string, tell: TellOptions = {}): Promise<boolean> {
    this.ended(k);
    let was = false;
    try {
      was = await this.#presence.cancelHandshake(k);
      if (was) await this.tellAborted([k], tell);
    } catch (e) {
      // A node stopping closes presence before its sessions end: nothing is wrong, and the
      // handshake lapses with its ttl.
      const level = stopped(e) ? "debug" : "warn";
      this.#log.log(level, "could not abort handshake", { reason, error: errorMessage(e) });
      return false;
    }
    if (was) this.#log.debug("handshake aborted", { a: k.a, b: k.b, reason });
    return was;
  }

  /** Sends each handshake's TCPAbort to its A and B (once if A is B). Never rejects. */
  async tellAborted(keys: HandshakeKey[], tell: TellOptions = {}): Promise<void> {
    try {
      for (const k of keys) {
        const frame = abortFrame(k);
        if (k.a !== tell.except) await this.#presence.send(k.a, frame);
        if (k.b !== k.a && k.b !== tell.except) await this.#presence.send(k.b, frame);
      }
    } catch (e) {
      this.#log.log(stopped(e) ? "debug" : "warn", "could not tell users of an aborted handshake", {
        error: errorMessage(e),
      });
    }
  }
}
