/**
 * Which pseudos this node holds in Redis: reserve and release, the frames
 * that overtake a reserve's reply, calls whose outcome is unknown (a timeout
 * is not a "no"), and writing everything again after Redis came back.
 */
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { LocalUsers } from "../local_users.ts";
import {
  bareClaim,
  type Claim,
  type Inbox,
  PresenceUnavailable,
  type ReserveResult,
} from "../presence.ts";
import { unavailable } from "./connections.ts";
import { NO_LEASE, type RedisTopology } from "./topology.ts";

/** Frames held for one pseudo while its reserve reply is on its way, at most (count, bytes). */
const EARLY_MAX_FRAMES = 1024;
const EARLY_MAX_BYTES = 1024 * 1024;

export interface ReservationDeps {
  nodeId: string;
  store: RedisTopology;
  users: LocalUsers;
  log: LogFn;
  /** Redis refused a reserve because this node's lease is gone. */
  onNoLease: () => void;
  /** After a resync, a pseudo this node still serves is held by another live node. */
  onLost?: (pseudo: string) => void;
}

export class Reservations {
  readonly #d: ReservationDeps;
  /** Pseudos whose reserve is in flight on this node. */
  #pending = new Set<string>();
  /** Frames that arrived for a pending pseudo before its reserve's reply. */
  #early = new Map<string, Uint8Array[]>();
  /** Pseudos whose early frames overflowed during the current reserve (logged once). */
  #earlyDropped = new Set<string>();
  /** Pseudos that Redis may still bind to this node though they are not local (a failed call). */
  #uncertain = new Set<string>();
  /** What each local (or pending) user holds besides its pseudo; written again by reassert. */
  #claims = new Map<string, Claim>();
  /**
   * Name key → the local or pending pseudo holding it. Redis Cluster marks a name key with the
   * node, not the pseudo, so two names of this node that share a key are told apart here.
   */
  #names = new Map<string, string>();
  #closed = false;

  constructor(deps: ReservationDeps) {
    this.#d = deps;
  }

  async reserve(pseudo: string, inbox: Inbox, claim: Claim): Promise<ReserveResult> {
    const { users, store, log } = this.#d;
    if (users.get(pseudo) || this.#pending.has(pseudo)) return "taken";
    if (claim.keys.some((k) => this.#names.has(k))) return "taken";
    this.#pending.add(pseudo);
    this.#hold(pseudo, claim);
    let ok = false;
    try {
      if (!(await store.reserve(pseudo, claim))) return "taken";
      if (this.#closed) throw new PresenceUnavailable("presence closed");
      ok = true;
      users.add(pseudo, inbox);
      this.#uncertain.delete(pseudo);
      const early = this.#early.get(pseudo);
      if (early) {
        try {
          for (const f of early) inbox.deliver(f);
        } catch (e) {
          log("error", "inbox.deliver threw", { pseudo, error: errorMessage(e) });
        }
      }
      return "ok";
    } catch (e) {
      // The script may have run (a timeout is not a "no"): undo it right behind, on the same
      // connection; if that fails too, the heartbeat retries.
      if (!this.#closed) {
        this.#uncertain.add(pseudo);
        this.#d.store.release([pseudo]).then(
          () => {
            if (!this.#pending.has(pseudo)) this.#uncertain.delete(pseudo);
          },
          () => {}, // still uncertain: flushUncertain retries from the heartbeat
        );
        if (errorMessage(e).includes(NO_LEASE)) this.#d.onNoLease();
      }
      throw unavailable(e);
    } finally {
      this.#pending.delete(pseudo);
      this.#early.delete(pseudo);
      this.#earlyDropped.delete(pseudo);
      if (!ok) this.#drop(pseudo);
    }
  }

  #hold(pseudo: string, claim: Claim): void {
    this.#claims.set(pseudo, claim);
    for (const k of claim.keys) this.#names.set(k, pseudo);
  }

  #drop(pseudo: string): void {
    for (const k of this.#claims.get(pseudo)?.keys ?? []) {
      if (this.#names.get(k) === pseudo) this.#names.delete(k);
    }
    this.#claims.delete(pseudo);
  }

  /** The client key of a user logged in on this node; undefined if not local. */
  localClient(pseudo: string): string | undefined {
    return this.#d.users.get(pseudo) ? this.#claims.get(pseudo)?.client : undefined;
  }

  async release(pseudo: string, inbox: Inbox): Promise<void> {
    if (!this.#d.users.remove(pseudo, inbox) || this.#closed) return;
    this.#drop(pseudo);
    try {
      await this.#d.store.release([pseudo]);
    } catch (e) {
      this.#uncertain.add(pseudo); // retried by the heartbeat
      throw unavailable(e);
    }
  }

  /**
   * Keeps a frame for a pseudo whose reserve is in flight: Redis already binds it here but the
   * reply is still on its way (the sender was told it was delivered). False if not pending.
   */
  holdEarly(pseudo: string, frame: Uint8Array): boolean {
    if (!this.#pending.has(pseudo)) return false;
    const early = this.#early.get(pseudo);
    if (!early) {
      this.#early.set(pseudo, [frame]);
      return true;
    }
    // Bounded like a reader's output queue: a flood in the reply's window must not grow it.
    let held = 0;
    for (const f of early) held += f.length;
    if (early.length >= EARLY_MAX_FRAMES || held + frame.length > EARLY_MAX_BYTES) {
      if (!this.#earlyDropped.has(pseudo)) {
        this.#earlyDropped.add(pseudo); // one line per reserve, not per frame
        this.#d.log("warn", "frames for a pseudo being reserved dropped past the bound", {
          pseudo,
          heldBytes: held,
        });
      }
      return true; // taken, and lost: logged
    }
    early.push(frame);
    return true;
  }

  /** Writes every local reservation again (Redis may have restarted empty). */
  async reassert(): Promise<void> {
    const { users, nodeId, store, log } = this.#d;
    const all = [...users.pseudos()];
    const lost = await store.reassert(all, (p) => this.#claims.get(p) ?? bareClaim(p));
    for (const p of lost) {
      if (!users.get(p)) continue;
      log("warn", "a local user's pseudo is now held by another live node", {
        pseudo: p,
        node: nodeId,
      });
      try {
        this.#d.onLost?.(p);
      } catch (e) {
        log("error", "onLost callback threw", { error: errorMessage(e) });
      }
    }
    log("info", "reservations re-asserted", { node: nodeId, restored: all.length - lost.length });
  }

  /** Drops what Redis binds to this node but this node does not serve. */
  async reconcile(): Promise<void> {
    const members = await this.#d.store.members();
    const stale = members.filter((p) => !this.#d.users.get(p) && !this.#pending.has(p));
    // Sent in the same tick as the check: anything reserved later is ordered after it.
    await this.#d.store.release(stale);
  }

  /** Retries the releases whose outcome was unknown. */
  async flushUncertain(): Promise<void> {
    if (this.#uncertain.size === 0) return;
    const { users } = this.#d;
    const todo = [...this.#uncertain].filter((p) => !users.get(p) && !this.#pending.has(p));
    for (const p of this.#uncertain) if (users.get(p)) this.#uncertain.delete(p);
    await this.#d.store.release(todo);
    for (const p of todo) this.#uncertain.delete(p);
  }

  /** Forgets everything local; later replies are refused. */
  close(): void {
    this.#closed = true;
    this.#d.users.clear();
    this.#claims.clear();
    this.#names.clear();
    this.#pending.clear();
    this.#uncertain.clear();
  }
}
