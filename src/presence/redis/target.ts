/**
 * Where Redis is, as the server's flags say it: one server by URL, a primary
 * found through Sentinel, or a Redis Cluster from seed nodes. No ioredis
 * import here: the config parser uses this in every mode.
 */

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { mode: "single"; url: string }
  | { mode: "sentinel"; sentinels: HostPort[]; name: string }
  | { mode: "cluster"; seeds: HostPort[] };

/** Parses "host:port,host:port" (IPv6 in brackets); an error message for anything else. */
export function parseHostPorts(list: string): HostPort[] | string {
  const out: HostPort[] = [];
  for (const raw of list.split(",")) {
    const item = raw.trim();
    const m = item.match(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) return `"${item}" is not host:port`;
    out.push({ host: m[1].replace(/^\[|\]$/g, ""), port });
  }
  return out;
}

export interface RedisFlags {
  redisUrl: string;
  redisSentinels: string;
  redisSentinelName: string;
  redisCluster: string;
}

/** The target the flags name, or why they do not name one. */
export function redisTarget(f: RedisFlags): RedisTarget | string {
  if (f.redisSentinels && f.redisCluster) {
    return "--redis-sentinels and --redis-cluster exclude each other";
  }
  if (f.redisCluster) {
    const seeds = parseHostPorts(f.redisCluster);
    return typeof seeds === "string" ? `--redis-cluster: ${seeds}` : { mode: "cluster", seeds };
  }
  if (f.redisSentinels) {
    const sentinels = parseHostPorts(f.redisSentinels);
    if (typeof sentinels === "string") return `--redis-sentinels: ${sentinels}`;
    if (!f.redisSentinelName) return "--redis-sentinel-name is required with --redis-sentinels";
    return { mode: "sentinel", sentinels, name: f.redisSentinelName };
  }
  return { mode: "single", url: f.redisUrl };
}
