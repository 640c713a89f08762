/**
 * The list of nodes in Redis (`keys.nodes`): every node that holds, or held, a lease. The one
 * reader and writer of that set on the TypeScript side: a node joins it on every heartbeat, the
 * census and the pruning read it, a Redis Cluster broadcast is addressed from it, and a node
 * leaves it when it closes or is pruned. (The single-Redis scripts that close and prune a node
 * name the same key, from schema.ts.)
 */
import type { Client } from "./connections.ts";
import { keys } from "./schema.ts";

export class NodeList {
  readonly #cmd: Client;
  readonly #nodeId: string;

  constructor(cmd: Client, nodeId: string) {
    this.#cmd = cmd;
    this.#nodeId = nodeId;
  }

  /** Lists this node (again: pruning may have removed it while it stalled). */
  async join(): Promise<void> {
    await this.#cmd.sadd(keys.nodes, this.#nodeId);
  }

  /** Takes this node off the list (a clean close). */
  async leave(): Promise<void> {
    await this.#cmd.srem(keys.nodes, this.#nodeId);
  }

  /** Takes another node off the list (its leftovers are pruned). */
  async remove(nodeId: string): Promise<void> {
    await this.#cmd.srem(keys.nodes, nodeId);
  }

  /** Every listed node but this one, alive or not (each check their lease). */
  async others(): Promise<string[]> {
    return (await this.#cmd.smembers(keys.nodes)).filter((id) => id !== this.#nodeId);
  }
}
