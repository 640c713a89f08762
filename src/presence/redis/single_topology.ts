/**
 * RedisTopology on one Redis (standalone, or a primary found through
 * Sentinel): every operation is one Lua script that may read any key, e.g.
 * the lease of the node a user points to. User keys hold the node id.
 */
import type { Claim } from "../presence.ts";
import type { Connections } from "./connections.ts";
import { channels, keys } from "./schema.ts";
import { chunks, PRUNE_BATCH, PRUNE_ROUNDS, type RedisTopology } from "./topology.ts";

export class SingleTopology implements RedisTopology {
  readonly #conns: Connections;
  readonly #nodeId: string;
  readonly #instance: string;
  readonly #lease: string;
  readonly #ownUsers: string;

  constructor(conns: Connections, nodeId: string, instance: string) {
    this.#conns = conns;
    this.#nodeId = nodeId;
    this.#instance = instance;
    this.#lease = keys.lease(nodeId);
    this.#ownUsers = keys.nodeUsers(nodeId);
  }

  async reserve(pseudo: string, claim: Claim): Promise<boolean> {
    const r = await this.#conns.script(
      "reserve",
      keys.user(pseudo),
      this.#ownUsers,
      this.#lease,
      this.#nodeId,
      pseudo,
      claim.client,
      ...claim.keys,
    );
    return r === 1;
  }

  release(pseudos: readonly string[]): Promise<unknown> {
    return Promise.all(
      chunks(pseudos).map((chunk) =>
        this.#conns.script("release", this.#ownUsers, this.#nodeId, ...chunk)
      ),
    );
  }

  async reassert(
    pseudos: readonly string[],
    claimOf: (pseudo: string) => Claim,
  ): Promise<string[]> {
    const lost: string[] = [];
    for (const chunk of chunks(pseudos)) {
      // Groups of four: pseudo, client key, name key 1, name key 2 ("" if none).
      const groups = chunk.flatMap((p) => {
        const c = claimOf(p);
        return [p, c.client, c.keys[0] ?? "", c.keys[1] ?? ""];
      });
      const r = await this.#conns.script(
        "reassert",
        this.#ownUsers,
        this.#lease,
        this.#nodeId,
        ...groups,
      ) as string[];
      lost.push(...r);
    }
    return lost;
  }

  members(): Promise<string[]> {
    return this.#conns.cmd.smembers(this.#ownUsers);
  }

  async close(): Promise<void> {
    await this.#conns.script(
      "close",
      this.#lease,
      this.#ownUsers,
      keys.nodes,
      this.#instance,
      this.#nodeId,
    );
  }

  async prune(id: string): Promise<boolean> {
    for (let i = 0; i < PRUNE_ROUNDS; i++) {
      const r = await this.#conns.script(
        "prune",
        keys.lease(id),
        keys.nodeUsers(id),
        keys.nodes,
        id,
        PRUNE_BATCH,
      );
      if (r !== 1) return r === 0;
    }
    return false;
  }

  subscribe(): Promise<unknown> {
    return this.#conns.subscribe(channels.to(this.#nodeId), channels.all);
  }
}
