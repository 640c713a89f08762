/**
 * The guessing policy for private links: failed attempts to join a link are
 * counted per source address (on this node) and per (A, B) pair (in presence,
 * so guesses spread over nodes add up), so a 16-bit password cannot be guessed.
 */
import type { HandshakeKey } from "../../protocol/mod.ts";
import type { Presence } from "../../presence/presence.ts";
import type { Logger } from "../../lib/log.ts";
import type { WarnThrottle } from "../../lib/rate.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { Metrics } from "../metrics.ts";
import type { Handshakes } from "./handshakes.ts";

export interface GuardLimits {
  guessLimitPair: number;
  guessLimitAddress: number;
  guessWindowMs: number;
}

/** Source addresses remembered at most; past it, those whose window passed are forgotten. */
const MAX_ADDRESSES = 10_000;

export class LinkGuard {
  #presence: Presence;
  #handshakes: Handshakes;
  #limits: GuardLimits;
  #log: Logger;
  #warn: WarnThrottle;
  #metrics: Metrics;
  /** Failed link attempts per source address on this node: time stamps in the window. */
  #byAddress = new Map<string, number[]>();

  constructor(
    presence: Presence,
    handshakes: Handshakes,
    limits: GuardLimits,
    log: Logger,
    warn: WarnThrottle,
    metrics: Metrics,
  ) {
    this.#presence = presence;
    this.#handshakes = handshakes;
    this.#limits = limits;
    this.#log = log;
    this.#warn = warn;
    this.#metrics = metrics;
  }

  /** True while `address` has used up its failed attempts. */
  addressBlocked(address: string): boolean {
    const now = Date.now();
    const recent = (this.#byAddress.get(address) ?? []).filter((t) =>
      t > now - this.#limits.guessWindowMs
    );
    if (recent.length === 0) this.#byAddress.delete(address);
    else this.#byAddress.set(address, recent);
    return recent.length >= this.#limits.guessLimitAddress;
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
    if (this.#byAddress.size > MAX_ADDRESSES) {
      for (const [a, ts] of this.#byAddress) {
        if (ts[ts.length - 1] <= now - this.#limits.guessWindowMs) this.#byAddress.delete(a);
      }
    }
    try {
      const n = await this.#presence.strike(k.a, k.b, this.#limits.guessWindowMs);
      this.#warn.warn("failed private link attempt", { a: k.a, b: k.b, address, strikes: n });
      if (n >= this.#limits.guessLimitPair) {
        const dropped = await this.#presence.cancelPair(k.a, k.b);
        for (const d of dropped) this.#handshakes.ended(d);
        if (dropped.length > 0) {
          this.#log.warn("handshakes aborted after repeated failed attempts", {
            a: k.a,
            b: k.b,
            count: dropped.length,
          });
          await this.#handshakes.tellAborted(dropped);
        }
      }
    } catch (e) {
      this.#log.warn("could not record failed link attempt", { error: errorMessage(e) });
    }
  }
}
