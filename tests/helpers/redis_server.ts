/** Throwaway Redis for tests: one server (src/ops/processes.ts), Sentinel, Redis Cluster. */
import { Cluster, Redis } from "ioredis";
import type { Cluster as ChatCluster } from "../../src/ops/cluster.ts";
import { parseHostPorts } from "../../src/presence/redis/target.ts";

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
