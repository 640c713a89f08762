/**
 * A Redis node under test that tests can break on purpose: die like `kill -9`, stall like
 * `kill -STOP` (heartbeats only), lose its subscriptions silently, or (Redis Cluster) lose its
 * publish socket to one primary. It keeps the store's parts as `assembleRedisPresence` built
 * them, the same seam production starts a store through, and breaks them through their public
 * methods; production code carries no hooks.
 */
import { Cluster } from "ioredis";
import {
  assembleRedisPresence,
  RedisPresence,
  type RedisPresenceOptions,
} from "../../src/presence/redis.ts";
import type { RedisParts } from "../../src/presence/redis.ts";
import { TestNode } from "./presence_node.ts";

export class BreakableRedisNode extends TestNode<RedisPresence> {
  readonly parts: RedisParts;
  #crashed = false;

  private constructor(opts: RedisPresenceOptions) {
    let parts: RedisParts | null = null;
    super((users) => new RedisPresence(parts = assembleRedisPresence(opts, users)));
    this.parts = parts!;
  }

  static async start(opts: RedisPresenceOptions): Promise<BreakableRedisNode> {
    const n = new BreakableRedisNode(opts);
    await n.presence.start();
    return n;
  }

  get bridge(): string {
    return this.parts.bridge;
  }

  get stats() {
    return this.presence.stats;
  }

  get ready(): boolean {
    return this.presence.ready;
  }

  /** Stops the timers and drops the sockets, releasing nothing: the lease simply lapses. */
  crash(): void {
    this.#crashed = true;
    this.parts.heartbeat.stop();
    this.parts.probe.stop();
    this.parts.conns.disconnect();
  }

  /** No heartbeat runs (not even on a reconnect) until `resumeHeartbeats`: a stalled process. */
  stallHeartbeats(): void {
    this.parts.heartbeat.stop();
  }

  resumeHeartbeats(): void {
    this.parts.heartbeat.start();
  }

  /** Drops the subscriptions with the socket open, as a half-dead pub/sub link would. */
  async dropSubscriptions(): Promise<void> {
    await this.parts.conns.sub.unsubscribe();
  }

  /** Redis Cluster: closes pub's socket to one primary; the cluster client stays "ready". */
  dropPrimarySocket(): void {
    const pub = this.parts.conns.pub;
    if (!(pub instanceof Cluster)) throw new Error("not a Redis Cluster");
    pub.nodes("master")[0].disconnect();
  }

  override close(): Promise<void> {
    return this.#crashed ? Promise.resolve() : super.close();
  }
}
