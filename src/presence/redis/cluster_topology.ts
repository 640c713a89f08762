/**
 * RedisTopology on Redis Cluster: no script crosses a hash slot.
 *
 * A user key holds "<node id>|<fence>", where the fence is the one the
 * node's lease had when it wrote it (a lease created anew gets a new fence,
 * never reused). The binding is valid while that node's lease still carries
 * that fence, so:
 * - reserving a free key, or one of this node's, is one script on the user
 *   key's slot (`userClaim`);
 * - taking over a key from a node whose lease is gone or changed fence is a
 *   compare-and-set on the value read (`userCas`): of two nodes racing for it
 *   one wins, and a node that came back re-writes its keys only by the same
 *   compare-and-set, so it cannot win a key someone took meanwhile;
 * - frames to a node's users are plain SPUBLISHes to its channel (relay.ts): the node that
 *   receives them checks its own users and its own lease, and answers.
 *
 * A name key (a canonical form of a pseudo) is taken the same way, with the
 * same value, after the user key; if any cannot be taken, the keys taken are
 * given back, so a reserve takes all or nothing. Two pseudos of one node
 * that share a key are told apart by the node itself (local_users.ts).
 *
 * No step spans the slots of a reservation, so each is made safe to cut at any
 * point and run again:
 * - the user key is taken first and given back last: while it names this
 *   node, no other node writes the pseudo's profile, so the profile is ours;
 * - the profile, which lists the name keys, is written before they are taken
 *   and dropped after they are given back: a release cut short (a timeout) is
 *   finished by running it again (the heartbeat retries it), which finds them;
 * - a reserve and a release of this node never overlap (a node writes one
 *   value, so its old reservation's steps could not tell its new one apart):
 *   each waits for those of the other kind begun before it.
 */
import type { Claim } from "../presence.ts";
import type { Connections } from "./connections.ts";
import type { Fence } from "./lease.ts";
import type { NodeList } from "./nodes.ts";
import { channels, holderNode, holderValue, keys, parseHolder } from "./schema.ts";
import { chunks, NO_LEASE, PRUNE_BATCH, PRUNE_ROUNDS, type RedisTopology } from "./topology.ts";

/** Compare-and-set rounds before a contended pseudo counts as taken. */
const TAKEOVER_TRIES = 4;

export class ClusterTopology implements RedisTopology {
  readonly #conns: Connections;
  readonly #nodeId: string;
  readonly #instance: string;
  readonly #lease: Fence;
  readonly #nodes: NodeList;
  readonly #leaseKey: string;
  readonly #ownUsers: string;
  /** Reserves (and reasserts) in flight, and releases: neither kind overlaps the other. */
  readonly #reserving = new Set<Promise<unknown>>();
  readonly #releasing = new Set<Promise<unknown>>();

  /** `lease`: this node's lease, whose fence every reservation is written under. */
  constructor(
    conns: Connections,
    nodeId: string,
    instance: string,
    lease: Fence,
    nodes: NodeList,
  ) {
    this.#conns = conns;
    this.#nodeId = nodeId;
    this.#instance = instance;
    this.#lease = lease;
    this.#nodes = nodes;
    this.#leaseKey = keys.lease(nodeId);
    this.#ownUsers = keys.nodeUsers(nodeId);
  }

  reserve(pseudo: string, claim: Claim): Promise<boolean> {
    const fence = this.#lease.fence;
    if (fence === null) return Promise.reject(new Error(NO_LEASE));
    return this.#after(this.#releasing, this.#reserving, async () => {
      const [, bound] = await Promise.all([
        this.#conns.cmd.sadd(this.#ownUsers, pseudo), // listed first, so pruning finds it
        this.#bind(pseudo, claim, holderValue(this.#nodeId, fence)),
      ]);
      if (!bound) {
        await this.#conns.cmd.srem(this.#ownUsers, pseudo);
        return false;
      }
      // The lease must still carry the fence written: then it was alive throughout.
      if ((await this.#conns.cmd.hget(this.#leaseKey, "fence")) !== fence) {
        await this.#releaseNow([pseudo]);
        throw new Error(NO_LEASE);
      }
      return true;
    });
  }

  release(pseudos: readonly string[]): Promise<unknown> {
    if (pseudos.length === 0) return Promise.resolve();
    return this.#after(this.#reserving, this.#releasing, () => this.#releaseNow(pseudos));
  }

  async #releaseNow(pseudos: readonly string[]): Promise<void> {
    for (const chunk of chunks(pseudos)) {
      await Promise.all(chunk.map((p) => this.#unbind(p)));
      // Last: pruning finds the pseudo through this set should the node die halfway.
      await this.#conns.cmd.srem(this.#ownUsers, ...chunk);
    }
  }

  reassert(
    pseudos: readonly string[],
    claimOf: (pseudo: string) => Claim,
  ): Promise<string[]> {
    const fence = this.#lease.fence;
    if (fence === null) return Promise.reject(new Error(NO_LEASE));
    const value = holderValue(this.#nodeId, fence);
    return this.#after(
      this.#releasing,
      this.#reserving,
      () => this.#reassertNow(pseudos, claimOf, value),
    );
  }

  async #reassertNow(
    pseudos: readonly string[],
    claimOf: (pseudo: string) => Claim,
    value: string,
  ): Promise<string[]> {
    const lost: string[] = [];
    for (const chunk of chunks(pseudos)) {
      const won = await Promise.all(chunk.map((p) => this.#bind(p, claimOf(p), value)));
      const kept = chunk.filter((_, j) => won[j]);
      chunk.forEach((p, j) => won[j] || lost.push(p));
      if (kept.length) await this.#conns.cmd.sadd(this.#ownUsers, ...kept);
    }
    return lost;
  }

  members(): Promise<string[]> {
    return this.#conns.cmd.smembers(this.#ownUsers);
  }

  async close(): Promise<void> {
    await this.release(await this.members());
    await this.#conns.script("leaseClose", this.#leaseKey, this.#ownUsers, this.#instance);
    await this.#nodes.leave();
  }

  async prune(id: string): Promise<boolean> {
    const { cmd } = this.#conns;
    for (let i = 0; i < PRUNE_ROUNDS; i++) {
      const popped = await this.#conns.script(
        "prunePop",
        keys.lease(id),
        keys.nodeUsers(id),
        PRUNE_BATCH,
      ) as string[] | null;
      if (popped === null) return false; // alive
      if (popped.length === 0) {
        await this.#nodes.remove(id);
        return true;
      }
      await Promise.all(popped.map(async (p) => {
        const v = await cmd.get(keys.user(p));
        // Only a value of that node naming a fence that is not live (fences are never reused).
        if (v !== null && holderNode(v) === id && !(await this.#alive(v))) {
          // Lost the race: another node took the pseudo since the GET; its profile is its own.
          if (await this.#conns.script("userCas", keys.user(p), v, "") !== 1) return;
          // Its name keys, if they still carry that dead value.
          await this.#dropProfile(p, (k) => this.#conns.script("userCas", keys.name(k), v, ""));
        }
      }));
    }
    return false;
  }

  subscribe(): Promise<unknown> {
    return this.#conns.subscribe(channels.to(this.#nodeId), channels.all);
  }

  /** Whether a user key's value names a live lease with that fence. */
  async #alive(value: string): Promise<boolean> {
    const { node, fence } = parseHolder(value);
    if (fence === null) return false; // not written by a Cluster-mode node
    return (await this.#conns.cmd.hget(keys.lease(node), "fence")) === fence;
  }

  /** Binds `key` (a user or name key) to `value` unless a live holder has it; true if bound. */
  async #take(key: string, value: string): Promise<boolean> {
    for (let i = 0; i < TAKEOVER_TRIES; i++) {
      const cur = await this.#conns.script("userClaim", key, this.#nodeId, value) as string | null;
      if (cur === null) return true;
      if (await this.#alive(cur)) return false;
      if (await this.#conns.script("userCas", key, cur, value) === 1) return true;
    }
    return false;
  }

  /**
   * Runs `op` once every operation in `before` (begun before it) has settled, and counts it in
   * `mine` meanwhile. Nothing to wait for: it starts at once, so its first commands leave in
   * this turn (a release leaves ahead of a reserve issued after it).
   */
  #after<T>(
    before: Set<Promise<unknown>>,
    mine: Set<Promise<unknown>>,
    op: () => Promise<T>,
  ): Promise<T> {
    const p = before.size === 0 ? op() : Promise.allSettled([...before]).then(op);
    mine.add(p);
    const done = () => mine.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Binds the user key, then the profile (the list of name keys), then the name keys; true if
   * all are bound. Refused (a live node holds the pseudo or a key): nothing is left bound.
   */
  async #bind(pseudo: string, claim: Claim, value: string): Promise<boolean> {
    if (!(await this.#take(keys.user(pseudo), value))) return false;
    await this.#writeProfile(pseudo, claim);
    if (await this.#takeNames(claim.keys, value)) return true;
    await this.#conns.cmd.del(keys.profile(pseudo));
    await this.#conns.script("userRelease", keys.user(pseudo), this.#nodeId);
    return false;
  }

  /**
   * Unbinds a pseudo if its user key still names this node: the name keys its profile lists,
   * then the profile, then the user key. Cut short, running it again finishes it.
   */
  async #unbind(pseudo: string): Promise<void> {
    const [holder, profile] = await Promise.all([
      this.#conns.cmd.get(keys.user(pseudo)),
      this.#conns.cmd.hgetall(keys.profile(pseudo)),
    ]);
    // Not ours (any more): the profile is not ours to drop either.
    if (holder === null || holderNode(holder) !== this.#nodeId) return;
    await this.#giveBack(namesOf(profile));
    await this.#conns.cmd.del(keys.profile(pseudo));
    await this.#conns.script("userRelease", keys.user(pseudo), this.#nodeId);
  }

  /** Takes every name key, or none: on a refusal those already taken are given back. */
  async #takeNames(names: readonly string[], value: string): Promise<boolean> {
    const taken: string[] = [];
    for (const k of names) {
      if (!(await this.#take(keys.name(k), value))) {
        await this.#giveBack(taken);
        return false;
      }
      taken.push(k);
    }
    return true;
  }

  async #giveBack(names: readonly string[]): Promise<void> {
    await Promise.all(
      names.map((k) => this.#conns.script("userRelease", keys.name(k), this.#nodeId)),
    );
  }

  async #writeProfile(pseudo: string, claim: Claim): Promise<void> {
    const fields = ["client", claim.client];
    claim.keys.forEach((k, i) => fields.push(`k${i + 1}`, k));
    const profile = keys.profile(pseudo);
    await this.#conns.cmd.multi().del(profile).hset(profile, ...fields).exec();
  }

  /** Deletes a pseudo's profile after giving back each name key it lists. */
  async #dropProfile(pseudo: string, giveBack: (name: string) => Promise<unknown>): Promise<void> {
    const profile = await this.#conns.cmd.hgetall(keys.profile(pseudo));
    await Promise.all(namesOf(profile).map(giveBack));
    await this.#conns.cmd.del(keys.profile(pseudo));
  }
}

/** The name keys a profile lists (every field but the client key). */
function namesOf(profile: Record<string, string>): string[] {
  return Object.entries(profile).filter(([f]) => f !== "client").map(([, k]) => k);
}
