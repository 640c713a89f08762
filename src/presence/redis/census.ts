/**
 * How many users the other nodes of the cluster serve, as an estimate that is cheap to read:
 * flood control charges an SMA for every user it reaches (docs/PROTOCOL.md, "flood control")
 * and asks on every SMA, so the answer must be a field, never a Redis round trip.
 *
 * Each node writes its own count into its lease on every heartbeat (`users`, heartbeat.lua);
 * `refresh`, run on the same tick, sums the other nodes' counts. So the figure is at most one
 * heartbeat old when read from Redis and at most one more when used: two heartbeats in all,
 * within one lease period with the defaults (1000 and 3000 ms). A dead node's count goes when
 * its lease lapses (at most one lease period); a node whose lease is gone or not written yet, or
 * carries no count, counts 0. While Redis is unreachable the last figure stays (an SMA then gets
 * ERROR 9 anyway). Cost: one SMEMBERS and one HGET per other node per heartbeat, pipelined (two
 * round trips; on Redis Cluster each HGET goes to its lease's shard).
 */
import { errorMessage } from "../../lib/errors.ts";
import type { LogFn } from "../../lib/log.ts";
import type { Client } from "./connections.ts";
import type { NodeList } from "./nodes.ts";
import { keys } from "./schema.ts";
import { RELAY_PROTOCOL } from "./envelope.ts";

export class Census {
  readonly #cmd: Client;
  readonly #nodes: NodeList;
  readonly #log: LogFn;
  #others = 0;
  /** The other live nodes that speak this node's relay protocol, as of the last refresh. */
  #peers: string[] = [];
  /** Live nodes of another release: frames are not exchanged with them. */
  #foreign = new Set<string>();

  constructor(cmd: Client, nodes: NodeList, log: LogFn) {
    this.#cmd = cmd;
    this.#nodes = nodes;
    this.#log = log;
  }

  /** The users of every other live node, as of the last refresh. */
  get others(): number {
    return this.#others;
  }

  /**
   * The other live nodes of this release: a Redis Cluster broadcast goes to each. A node that
   * started since the last heartbeat is among them from the next one (at most one period).
   */
  get peers(): readonly string[] {
    return this.#peers;
  }

  /**
   * `nodeId` spoke to this node in this release's envelope (it announced itself when it started,
   * or answered): a peer from now on, not only from the next heartbeat.
   */
  learn(nodeId: string): void {
    if (!this.#peers.includes(nodeId) && !this.#foreign.has(nodeId)) {
      this.#peers = [...this.#peers, nodeId];
    }
  }

  /** Whether `nodeId` is a live node of another release (frames to its users are refused). */
  foreign(nodeId: string): boolean {
    return this.#foreign.has(nodeId);
  }

  /** Reads the other nodes' counts and releases; on failure keeps the last figures (never rejects). */
  async refresh(): Promise<void> {
    try {
      const ids = await this.#nodes.others();
      const leases = await Promise.all(
        ids.map((id) => this.#cmd.hmget(keys.lease(id), "users", "proto")),
      );
      let sum = 0;
      const peers: string[] = [], foreign = new Set<string>();
      leases.forEach(([users, proto], i) => {
        if (users === null) return; // no lease: a dead node, counted 0
        if (proto !== RELAY_PROTOCOL) {
          foreign.add(ids[i]);
          if (!this.#foreign.has(ids[i])) {
            this.#log(
              "error",
              "a node of another release shares this cluster: no frames are " +
                "exchanged with it; upgrade every node (docs/REDIS.md, rolling upgrades)",
              {
                node: ids[i],
                protocol: proto ?? "1",
                ours: RELAY_PROTOCOL,
              },
            );
          }
          return;
        }
        peers.push(ids[i]);
        const n = Number(users); // a malformed field counts 0
        if (Number.isSafeInteger(n) && n > 0) sum += n;
      });
      this.#others = sum;
      this.#peers = peers;
      this.#foreign = foreign;
    } catch (e) {
      // The heartbeat that just ran reports an outage; this is only a stale estimate.
      this.#log("debug", "census failed; keeping the last user count", { error: errorMessage(e) });
    }
  }
}
