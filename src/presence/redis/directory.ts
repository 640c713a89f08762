/**
 * The directory in Redis: which pseudos this node holds there. Reserve and release, calls whose
 * outcome is unknown (a timeout is not a "no"), and writing everything again after Redis came
 * back. The node's own users (`NodeUsers`) say what this node should hold; Redis says what it
 * does.
 */
import type { LogFn } from "../../lib/log.ts";
import {
  type Claim,
  type Directory,
  type NodeUsers,
  PresenceUnavailable,
  type ReserveResult,
} from "../presence.ts";
import { type Client, unavailable } from "./connections.ts";
import type { Lease } from "./lease.ts";
import { keys } from "./schema.ts";
import { NO_LEASE, type RedisTopology } from "./topology.ts";
import { errorMessage } from "../../lib/errors.ts";

export interface RedisDirectoryDeps {
  nodeId: string;
  topology: RedisTopology;
  /** For reading another node's user's profile. */
  cmd: Client;
  /** Told when Redis refuses a reserve because this node's lease is gone. */
  lease: Lease;
  users: NodeUsers;
  log: LogFn;
}

export class RedisDirectory implements Directory {
  readonly #d: RedisDirectoryDeps;
  /** Pseudos that Redis may still bind to this node though they are not here (a failed call). */
  #uncertain = new Set<string>();
  #closed = false;

  constructor(deps: RedisDirectoryDeps) {
    this.#d = deps;
  }

  async reserve(pseudo: string, claim: Claim): Promise<ReserveResult> {
    if (this.#closed) throw new PresenceUnavailable("presence closed");
    const { topology, users } = this.#d;
    try {
      if (!(await topology.reserve(pseudo, claim))) return "taken";
      if (this.#closed) throw new PresenceUnavailable("presence closed");
      this.#uncertain.delete(pseudo);
      return "ok";
    } catch (e) {
      // The script may have run (a timeout is not a "no"): undo it right behind, on the same
      // connection; if that fails too, the heartbeat retries.
      if (!this.#closed) {
        this.#uncertain.add(pseudo);
        topology.release([pseudo]).then(
          () => {
            if (!users.holds(pseudo)) this.#uncertain.delete(pseudo);
          },
          () => {}, // still uncertain: flushUncertain retries from the heartbeat
        );
        if (errorMessage(e).includes(NO_LEASE)) this.#d.lease.lapsed();
      }
      throw unavailable(e);
    }
  }

  async release(pseudo: string): Promise<void> {
    if (this.#closed) return; // closing released everything at once
    try {
      await this.#d.topology.release([pseudo]);
    } catch (e) {
      this.#uncertain.add(pseudo); // retried by the heartbeat
      throw unavailable(e);
    }
  }

  async clientOf(pseudo: string): Promise<string | null> {
    if (this.#closed) throw new PresenceUnavailable("presence closed");
    try {
      return (await this.#d.cmd.hget(keys.profile(pseudo), "client")) || null;
    } catch (e) {
      throw unavailable(e);
    }
  }

  /** Writes every local reservation again (Redis may have restarted empty). */
  async reassert(): Promise<void> {
    const { users, nodeId, topology, log } = this.#d;
    const claims = new Map(users.loggedIn());
    const lost = await topology.reassert([...claims.keys()], (p) => claims.get(p)!);
    for (const p of lost) {
      if (!users.has(p)) continue;
      log("warn", "a local user's pseudo is now held by another live node", {
        pseudo: p,
        node: nodeId,
      });
      users.evict(p);
    }
    log("info", "reservations re-asserted", { node: nodeId, restored: claims.size - lost.length });
  }

  /** Drops what Redis binds to this node but this node does not hold. */
  async reconcile(): Promise<void> {
    const members = await this.#d.topology.members();
    const stale = members.filter((p) => !this.#d.users.holds(p));
    // Sent in the same tick as the check: anything reserved later is ordered after it.
    await this.#d.topology.release(stale);
  }

  /** Retries the releases whose outcome was unknown. */
  async flushUncertain(): Promise<void> {
    if (this.#uncertain.size === 0) return;
    const { users } = this.#d;
    const todo = [...this.#uncertain].filter((p) => !users.holds(p));
    for (const p of this.#uncertain) if (users.has(p)) this.#uncertain.delete(p);
    await this.#d.topology.release(todo);
    for (const p of todo) this.#uncertain.delete(p);
  }

  /** Later calls are refused; what this node held is released by the caller (topology.close). */
  close(): void {
    this.#closed = true;
    this.#uncertain.clear();
  }
}
