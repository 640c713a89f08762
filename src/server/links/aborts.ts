/**
 * Aborting a private-connection handshake: drop it from the registry, tell both
 * users with a TCPAbort (on this node, or through the relay), and tell this
 * node's listeners (the link broker, which closes a parked end of it) through
 * an event.
 */
import { encode, type HandshakeKey, Op, readHandshakeKey } from "../../protocol/mod.ts";
import {
  type HandshakeRegistry,
  PresenceUnavailable,
  type Relay,
} from "../../presence/presence.ts";
import type { Logger } from "../../lib/log.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { LocalUsers } from "../local_users.ts";

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

export class HandshakeAborts {
  #registry: HandshakeRegistry;
  #users: LocalUsers;
  #relay: Relay;
  #log: Logger;
  #listeners: Array<(k: HandshakeKey) => void> = [];

  constructor(registry: HandshakeRegistry, users: LocalUsers, relay: Relay, log: Logger) {
    this.#registry = registry;
    this.#users = users;
    this.#relay = relay;
    this.#log = log;
    users.onMissed((pseudo, frame) => this.undelivered(pseudo, frame));
  }

  /**
   * A frame for `pseudo` that it will never read (it left): if it is an ask to it, the
   * handshake is aborted and A told, so it does not outlive its recipient in the registry.
   */
  undelivered(pseudo: string, frame: Uint8Array): void {
    if (frame[0] !== Op.TCPAsk) return;
    const key = readHandshakeKey(frame);
    if (key?.b === pseudo) void this.abort(key, `${pseudo} left`, { except: pseudo });
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
      was = await this.#registry.cancel(k);
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
        if (k.a !== tell.except) await this.#tell(k.a, frame);
        if (k.b !== k.a && k.b !== tell.except) await this.#tell(k.b, frame);
      }
    } catch (e) {
      this.#log.log(stopped(e) ? "debug" : "warn", "could not tell users of an aborted handshake", {
        error: errorMessage(e),
      });
    }
  }

  /** To the user on this node, else through the relay (a user who left hears nothing). */
  async #tell(pseudo: string, frame: Uint8Array): Promise<void> {
    if (!this.#users.send(pseudo, frame)) await this.#relay.send(pseudo, frame);
  }
}
