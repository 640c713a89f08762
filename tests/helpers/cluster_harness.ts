/**
 * Runs end-to-end cases against a real 3-node cluster (processes: redis-server
 * and three `src/server/main.ts` nodes). Each new connection goes to the next
 * node in turn, so a case's users, and the four sockets of a private link,
 * land on different nodes. One cluster per distinct configuration is started
 * on first use and shared by the cases that use it. After each case, with its
 * clients closed, Redis must hold nothing of its users within 2 s (users
 * leaving is part of every case), or the case fails naming what is left.
 */
import { type Cluster, type RedisMode, startCluster } from "../../src/ops/cluster.ts";
import { noLeftovers, redisClientFor } from "./redis_server.ts";
import { OPTIONS, type ServerConfig } from "../../src/server/config.ts";
import type { ChatHarness } from "./harness.ts";
import { clientsOn } from "./harness.ts";

/** What docs/REDIS.md promises: a user's keys are gone from Redis this soon after it leaves. */
const LEAVE_BOUND_MS = 2000;

const clusters = new Map<string, Promise<Cluster>>();

/** ServerConfig fields as the nodes' command-line flags. */
export function toFlags(config: Partial<ServerConfig>): string[] {
  return Object.entries(config).map(([key, value]) => {
    const spec = OPTIONS.find((o) => o.key === key);
    if (!spec) throw new Error(`no flag for config key ${key}`);
    return `--${spec.flag}=${value}`;
  });
}

export function clusterFor(
  config: Partial<ServerConfig>,
  redis: RedisMode = "single",
): Promise<Cluster> {
  const id = JSON.stringify([config, redis]);
  let c = clusters.get(id);
  if (!c) {
    c = startCluster({ nodes: 3, haproxy: false, nodeArgs: toFlags(config), redis });
    clusters.set(id, c);
  }
  return c;
}

export async function stopAllClusters(): Promise<void> {
  for (const c of clusters.values()) await (await c).stop();
  clusters.clear();
}

/** Cases on 3 nodes sharing a single Redis. */
export const withCluster = withClusterOn("single");

/** Cases on 3 nodes sharing Redis in `mode` (single, sentinel or a Redis Cluster). */
export function withClusterOn(mode: RedisMode) {
  return (config: Partial<ServerConfig>, fn: (h: ChatHarness) => Promise<void>) =>
    runOn(config, mode, fn);
}

async function runOn(
  config: Partial<ServerConfig>,
  mode: RedisMode,
  fn: (h: ChatHarness) => Promise<void>,
): Promise<void> {
  const cluster = await clusterFor(config, mode);
  const ports = cluster.nodes.map((n) => n.port);
  let turn = 0;
  const nextPort = () => ports[turn++ % ports.length];
  const { clients, connect, login } = clientsOn(nextPort);
  const h: ChatHarness = {
    get port() {
      return nextPort();
    },
    connect,
    login,
  };
  let failure: unknown = null;
  try {
    await fn(h);
  } catch (e) {
    failure = e ?? new Error("the case failed");
  }
  for (const c of clients) c.close();
  // Every user of the case leaves here: what it held must be gone within the bound.
  const deadline = Date.now() + LEAVE_BOUND_MS;
  const redis = redisClientFor(cluster);
  try {
    await redis.connect();
    await noLeftovers(redis, deadline);
  } catch (e) {
    failure ??= e; // the case's own failure, if any, is the one to report
  } finally {
    redis.disconnect();
  }
  if (failure !== null) throw failure;
}
