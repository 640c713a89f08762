/**
 * Where this node last found each remote user: pseudo → node id, so a send needs no lookup in
 * Redis (the user keys stay the truth). An entry is only a guess: the node it names answers "not
 * here" if the user left or moved, and the sender then drops the entry and looks again. Bounded:
 * past `max` entries the oldest go first.
 */
import type { RelayStats } from "../presence.ts";

export class Routes {
  readonly #max: number;
  readonly #byPseudo = new Map<string, string>();
  /** Counts hits, misses, and entries found wrong (answered "not here", or nobody listening). */
  readonly #stats: RelayStats;

  constructor(max: number, stats: RelayStats) {
    this.#max = max;
    this.#stats = stats;
  }

  get size(): number {
    return this.#byPseudo.size;
  }

  get(pseudo: string): string | undefined {
    const node = this.#byPseudo.get(pseudo);
    if (node === undefined) this.#stats.routeMisses++;
    else this.#stats.routeHits++;
    return node;
  }

  set(pseudo: string, node: string): void {
    if (this.#byPseudo.size >= this.#max && !this.#byPseudo.has(pseudo)) {
      // Insertion order: the first key is the oldest entry.
      this.#byPseudo.delete(this.#byPseudo.keys().next().value!);
    }
    this.#byPseudo.set(pseudo, node);
  }

  /** The entry for `pseudo` was wrong (if it still names `node`). */
  drop(pseudo: string, node: string): void {
    if (this.#byPseudo.get(pseudo) !== node) return;
    this.#byPseudo.delete(pseudo);
    this.#stats.routeStale++;
  }

  clear(): void {
    this.#byPseudo.clear();
  }
}
