/**
 * Who may connect and log in: the node-wide connection limit and descriptor
 * budget, and per source address a cap on open connections, on logged-in
 * sessions and on new connections per second. When the node is full, the
 * oldest connection that never logged in makes room for the new one, so a
 * flood of idle connections cannot starve people who log in.
 */
import { TokenBucket } from "../../lib/rate.ts";
import type { FdBudget, FdSlot, Slot } from "./fd_budget.ts";
import type { Metrics } from "../metrics.ts";

export interface AdmissionLimits {
  maxConnections: number;
  maxConnsPerAddress: number;
  maxSessionsPerAddress: number;
  connRatePerAddress: number;
  connBurstPerAddress: number;
}

/** Evictions whose sockets are still closing, at most (the descriptor budget's headroom covers them). */
const MAX_LEAVING = 16;

/** Source addresses remembered at most before idle ones are forgotten. */
const MAX_ADDRESSES = 10_000;

export type RefusalReason = "per_address" | "address_rate" | "node_full" | "fd_budget";

interface AddressState {
  conns: number;
  sessions: number;
  bucket: TokenBucket;
}

/** What a chat session does with its connection's ticket: take or give back a login's place. */
export interface LoginTicket {
  /** A login is starting: false if this address has its sessions' worth already (`limit` 0: none). */
  claimSession(limit: number): boolean;
  /** The login failed after all: the session place is given back. */
  dropSession(): void;
}

/** One admitted client connection's place: its descriptor slot and its address's counts. */
export class Ticket implements Slot, LoginTicket {
  readonly address: string;
  #admission: Admission;
  #state: AddressState;
  #fd: FdSlot;
  #session = false;
  #released = false;
  #onEvict: ((reason: string) => void) | null = null;

  constructor(admission: Admission, address: string, state: AddressState, fd: FdSlot) {
    this.#admission = admission;
    this.address = address;
    this.#state = state;
    this.#fd = fd;
  }

  /** What to do if this connection is evicted to make room (close it, for `reason`). */
  onEvict(fn: (reason: string) => void): void {
    this.#onEvict = fn;
  }

  /**
   * Called by the admission: this never-logged-in connection must go. Its
   * place is given back when its handler has closed it (`release`), not
   * now: a socket with a read in flight keeps its descriptor until then.
   */
  evict(): void {
    this.#onEvict?.("evicted to make room: never logged in");
  }

  /** A login is starting: false if this address has its sessions' worth already (`limit` 0: none). */
  claimSession(limit: number): boolean {
    if (this.#session) return true;
    if (limit > 0 && this.#state.sessions >= limit) return false;
    this.#state.sessions++;
    this.#session = true;
    this.#admission.settled(this);
    return true;
  }

  /** The login failed after all: the session place is given back. */
  dropSession(): void {
    if (!this.#session || this.#released) return;
    this.#session = false;
    this.#state.sessions--;
    this.#admission.unsettled(this);
  }

  /** The socket became a private-link end: it cannot be evicted any more. */
  handedOver(): void {
    this.#admission.settled(this);
  }

  /** The socket is closed: every count and the descriptor slot are given back. Idempotent. */
  release(): void {
    if (this.#released) return;
    if (this.#session) this.#state.sessions--;
    this.#session = false;
    this.#released = true;
    this.#state.conns--;
    this.#fd.release();
    this.#admission.released(this);
  }
}

export class Admission {
  #limits: AdmissionLimits;
  #budget: FdBudget;
  #byAddress = new Map<string, AddressState>();
  /** The map's size past which the next new address sweeps out idle ones. */
  #sweepAt = MAX_ADDRESSES;
  /** Connections that never logged in (nor became a link end), oldest first. */
  #unsettled = new Set<Ticket>();
  #open = 0;
  /** Evicted connections not yet closed: their places are the newcomers' already. */
  #leaving = new Set<Ticket>();
  #metrics: Metrics;

  constructor(limits: AdmissionLimits, budget: FdBudget, metrics: Metrics) {
    this.#limits = limits;
    this.#budget = budget;
    this.#metrics = metrics;
  }

  get open(): number {
    return this.#open;
  }

  /** Source addresses remembered (open connections, or a recent connect's rate bucket). */
  get addresses(): number {
    return this.#byAddress.size;
  }

  /** A ticket for a new connection from `address`, or why it is refused. */
  admit(address: string): Ticket | RefusalReason {
    const l = this.#limits;
    let state = this.#byAddress.get(address);
    if (!state) {
      this.#sweepIdle(); // before adding: the new entry has nothing open yet either
      state = {
        conns: 0,
        sessions: 0,
        bucket: new TokenBucket(l.connRatePerAddress, l.connBurstPerAddress),
      };
      this.#byAddress.set(address, state);
    }
    if (l.maxConnsPerAddress > 0 && state.conns >= l.maxConnsPerAddress) return "per_address";
    if (!state.bucket.tryTake()) return "address_rate";
    if (this.#full()) this.#evictOldest();
    if (this.#open - this.#leaving.size >= l.maxConnections) return "node_full";
    const fd = this.#budget.tryAcquire("chat", this.#leaving.size);
    if (!fd) return "fd_budget";
    state.conns++;
    this.#open++;
    const ticket = new Ticket(this, address, state, fd);
    this.#unsettled.add(ticket);
    return ticket;
  }

  /** No room for one more, counting the places of evicted connections as free. */
  #full(): boolean {
    const leaving = this.#leaving.size;
    return this.#open - leaving >= this.#limits.maxConnections ||
      this.#budget.used - leaving >= this.#budget.max;
  }

  #evictOldest(): void {
    // Evicted sockets close within a turn or two; past this many at once, newcomers wait.
    if (this.#leaving.size >= MAX_LEAVING) return;
    const oldest = this.#unsettled.values().next();
    if (oldest.done) return;
    this.#metrics.evictions++;
    this.#unsettled.delete(oldest.value);
    this.#leaving.add(oldest.value);
    oldest.value.evict();
  }

  /** @internal a ticket logged in or was handed over. */
  settled(t: Ticket): void {
    this.#unsettled.delete(t);
  }

  /** @internal a ticket's login failed: it may be evicted again (as the youngest). */
  unsettled(t: Ticket): void {
    this.#unsettled.add(t);
  }

  /** @internal a ticket was released. */
  released(t: Ticket): void {
    this.#unsettled.delete(t);
    this.#leaving.delete(t);
    this.#open--;
  }

  /**
   * An address with nothing open is kept for its rate bucket (the memory of
   * its recent connects), until there are many: then the idle ones go. Run as
   * an address is added, refused or not (a full node refusing a stream of new
   * addresses must not grow the map); the next sweep waits until the map has
   * doubled, so sweeps cost O(1) per address however many stay open.
   */
  #sweepIdle(): void {
    if (this.#byAddress.size <= this.#sweepAt) return;
    for (const [a, s] of this.#byAddress) {
      if (s.conns === 0 && s.sessions === 0) this.#byAddress.delete(a);
    }
    this.#sweepAt = Math.max(MAX_ADDRESSES, 2 * this.#byAddress.size);
  }
}
