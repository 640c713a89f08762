/**
 * A RedisPresence that tests can break on purpose: die like `kill -9`, stall
 * like `kill -STOP` (heartbeats only), lose its subscriptions silently, or
 * (Redis Cluster) lose its publish socket to one primary. It
 * reaches the store's parts through their protected fields; production code
 * carries no hooks.
 */
import { Cluster } from "ioredis";
import { RedisPresence, type RedisPresenceOptions } from "../../src/presence/redis.ts";

export class BreakableRedisPresence extends RedisPresence {
  #crashed = false;

  static async start(opts: RedisPresenceOptions): Promise<BreakableRedisPresence> {
    const p = new BreakableRedisPresence(opts);
    await p.start();
    return p;
  }

  /** Stops the timers and drops the sockets, releasing nothing: the lease simply lapses. */
  crash(): void {
    this.#crashed = true;
    this.lease.stop();
    this.probe.stop();
    this.conns.disconnect();
    this.users.clear();
  }

  /** No heartbeat runs (not even on a reconnect) until `resumeHeartbeats`: a stalled process. */
  stallHeartbeats(): void {
    this.lease.stop();
  }

  resumeHeartbeats(): void {
    this.lease.start();
  }

  /** Drops the subscriptions with the socket open, as a half-dead pub/sub link would. */
  async dropSubscriptions(): Promise<void> {
    await this.conns.sub.unsubscribe();
  }

  /** Redis Cluster: closes pub's socket to one primary; the cluster client stays "ready". */
  dropPrimarySocket(): void {
    if (!(this.conns.pub instanceof Cluster)) throw new Error("not a Redis Cluster");
    this.conns.pub.nodes("master")[0].disconnect();
  }

  override close(): Promise<void> {
    return this.#crashed ? Promise.resolve() : super.close();
  }
}
