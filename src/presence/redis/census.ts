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

export class Census {
  readonly #cmd: Client;
  readonly #nodes: NodeList;
  readonly #log: LogFn;
  #others = 0;

  constructor(cmd: Client, nodes: NodeList, log: LogFn) {
    this.#cmd = cmd;
    this.#nodes = nodes;
    this.#log = log;
  }

  /** The users of every other live node, as of the last refresh. */
  get others(): number {
    return this.#others;
  }

  /** Reads the other nodes' counts; on failure keeps the last figure (never rejects). */
  async refresh(): Promise<void> {
    try {
      const ids = await this.#nodes.others();
      const counts = await Promise.all(ids.map((id) => this.#cmd.hget(keys.lease(id), "users")));
      let sum = 0;
      for (const c of counts) {
        const n = Number(c); // null (no lease) is 0; a malformed field counts 0 too
        if (Number.isSafeInteger(n) && n > 0) sum += n;
      }
      this.#others = sum;
    } catch (e) {
      // The heartbeat that just ran reports an outage; this is only a stale estimate.
      this.#log("debug", "census failed; keeping the last user count", { error: errorMessage(e) });
    }
  }
}
