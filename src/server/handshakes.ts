/**
 * The private-connection handshake rules shared by chat sessions and link
 * ends: aborting a handshake tells both users, and failed attempts to join a
 * link are counted so a 16-bit password cannot be guessed.
 */
import { encode, type HandshakeKey, Op } from "../protocol/mod.ts";
import type { Presence } from "../presence/presence.ts";
import type { ServerConfig } from "./config.ts";
import type { Logger } from "../lib/log.ts";
import type { Metrics } from "./metrics.ts";

export function abortFrame(k: HandshakeKey): Uint8Array {
  return encode({ op: Op.TCPAbort, sender: k.a, recipient: k.b, password: k.password });
}

export class Handshakes {
  #presence: Presence;
  #config: ServerConfig;
  #log: Logger;
  #metrics: Metrics;
  /** Failed link attempts per source address on this node: time stamps in the window. */
  #byAddress = new Map<string, number[]>();
  /** Closes this node's parked private end of a handshake, if any (the link broker's). */
  readonly dropParked: (k: HandshakeKey) => void;

  constructor(
    presence: Presence,
    config: ServerConfig,
    log: Logger,
    metrics: Metrics,
    dropParked: (k: HandshakeKey) => void,
  ) {
    this.dropParked = dropParked;
    this.#presence = presence;
    this.#config = config;
    this.#log = log;
    this.#metrics = metrics;
  }

  /**
   * Drops the handshake if it is still pending and tells A and B with a
   * TCPAbort. Returns whether it was pending. Never rejects.
   */
  async abort(k: HandshakeKey, reason: string): Promise<boolean> {
    this.dropParked(k);
    let was = false;
    try {
      was = await this.#presence.cancelHandshake(k);
      if (was) await this.tellAborted([k]);
    } catch (e) {
      this.#log.warn("could not abort handshake", { reason, error: String(e) });
      return false;
    }
    if (was) this.#log.debug("handshake aborted", { a: k.a, b: k.b, reason });
    return was;
  }

  /** Sends each handshake's TCPAbort to its A and B (once if A is B). Never rejects. */
  async tellAborted(keys: HandshakeKey[]): Promise<void> {
    try {
      for (const k of keys) {
        const frame = abortFrame(k);
        await this.#presence.send(k.a, frame);
        if (k.b !== k.a) await this.#presence.send(k.b, frame);
      }
    } catch (e) {
      this.#log.warn("could not tell users of an aborted handshake", { error: String(e) });
    }
  }

  /** True while `address` has used up its failed attempts. */
  addressBlocked(address: string): boolean {
    const now = Date.now();
    const recent = (this.#byAddress.get(address) ?? []).filter((t) =>
      t > now - this.#config.guessWindowMs
    );
    if (recent.length === 0) this.#byAddress.delete(address);
    else this.#byAddress.set(address, recent);
    return recent.length >= this.#config.guessLimitAddress;
  }

  /**
   * Counts a failed TCPAccept/TCPConnect naming (A, B) from `address`. Once
   * the pair's count reaches the limit, every pending handshake between A and
   * B is aborted: a guesser gets a few tries per handshake, not 65536.
   */
  async strike(k: HandshakeKey, address: string): Promise<void> {
    this.#metrics.hijackStrikes++;
    const now = Date.now();
    const list = this.#byAddress.get(address) ?? [];
    list.push(now);
    this.#byAddress.set(address, list);
    if (this.#byAddress.size > 10_000) {
      for (const [a, ts] of this.#byAddress) {
        if (ts[ts.length - 1] <= now - this.#config.guessWindowMs) this.#byAddress.delete(a);
      }
    }
    try {
      const n = await this.#presence.strike(k.a, k.b, this.#config.guessWindowMs);
      this.#log.warn("failed private link attempt", { a: k.a, b: k.b, address, strikes: n });
      if (n >= this.#config.guessLimitPair) {
        const dropped = await this.#presence.cancelPair(k.a, k.b);
        for (const d of dropped) this.dropParked(d);
        if (dropped.length > 0) {
          this.#log.warn("handshakes aborted after repeated failed attempts", {
            a: k.a,
            b: k.b,
            count: dropped.length,
          });
          await this.tellAborted(dropped);
        }
      }
    } catch (e) {
      this.#log.warn("could not record failed link attempt", { error: String(e) });
    }
  }
}
