/**
 * RedisTopology on one Redis (standalone, or a primary found through
 * Sentinel): every operation is one Lua script that may read any key, e.g.
 * the lease of the node a user points to. User keys hold the node id.
 */
import type { Buffer } from "node:buffer";
import type { Claim } from "../presence.ts";
import type { Connections } from "./connections.ts";
import { channels, keys } from "./schema.ts";
import {
  chunks,
  type Outgoing,
  PRUNE_BATCH,
  PRUNE_ROUNDS,
  type RedisTopology,
} from "./topology.ts";

export class SingleTopology implements RedisTopology {
  readonly batchesBroadcasts = false;
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

  /**
   * Runs of sends leave in one `sendBatch` script call each (one PUBLISH per destination node),
   * broadcasts as one PUBLISH to the broadcast channel; all on `pub`, so in this order.
   */
  publish(items: readonly Outgoing[]): void {
    let run: Extract<Outgoing, { kind: "send" }>[] = [];
    for (const item of items) {
      if (item.kind === "send") {
        run.push(item);
        continue;
      }
      this.#sendBatch(run);
      run = [];
      this.#conns.pub.publish(channels.all, item.payload).then(
        () => item.settle.resolve(),
        (e) => item.settle.reject(e),
      );
    }
    this.#sendBatch(run);
  }

  subscribe(): Promise<unknown> {
    return this.#conns.subscribe(channels.to(this.#nodeId), channels.all);
  }

  #sendBatch(batch: Extract<Outgoing, { kind: "send" }>[]): void {
    if (batch.length === 0) return;
    const args: Array<string | Buffer> = [this.#nodeId];
    for (const m of batch) args.push(m.to, m.entry);
    this.#conns.script("sendBatch", ...args).then(
      (r) => {
        const counts = r as number[];
        for (let i = 0; i < batch.length; i++) batch[i].settle.resolve(counts[i] > 0);
      },
      (e) => {
        for (const m of batch) m.settle.reject(e);
      },
    );
  }
}
