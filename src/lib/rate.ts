/**
 * Rates: a token bucket (how much may happen now, and how long to wait for
 * more), and a throttle for repeated warnings (a few in full, then one
 * summary line per interval).
 */
import type { Fields, Logger } from "./log.ts";

/** `rate` tokens per second up to `burst`; a rate of 0 means unlimited. */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;
  #now: () => number;

  constructor(rate: number, burst: number, now: () => number = performance.now.bind(performance)) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#at = now();
  }

  #refill(): void {
    const t = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((t - this.#at) * this.#rate) / 1000);
    this.#at = t;
  }

  /** Takes one token if there is one (a connection attempt, say). */
  tryTake(n = 1): boolean {
    if (this.#rate === 0) return true;
    this.#refill();
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Spends `n` tokens whether or not they are there: the balance may go below zero (a debt). */
  spend(n: number): void {
    if (this.#rate === 0) return;
    this.#refill();
    this.#tokens -= n;
  }

  /** Milliseconds until the balance is back to zero (0 if not in debt). */
  debtMs(): number {
    if (this.#rate === 0) return 0;
    this.#refill();
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.#rate);
  }
}

/**
 * Warnings an attacker can cause at will (a bad greeting, a malformed frame)
 * must not fill the disk: per reason, the first `perInterval` lines of an
 * interval are written in full, the rest are counted and summed up in one
 * line when the next interval starts.
 */
export class WarnThrottle {
  #log: Logger;
  #intervalMs: number;
  #perInterval: number;
  #windows = new Map<string, { start: number; shown: number; suppressed: number }>();
  #now: () => number;

  constructor(log: Logger, intervalMs: number, perInterval = 5, now: () => number = Date.now) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#perInterval = perInterval;
    this.#now = now;
  }

  /** A warning whose `msg` doubles as its reason. */
  warn(msg: string, fields?: Fields): void {
    const t = this.#now();
    let w = this.#windows.get(msg);
    if (w && t - w.start >= this.#intervalMs) {
      if (w.suppressed > 0) {
        this.#log.warn("warnings suppressed", { reason: msg, count: w.suppressed });
      }
      w = undefined;
    }
    if (!w) {
      w = { start: t, shown: 0, suppressed: 0 };
      if (this.#windows.size >= 1000) this.#windows.clear(); // reasons are a fixed set; a safety net
      this.#windows.set(msg, w);
    }
    if (w.shown < this.#perInterval) {
      w.shown++;
      this.#log.warn(msg, fields);
    } else {
      w.suppressed++;
    }
  }
}
