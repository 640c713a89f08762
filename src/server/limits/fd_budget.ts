/**
 * One budget of file descriptors for every socket the node holds: chat
 * connections, private-link ends (parked and paired), bridge sockets both
 * ways, admin requests. A socket takes a slot before it is served and gives
 * it back when closed, so the node refuses work while it still has
 * descriptors to refuse it with, instead of failing in `accept`.
 */

export type SocketKind = "chat" | "link" | "bridge" | "admin";

/** A socket's place in the node's limits, given back when the socket closes; idempotent. */
export interface Slot {
  release(): void;
}

/** A place in the descriptor budget, held while a socket is open. */
export interface FdSlot extends Slot {
  readonly kind: SocketKind;
}

/** Descriptors kept back from the process limit for everything else (stdio, Redis, timers, the runtime). */
const HEADROOM_MIN = 64;
const HEADROOM_SHARE = 0.1;

/** The soft "Max open files" of this process, or null where /proc is not readable. */
export function processFdLimit(
  read = () => Deno.readTextFileSync("/proc/self/limits"),
): number | null {
  let text: string;
  try {
    text = read();
  } catch {
    return null; // not Linux, or no --allow-read: the caller falls back to a default
  }
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
  if (!m || m[1] === "unlimited") return null;
  return Number(m[1]);
}

/** The budget for a process limit: what is left after headroom, at least 16. */
export function defaultFdBudget(limit: number | null): number {
  if (limit === null) return 60_000;
  return Math.max(16, Math.floor(limit - Math.max(HEADROOM_MIN, limit * HEADROOM_SHARE)));
}

export class FdBudget {
  readonly max: number;
  #used = 0;
  #byKind: Record<SocketKind, number> = { chat: 0, link: 0, bridge: 0, admin: 0 };

  constructor(max: number) {
    this.max = max;
  }

  get used(): number {
    return this.#used;
  }

  get full(): boolean {
    return this.#used >= this.max;
  }

  inUse(kind: SocketKind): number {
    return this.#byKind[kind];
  }

  /**
   * A slot, or null when the budget is spent. `slack`: slots held by
   * sockets already being closed, which may be exceeded by that many.
   */
  tryAcquire(kind: SocketKind, slack = 0): FdSlot | null {
    if (this.#used >= this.max + slack) return null;
    this.#used++;
    this.#byKind[kind]++;
    return new BudgetSlot(this, kind);
  }

  /** @internal a slot was released (once). */
  returned(kind: SocketKind): void {
    this.#used--;
    this.#byKind[kind]--;
  }
}

/** A class, not a closure: one object per socket instead of three (memory per idle session). */
class BudgetSlot implements FdSlot {
  readonly kind: SocketKind;
  #budget: FdBudget | null;

  constructor(budget: FdBudget, kind: SocketKind) {
    this.#budget = budget;
    this.kind = kind;
  }

  release(): void {
    this.#budget?.returned(this.kind);
    this.#budget = null;
  }
}
