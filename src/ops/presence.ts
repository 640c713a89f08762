/**
 * `deno task presence [--redis-url URL]`: what the cluster's Redis says right
 * now: nodes and their leases, which node holds each pseudo, and pending
 * private-link handshakes. Read-only; uses SCAN, never KEYS. Schema: docs/REDIS.md.
 */
import { parseArgs } from "node:util";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { joinNegativeValues } from "../lib/args.ts";
import { errorMessage } from "../lib/errors.ts";
import { visible as show } from "../lib/visible.ts";
import {
  holderNode,
  keys,
  leaseKeyNodeId,
  patterns,
  userKeyPseudo,
} from "../presence/redis/schema.ts";
import { type RedisTarget, redisTarget } from "../presence/redis/target.ts";

const HELP = `Usage: deno task presence [options]

Prints the ChatOS presence state kept in Redis: nodes (lease, bridge and client
addresses, user count, heartbeat age), users and the node holding each, and
pending private-link handshakes.

Options:
  --redis-url URL   Redis to read (default: $REDIS_URL or redis://127.0.0.1:6379)
  --redis-sentinels HOST:PORT,...  find the primary through these Sentinels
                    ($CHATOS_REDIS_SENTINELS), with --redis-sentinel-name NAME
  --redis-cluster HOST:PORT,...    read a Redis Cluster from these seeds
                    ($CHATOS_REDIS_CLUSTER)
  --limit N         print at most N users and N handshakes (default 1000)
  --json            print one JSON document instead of tables
  -h, --help        show this help
`;

interface NodeRow {
  id: string;
  bridge: string;
  client: string;
  users: number;
  heartbeatAgeMs: number | null;
  leaseTtlMs: number;
  alive: boolean;
}
interface UserRow {
  pseudo: string;
  node: string;
  nodeAlive: boolean;
}
interface HandshakeRow {
  a: string;
  b: string;
  password: number;
  state: string;
  asker: string;
  node: string;
  bridge: string;
  ttlMs: number;
}

/** Every key matching `match`: on a Redis Cluster, on each primary in turn. */
async function scanAll(
  r: Redis | Cluster,
  match: string,
  each: (keys: string[]) => Promise<void>,
) {
  for (const server of r instanceof Cluster ? r.nodes("master") : [r]) {
    let cursor = "0";
    do {
      const [next, batch] = await server.scan(cursor, "MATCH", match, "COUNT", 1000);
      cursor = next;
      if (batch.length) await each(batch);
    } while (cursor !== "0");
  }
}

function connect(t: RedisTarget): Redis | Cluster {
  const opts: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
    commandTimeout: 5000,
    connectionName: "chatos-ops",
  };
  if (t.mode === "single") return new Redis(t.url, opts);
  if (t.mode === "sentinel") return new Redis({ ...opts, sentinels: t.sentinels, name: t.name });
  return new Cluster(t.seeds, { lazyConnect: true, redisOptions: opts });
}

function describe(t: RedisTarget): string {
  if (t.mode === "single") return t.url;
  const list = (t.mode === "sentinel" ? t.sentinels : t.seeds).map((h) => `${h.host}:${h.port}`);
  return t.mode === "sentinel"
    ? `sentinel ${t.name} via ${list.join(",")}`
    : `cluster ${list.join(",")}`;
}

/** Why `url` is not a Redis URL ioredis can use, or null. */
function checkRedisUrl(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL (expected redis://HOST:PORT)`;
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    return `"${url}" is not a redis:// or rediss:// URL`;
  }
  if (u.hostname === "") return `"${url}" names no host`;
  return null;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

function age(ms: number | null): string {
  if (ms === null) return "-";
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

/** What to say when a Redis holds nothing of ChatOS's: most often, it is not the nodes' Redis. */
async function noData(r: Redis | Cluster, url: string): Promise<string> {
  let others = 0;
  for (const server of r instanceof Cluster ? r.nodes("master") : [r]) {
    others += await server.dbsize();
  }
  return [
    `redis ${url}`,
    "",
    others === 0
      ? "No ChatOS data here: this Redis holds no keys at all."
      : `No ChatOS data here: its ${others === 1 ? "1 key is" : `${others} keys are`} not ` +
        "ChatOS's (no chatos:* key).",
    "Either no node runs against this Redis now, or the nodes use another one:",
    "`deno task cluster` prints the line to export for its Redis (export REDIS_URL=...).",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv),
      options: {
        "redis-url": { type: "string" },
        "redis-sentinels": { type: "string" },
        "redis-sentinel-name": { type: "string" },
        "redis-cluster": { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`${errorMessage(e)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const flag = (name: string, env: string) =>
    (values as Record<string, string | undefined>)[name] ?? Deno.env.get(env) ?? "";
  const redisUrl = flag("redis-url", "REDIS_URL");
  const bad = redisUrl ? checkRedisUrl(redisUrl) : null;
  if (bad) {
    console.error(`--redis-url: ${bad}`);
    return 2;
  }
  const target = redisTarget({
    redisUrl: flag("redis-url", "REDIS_URL") || "redis://127.0.0.1:6379",
    redisSentinels: flag("redis-sentinels", "CHATOS_REDIS_SENTINELS"),
    redisSentinelName: flag("redis-sentinel-name", "CHATOS_REDIS_SENTINEL_NAME"),
    redisCluster: flag("redis-cluster", "CHATOS_REDIS_CLUSTER"),
  });
  if (typeof target === "string") {
    console.error(target);
    return 2;
  }
  const url = describe(target);
  const limit = values.limit === undefined ? 1000 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 0) {
    console.error("--limit must be a non-negative integer");
    return 2;
  }

  const r = connect(target);
  // ioredis rejects connect() with "Connection is closed."; the error event says why.
  let cause = "";
  r.on("error", (e: Error) => (cause ||= e.message));
  try {
    await r.connect();
  } catch (e) {
    console.error(`cannot reach Redis at ${url}: ${cause || errorMessage(e)}`);
    r.disconnect();
    return 1;
  }

  try {
    const [sec, usec] = await (r instanceof Cluster ? r.nodes("master")[0] : r).time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);

    // Nodes: every lease key, plus ids still listed in chatos:nodes whose lease is gone.
    const ids = new Set<string>(await r.smembers(keys.nodes));
    await scanAll(r, patterns.leases, (ks) => {
      for (const k of ks) {
        const id = leaseKeyNodeId(k);
        if (id) ids.add(id);
      }
      return Promise.resolve();
    });
    const nodes: NodeRow[] = [];
    for (const id of [...ids].sort()) {
      const [h, ttl, users] = await Promise.all([
        r.hgetall(keys.lease(id)),
        r.pttl(keys.lease(id)),
        r.scard(keys.nodeUsers(id)), // exact now; the lease's `users` is as of the last heartbeat
      ]);
      const alive = Object.keys(h).length > 0 && ttl !== -2;
      nodes.push({
        id,
        bridge: h.bridge ?? "",
        client: h.client ?? "",
        users,
        // A heartbeat written after TIME was read is as fresh as can be, not "-0.0s ago".
        heartbeatAgeMs: h.heartbeat ? Math.max(0, now - Number(h.heartbeat)) : null,
        leaseTtlMs: ttl,
        alive,
      });
    }
    const aliveIds = new Set(nodes.filter((n) => n.alive).map((n) => n.id));

    let userCount = 0;
    const users: UserRow[] = [];
    await scanAll(r, patterns.users, async (ks) => {
      // One GET per key: on a Redis Cluster the keys of a batch live in different slots.
      const vals = await Promise.all(ks.map((k) => r.get(k)));
      ks.forEach((k, i) => {
        const value = vals[i];
        const pseudo = userKeyPseudo(k);
        if (value === null || pseudo === null) return;
        const node = holderNode(value);
        userCount++;
        if (users.length < limit) {
          users.push({
            pseudo,
            node,
            nodeAlive: aliveIds.has(node),
          });
        }
      });
    });
    users.sort((x, y) => x.pseudo < y.pseudo ? -1 : x.pseudo > y.pseudo ? 1 : 0);

    let hsCount = 0;
    const handshakes: HandshakeRow[] = [];
    await scanAll(r, patterns.handshakes, async (ks) => {
      for (const k of ks) {
        if (handshakes.length >= limit) {
          hsCount++;
          continue;
        }
        const [h, ttl] = await Promise.all([r.hgetall(k), r.pttl(k)]);
        if (!h.state) continue; // expired meanwhile
        hsCount++;
        handshakes.push({
          a: h.a ?? "",
          b: h.b ?? "",
          password: Number(h.password),
          state: h.state,
          asker: h.asker ?? "",
          node: h.node ?? "",
          bridge: h.bridge ?? "",
          ttlMs: ttl,
        });
      }
    });

    if (values.json) {
      console.log(JSON.stringify(
        { url, redisTimeMs: now, nodes, userCount, users, handshakeCount: hsCount, handshakes },
        null,
        2,
      ));
      return 0;
    }

    if (nodes.length === 0 && userCount === 0 && hsCount === 0) {
      console.log(await noData(r, url));
      return 0;
    }
    const out: string[] = [];
    out.push(`redis ${url}`, "");
    out.push(`NODES (${aliveIds.size} alive, ${nodes.length - aliveIds.size} expired)`);
    out.push(table(
      ["id", "bridge", "client", "users", "heartbeat", "lease"],
      nodes.map((n) => [
        n.id,
        n.bridge || "-",
        n.client || "-",
        String(n.users),
        n.heartbeatAgeMs === null ? "-" : `${age(n.heartbeatAgeMs)} ago`,
        n.alive ? `${n.leaseTtlMs}ms left` : "EXPIRED",
      ]),
    ));
    out.push("", `USERS (${userCount})`);
    out.push(table(
      ["pseudo", "node", ""],
      users.map((u) => [show(u.pseudo), u.node, u.nodeAlive ? "" : "(node dead: free)"]),
    ));
    if (userCount > users.length) out.push(`... ${userCount - users.length} more (--limit)`);
    out.push("", `HANDSHAKES (${hsCount})`);
    out.push(table(
      ["a", "b", "password", "state", "asked on", "b's end on", "ttl"],
      handshakes.map((h) => [
        show(h.a),
        show(h.b),
        String(h.password),
        h.state,
        h.asker || "-",
        h.node ? `${h.node} ${h.bridge}`.trim() : "-",
        `${h.ttlMs}ms`,
      ]),
    ));
    if (hsCount > handshakes.length) out.push(`... ${hsCount - handshakes.length} more (--limit)`);
    console.log(out.join("\n"));
    return 0;
  } catch (e) {
    console.error(`reading Redis at ${url} failed: ${errorMessage(e)}`);
    return 1;
  } finally {
    r.disconnect();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
