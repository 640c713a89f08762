/**
 * Rate-limited log lines: a hostile client can make a node log once per
 * refused connection, so lines of one kind are let through at most `perWindow`
 * times per window; the ones held back are counted and reported with the next
 * line let through.
 */
export class LogBudget {
  readonly #perWindow: number;
  readonly #windowMs: number;
  #windowStart = 0;
  #used = 0;
  #suppressed = 0;

  constructor(perWindow = 10, windowMs = 1000) {
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  /**
   * Null: stay quiet. Otherwise log now, with `suppressed` lines held back
   * since the last one let through (0 if none).
   */
  take(now = Date.now()): { suppressed: number } | null {
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#used = 0;
    }
    if (this.#used >= this.#perWindow) {
      this.#suppressed++;
      return null;
    }
    this.#used++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { suppressed };
  }
}
