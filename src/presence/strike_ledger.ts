/**
 * Per-handshake strikes for the guessing rule (docs/PROTOCOL.md, "Link
 * guessing that denies nobody"), as the memory store keeps them; the Redis
 * store does the same in hs_strike.lua. Pure: no clock, no I/O.
 */

/**
 * Failed joins counted per pending handshake, not per pair and window: every
 * miss from an owner address for (A, B) counts against each handshake of the
 * pair pending at that moment, and one that reaches the budget is aborted.
 * A guess can only hit a handshake pending when it is made, so at most
 * `budget` guesses ever reach one: ≤ budget/65536. A new handshake starts
 * with a clean budget, so misses never carry over to A's next one.
 */
export class StrikeLedger<Id> {
  readonly #strikes = new Map<Id, number>();

  get size(): number {
    return this.#strikes.size;
  }

  /** A handshake became pending. */
  open(id: Id): void {
    this.#strikes.set(id, 0);
  }

  /** A handshake ended (joined, declined, expired, aborted). */
  close(id: Id): void {
    this.#strikes.delete(id);
  }

  strikesOf(id: Id): number | undefined {
    return this.#strikes.get(id);
  }

  /** Forgets every handshake. */
  clear(): void {
    this.#strikes.clear();
  }

  /**
   * One miss against the given pending handshakes (the pair's). Returns the
   * ones that reached `budget` strikes; they are forgotten here and the
   * caller aborts them.
   */
  strike(pending: Iterable<Id>, budget: number): Id[] {
    if (!Number.isInteger(budget) || budget < 1) throw new RangeError("budget must be ≥ 1");
    const exhausted: Id[] = [];
    for (const id of pending) {
      const n = this.#strikes.get(id);
      if (n === undefined) continue;
      if (n + 1 >= budget) {
        this.#strikes.delete(id);
        exhausted.push(id);
      } else {
        this.#strikes.set(id, n + 1);
      }
    }
    return exhausted;
  }
}
