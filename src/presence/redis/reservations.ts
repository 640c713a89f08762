/**
 * Which pseudos this node holds in Redis: reserve and release, the frames
 * that overtake a reserve's reply, calls whose outcome is unknown (a timeout
 * is not a "no"), and writing everything again after Redis came back.
 */
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { LocalUsers } from "../local_users.ts";
import { type Claim, type Inbox, PresenceUnavailable, type ReserveResult } from "../presence.ts";
import { type Connections, unavailable } from "./connections.ts";
import { keys, PREFIX } from "./schema.ts";

/** Pseudos per script call when many are written or released at once. */
const CHUNK = 500;

export interface ReservationDeps {
  nodeId: string;
  conns: Connections;
  users: LocalUsers;
  log: LogFn;
  /** Redis refused a reserve because this node's lease is gone. */
  onNoLease: () => void;
  /** After a resync, a pseudo this node still serves is held by another live node. */
  onLost?: (pseudo: string) => void;
}

export class Reservations {
  readonly #d: ReservationDeps;
  readonly #ownUsers: string;
  readonly #lease: string;
  /** Pseudos whose reserve is in flight on this node. */
  #pending = new Set<string>();
  /** Frames that arrived for a pending pseudo before its reserve's reply. */
  #early = new Map<string, Uint8Array[]>();
  /** Pseudos that Redis may still bind to this node though they are not local (a failed call). */
  #uncertain = new Set<string>();
  /** What each local user holds besides its pseudo (written again by reassert). */
  #claims = new Map<string, Claim>();
  #closed = false;

  constructor(deps: ReservationDeps) {
    this.#d = deps;
    this.#ownUsers = keys.nodeUsers(deps.nodeId);
    this.#lease = keys.lease(deps.nodeId);
  }

  async reserve(pseudo: string, inbox: Inbox, claim: Claim): Promise<ReserveResult> {
    const { users, nodeId, conns, log } = this.#d;
    if (users.get(pseudo) || this.#pending.has(pseudo)) return "taken";
    this.#pending.add(pseudo);
    try {
      const r = await conns.script(
        "reserve",
        keys.user(pseudo),
        this.#ownUsers,
        this.#lease,
        nodeId,
        pseudo,
        PREFIX,
        claim.client,
        ...claim.keys,
      );
      if (r !== 1) return "taken";
      if (this.#closed) throw new PresenceUnavailable("presence closed");
      users.add(pseudo, inbox);
      this.#claims.set(pseudo, claim);
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
        this.#release([pseudo]).then(
          () => {
            if (!this.#pending.has(pseudo)) this.#uncertain.delete(pseudo);
          },
          () => {}, // still uncertain: flushUncertain retries from the heartbeat
        );
        if (errorMessage(e).includes("NOLEASE")) this.#d.onNoLease();
      }
      throw unavailable(e);
    } finally {
      this.#pending.delete(pseudo);
      this.#early.delete(pseudo);
    }
  }

  async release(pseudo: string, inbox: Inbox): Promise<void> {
    if (!this.#d.users.remove(pseudo, inbox) || this.#closed) return;
    this.#claims.delete(pseudo);
    try {
      await this.#release([pseudo]);
    } catch (e) {
      this.#uncertain.add(pseudo); // retried by the heartbeat
      throw unavailable(e);
    }
  }

  /** The client key `pseudo` logged in with: local users from memory, others from Redis. */
  async clientOf(pseudo: string): Promise<string | null> {
    const local = this.#claims.get(pseudo);
    if (local && this.#d.users.get(pseudo)) return local.client || null;
    try {
      return (await this.#d.conns.cmd.hget(keys.profile(pseudo), "client")) || null;
    } catch (e) {
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
    if (early) early.push(frame);
    else this.#early.set(pseudo, [frame]);
    return true;
  }

  /** Writes every local reservation again (Redis may have restarted empty). */
  async reassert(): Promise<void> {
    const { users, nodeId, conns, log } = this.#d;
    const all = [...users.pseudos()];
    let restored = 0;
    for (let i = 0; i < all.length; i += CHUNK) {
      const chunk = all.slice(i, i + CHUNK);
      const groups = chunk.flatMap((p) => {
        const c = this.#claims.get(p) ?? { keys: [p], client: "" };
        return [p, c.client, c.keys[0] ?? "", c.keys[1] ?? ""];
      });
      const lost = await conns.script(
        "reassert",
        this.#ownUsers,
        this.#lease,
        nodeId,
        PREFIX,
        ...groups,
      ) as string[];
      restored += chunk.length - lost.length;
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
    }
    log("info", "reservations re-asserted", { node: nodeId, restored });
  }

  /** Drops what Redis binds to this node but this node does not serve. */
  async reconcile(): Promise<void> {
    const members = await this.#d.conns.cmd.smembers(this.#ownUsers);
    const stale = members.filter((p) => !this.#d.users.get(p) && !this.#pending.has(p));
    // Sent in the same tick as the check: anything reserved later is ordered after it.
    await this.#release(stale);
  }

  /** Retries the releases whose outcome was unknown. */
  async flushUncertain(): Promise<void> {
    if (this.#uncertain.size === 0) return;
    const { users } = this.#d;
    const todo = [...this.#uncertain].filter((p) => !users.get(p) && !this.#pending.has(p));
    for (const p of this.#uncertain) if (users.get(p)) this.#uncertain.delete(p);
    await this.#release(todo);
    for (const p of todo) this.#uncertain.delete(p);
  }

  /** Forgets everything local; later replies are refused. */
  close(): void {
    this.#closed = true;
    this.#d.users.clear();
    this.#claims.clear();
    this.#pending.clear();
    this.#uncertain.clear();
  }

  #release(pseudos: string[]): Promise<unknown> {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < pseudos.length; i += CHUNK) {
      calls.push(
        this.#d.conns.script(
          "release",
          this.#ownUsers,
          this.#d.nodeId,
          PREFIX,
          ...pseudos.slice(i, i + CHUNK),
        ),
      );
    }
    return Promise.all(calls);
  }
}
