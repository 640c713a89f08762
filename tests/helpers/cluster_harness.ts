/**
 * Runs end-to-end cases against a real 3-node cluster (processes: redis-server
 * and three `src/server/main.ts` nodes). Each new connection goes to the next
 * node in turn, so a case's users, and the four sockets of a private link,
 * land on different nodes. One cluster per distinct configuration is started
 * on first use and shared by the cases that use it; between cases the harness
 * waits until Redis holds no user, name and handshake (strikes live in handshakes).
 */
import { Redis } from "ioredis";
import { type Cluster, startCluster } from "../../src/ops/cluster.ts";
import { OPTIONS, type ServerConfig } from "../../src/server/config.ts";
import type { ChatHarness } from "./harness.ts";
import { clientsOn, eventually } from "./harness.ts";

const clusters = new Map<string, Promise<Cluster>>();

/** ServerConfig fields as the nodes' command-line flags. */
export function toFlags(config: Partial<ServerConfig>): string[] {
  return Object.entries(config).map(([key, value]) => {
    const spec = OPTIONS.find((o) => o.key === key);
    if (!spec) throw new Error(`no flag for config key ${key}`);
    return `--${spec.flag}=${value}`;
  });
}

export function clusterFor(config: Partial<ServerConfig>): Promise<Cluster> {
  const id = JSON.stringify(config);
  let c = clusters.get(id);
  if (!c) {
    c = startCluster({ nodes: 3, haproxy: false, nodeArgs: toFlags(config) });
    clusters.set(id, c);
  }
  return c;
}

export async function stopAllClusters(): Promise<void> {
  for (const c of clusters.values()) await (await c).stop();
  clusters.clear();
}

async function scanCount(redis: Redis, pattern: string): Promise<number> {
  let cursor = "0", n = 0;
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    n += found.length;
  } while (cursor !== "0");
  return n;
}

export async function withCluster(
  config: Partial<ServerConfig>,
  fn: (h: ChatHarness) => Promise<void>,
): Promise<void> {
  const cluster = await clusterFor(config);
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
  const redis = new Redis(cluster.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await fn(h);
  } finally {
    for (const c of clients) c.close();
    try {
      await redis.connect();
      await eventually(
        async () =>
          (await scanCount(redis, "chatos:user:*")) === 0 &&
          (await scanCount(redis, "chatos:hs:*")) === 0 &&
          (await scanCount(redis, "chatos:name:*")) === 0 &&
          (await scanCount(redis, "chatos:profile:*")) === 0,
        5000,
        "the case's users, names and handshakes to leave Redis",
      );
    } finally {
      redis.disconnect();
    }
  }
}
