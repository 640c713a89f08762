/**
 * Runs end-to-end cases against a real 3-node cluster (processes: redis-server
 * and three `src/server/main.ts` nodes). Each new connection goes to the next
 * node in turn, so a case's users, and the four sockets of a private link,
 * land on different nodes. One cluster per distinct configuration is started
 * on first use and shared by the cases that use it; between cases the harness
 * waits until Redis holds no user, name and handshake (strikes live in handshakes).
 */
import { type Cluster, type RedisMode, startCluster } from "../../src/ops/cluster.ts";
import { redisClientFor, scanKeys } from "./redis_server.ts";
import { OPTIONS, type ServerConfig } from "../../src/server/config.ts";
import type { ChatHarness } from "./harness.ts";
import { clientsOn, eventually } from "./harness.ts";
import { errorMessage } from "../../src/lib/errors.ts";

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
  const redis = redisClientFor(cluster);
  try {
    await fn(h);
  } finally {
    for (const c of clients) c.close();
    try {
      await redis.connect();
      let left: string[] = [];
      await eventually(
        async () => {
          left = [];
          for (const kind of ["user", "hs", "name", "profile"]) {
            left.push(...await scanKeys(redis, `chatos:${kind}:*`));
          }
          return left.length === 0;
        },
        // A safety net, not a pace: the check passes as soon as the keys are gone.
        15000,
        "the case's users, names and handshakes to leave Redis",
      ).catch((e) => {
        // Name what stayed: a flake in CI is diagnosed from this line alone.
        throw new Error(`${errorMessage(e)}; still there: ${left.slice(0, 8).join(", ")}`);
      });
    } finally {
      redis.disconnect();
    }
  }
}
