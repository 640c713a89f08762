import type { Claim } from "./presence.ts";

/**
 * Which pseudos hold which name keys: the bookkeeping behind "one name, one holder" wherever a
 * process keeps it in memory (the node's own users, and the in-memory directory).
 */
export class ClaimTable {
  /** Pseudo → what it holds. */
  readonly #claims = new Map<string, Claim>();
  /** Name key → the pseudo holding it. */
  readonly #names = new Map<string, string>();

  get size(): number {
    return this.#claims.size;
  }

  /** Takes `pseudo` and every key of `claim`; false (nothing taken) if any is held already. */
  hold(pseudo: string, claim: Claim): boolean {
    if (this.#claims.has(pseudo) || claim.keys.some((k) => this.#names.has(k))) return false;
    this.#claims.set(pseudo, claim);
    for (const k of claim.keys) this.#names.set(k, pseudo);
    return true;
  }

  /** Gives back `pseudo` and the keys it holds. */
  drop(pseudo: string): void {
    for (const k of this.#claims.get(pseudo)?.keys ?? []) {
      if (this.#names.get(k) === pseudo) this.#names.delete(k);
    }
    this.#claims.delete(pseudo);
  }

  get(pseudo: string): Claim | undefined {
    return this.#claims.get(pseudo);
  }

  has(pseudo: string): boolean {
    return this.#claims.has(pseudo);
  }

  clear(): void {
    this.#claims.clear();
    this.#names.clear();
  }
}
