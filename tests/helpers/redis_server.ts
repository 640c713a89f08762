/** Throwaway Redis for tests: one server (src/ops/processes.ts), Sentinel, Redis Cluster. */
import { Cluster, Redis } from "ioredis";
import type { Cluster as ChatCluster } from "../../src/ops/cluster.ts";
import { parseHostPorts } from "../../src/presence/redis/target.ts";
import { keys, leaseKeyNodeId, patterns } from "../../src/presence/redis/schema.ts";

export {
  freePort,
  pingRedis,
  type RedisProcess as TestRedis,
  startRedis,
} from "../../src/ops/processes.ts";
export {
  redisCli,
  type RedisClusterSet,
  type SentinelSet,
  startRedisCluster,
  startSentinelSet,
} from "../../src/ops/redis_topologies.ts";

/** A client for the Redis a `deno task cluster` topology uses, whatever its mode. */
export function redisClientFor(c: ChatCluster): Redis | Cluster {
  const flag = (name: string) =>
    c.redisFlags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3) ?? "";
  const list = (name: string) => {
    const hosts = parseHostPorts(flag(name));
    if (typeof hosts === "string") throw new Error(hosts);
    return hosts;
  };
  const opts = { lazyConnect: true, maxRetriesPerRequest: 1 };
  if (flag("redis-cluster")) return new Cluster(list("redis-cluster"), { lazyConnect: true });
  if (flag("redis-sentinels")) {
    return new Redis({
      ...opts,
      sentinels: list("redis-sentinels"),
      name: flag("redis-sentinel-name"),
    });
  }
  return new Redis(c.redisUrl, opts);
}

/** Every key matching `pattern`; on a Redis Cluster, from every primary. */
export async function scanKeys(r: Redis | Cluster, pattern: string): Promise<string[]> {
  const out: string[] = [];
  for (const server of r instanceof Cluster ? r.nodes("master") : [r]) {
    let cursor = "0";
    do {
      const [next, found] = await server.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      out.push(...found);
    } while (cursor !== "0");
  }
  return out;
}

/**
 * Waits until Redis holds nothing of any user: no key under the prefix but the nodes' leases and
 * their list, and no entry in a node's users set (an empty set is no key). Fails at `deadline`
 * (ms since epoch) naming what is left: a leftover in CI is diagnosed from that line alone.
 */
export async function noLeftovers(r: Redis | Cluster, deadline: number): Promise<void> {
  let left: string[] = [];
  for (;;) {
    left = await leftovers(r);
    if (left.length === 0) return;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(
    `Redis still holds ${left.length} key(s) of users who left: ${left.slice(0, 12).join(", ")}`,
  );
}

/** Everything a user left in Redis: keys, and `<users set> ∋ <pseudo>` for users-set entries. */
async function leftovers(r: Redis | Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const key of await scanKeys(r, patterns.all)) {
    if (key === keys.nodes || leaseKeyNodeId(key) !== null) continue;
    const usersOf = key.endsWith(":users") ? leaseKeyNodeId(key.slice(0, -":users".length)) : null;
    if (usersOf === null) out.push(key);
    else out.push(...(await r.smembers(key)).map((p) => `${key} ∋ ${p}`));
  }
  return out.sort();
}
