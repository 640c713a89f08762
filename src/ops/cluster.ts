/**
 * `deno task cluster`: the docker-compose topology as local processes — a
 * redis-server on a free port, N ChatOS nodes in Redis mode, and HAProxy in
 * TCP mode on one public port in front of them. The tests start the same
 * harness (`startCluster`) to exercise the cluster end to end.
 */
import { parseArgs } from "node:util";
import { sleep } from "../lib/async.ts";
import { joinNegativeValues } from "../lib/args.ts";
import { errorMessage } from "../lib/errors.ts";
import { LOG_LEVELS, type LogLevel } from "../lib/log.ts";
import { NODE_MAIN, nodeRunArgs } from "./node_command.ts";
import {
  freePort,
  pingRedis,
  type RedisProcess,
  spawnChild,
  startRedis,
  waitForPort,
} from "./processes.ts";
import {
  type RedisClusterSet,
  type SentinelSet,
  startRedisCluster,
  startSentinelSet,
} from "./redis_topologies.ts";

/** Which Redis the nodes share: one server, a primary and replica under Sentinel, a Redis Cluster. */
export type RedisMode = "single" | "sentinel" | "cluster";
export const REDIS_MODES: readonly RedisMode[] = ["single", "sentinel", "cluster"];

export interface ClusterOptions {
  /** Number of ChatOS nodes (default 3). */
  nodes?: number;
  /** HAProxy's port (default 7777; 0 = a free port). */
  port?: number;
  /** Start HAProxy in front of the nodes (default true). */
  haproxy?: boolean;
  /** Use this Redis instead of starting one (single mode). */
  redisUrl?: string;
  /** The Redis topology to start (default single). */
  redis?: RedisMode;
  logLevel?: LogLevel;
  /** Extra flags for every node. */
  nodeArgs?: string[];
  /** Where node output goes: "inherit" (the terminal) or "null" (tests). */
  output?: "inherit" | "null";
}

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly bridgePort: number;
  readonly adminPort: number;
  readonly running: boolean;
  /** Sends a signal; waits for the exit status. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Starts the node again (same id and ports) after it exited. */
  restart(): Promise<void>;
}

export interface Cluster {
  /** The redis-server in single mode (null when given --redis-url or in other modes). */
  readonly redis: RedisProcess | null;
  /** The Sentinel set or Redis Cluster in those modes. */
  readonly topology: SentinelSet | RedisClusterSet | null;
  /** In single mode; "" otherwise. */
  readonly redisUrl: string;
  /** The flags that point a node (or `deno task presence`) at this Redis. */
  readonly redisFlags: string[];
  readonly nodes: ClusterNode[];
  /** HAProxy's port, or -1 without HAProxy. */
  readonly port: number;
  readonly secret: string;
  /**
   * Resolves (never rejects) with what went wrong when a child exits that
   * was not stopped through this harness: HAProxy, or a node.
   */
  readonly failure: Promise<string>;
  stop(): Promise<void>;
}

/**
 * HAProxy dials the nodes from this address and sends a PROXY v2 header; the
 * nodes trust only it, so a client connecting to a node directly (from
 * 127.0.0.1, as the tests and tools do) is served without one.
 */
const HAPROXY_SOURCE = "127.0.0.2";

function writeHaproxyConfig(
  dir: string,
  port: number,
  nodes: { id: string; port: number; adminPort: number }[],
): string {
  const path = `${dir}/haproxy.cfg`;
  Deno.writeTextFileSync(
    path,
    [
      "global",
      "  maxconn 9000", // each proxied connection takes 2 fds; the fd limit here is 20000
      "defaults",
      "  mode tcp",
      "  timeout connect 2s",
      // As in deploy/haproxy.cfg: idle chat users are not cut; keepalive finds dead peers.
      "  timeout client 1h",
      "  timeout server 1h",
      "  timeout tunnel 7d",
      "  option clitcpka",
      "  option srvtcpka",
      "frontend chatos",
      `  bind 127.0.0.1:${port}`,
      "  default_backend nodes",
      "backend nodes",
      "  balance roundrobin",
      // As in deploy/haproxy.cfg: a node leaves rotation when its /readyz fails.
      "  option httpchk GET /readyz",
      "  http-check expect status 200",
      "  default-server inter 1s fall 2 rise 1",
      `  source ${HAPROXY_SOURCE}`,
      // The real client address reaches the nodes; the /readyz checks carry no header.
      ...nodes.map((n) =>
        `  server ${n.id} 127.0.0.1:${n.port} send-proxy-v2 check port ${n.adminPort}`
      ),
      "",
    ].join("\n"),
  );
  return path;
}

/** Throws, naming the flag, if 127.0.0.1:port is taken (HAProxy would fail to bind). */
function checkFree(port: number): void {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`--port ${port}: 127.0.0.1:${port} is already in use`);
    }
    throw e;
  }
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.nodes ?? 3;
  const output = opts.output ?? "null";
  const withLb = opts.haproxy ?? true;
  const port = !withLb ? -1 : opts.port === 0 ? freePort() : opts.port ?? 7777;
  if (withLb) checkFree(port);
  const secret = crypto.randomUUID() + crypto.randomUUID();
  // One folder for the secret (a file, not a flag: flags show in ps) and
  // HAProxy's configuration; removed by stop().
  const dir = await Deno.makeTempDir({ prefix: "chatos-cluster-" });
  const secretFile = `${dir}/cluster-secret`;
  await Deno.writeTextFile(secretFile, secret, { mode: 0o600 });
  const failed = Promise.withResolvers<string>();
  let stopping = false;
  const unexpected = (what: string) => {
    if (!stopping) failed.resolve(what);
  };
  const nodes: ClusterNode[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  let redis: RedisProcess | null = null;
  let topology: SentinelSet | RedisClusterSet | null = null;
  const stopAll = async () => {
    stopping = true;
    await Promise.all(stoppers.map((s) => s().catch(() => {})));
    await redis?.stop();
    await topology?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const mode = opts.redis ?? "single";
    redis = opts.redisUrl || mode !== "single" ? null : await startRedis();
    const redisUrl = mode === "single" ? opts.redisUrl ?? redis!.url : "";
    topology = mode === "sentinel"
      ? await startSentinelSet()
      : mode === "cluster"
      ? await startRedisCluster()
      : null;
    const redisFlags = !topology
      ? [`--redis-url=${redisUrl}`]
      : "name" in topology
      ? [`--redis-sentinels=${topology.sentinels}`, `--redis-sentinel-name=${topology.name}`]
      : [`--redis-cluster=${topology.seeds}`];
    for (let i = 1; i <= count; i++) {
      const node = makeNode(`node-${i}`, redisFlags, secretFile, opts, output, unexpected, withLb);
      nodes.push(node.handle);
      stoppers.push(node.stop);
    }
    await Promise.all(nodes.map((n) => n.restart()));
    if (withLb) {
      const cfg = writeHaproxyConfig(dir, port, nodes);
      const lb = spawnChild("haproxy", ["-f", cfg, "-db"], output);
      let exited = false;
      void lb.status.then((st) => {
        exited = true;
        unexpected(`HAProxy exited (code ${st.code})`);
      });
      stoppers.push(async () => {
        try {
          lb.kill("SIGTERM");
        } catch { /* gone */ }
        await lb.status;
      });
      await waitForPort(port, 10000, () => !exited).catch(() => {
        throw new Error(`HAProxy did not start listening on 127.0.0.1:${port} (--port)`);
      });
    }
    return {
      redis,
      topology,
      redisUrl,
      redisFlags,
      nodes,
      port,
      secret,
      failure: failed.promise,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

function makeNode(
  id: string,
  redisFlags: string[],
  secretFile: string,
  opts: ClusterOptions,
  output: "inherit" | "null",
  unexpected: (what: string) => void,
  behindHaproxy: boolean,
) {
  const port = freePort(), bridgePort = freePort(), adminPort = freePort();
  let child: Deno.ChildProcess | null = null;
  let exited = true;
  /** Set while this harness stops the node: its exit is then expected. */
  let stopping = false;
  const handle: ClusterNode = {
    id,
    port,
    bridgePort,
    adminPort,
    get running() {
      return !exited;
    },
    async kill(signal: Deno.Signal = "SIGTERM") {
      const c = child;
      if (!c) throw new Error(`${id} is not running`);
      stopping = true;
      try {
        c.kill(signal);
      } catch { /* gone */ }
      return await c.status;
    },
    async restart() {
      if (!exited) throw new Error(`${id} is running`);
      const args = [
        ...nodeRunArgs(NODE_MAIN),
        "--host=127.0.0.1",
        `--port=${port}`,
        "--presence=redis",
        ...redisFlags,
        `--node-id=${id}`,
        "--bridge-host=127.0.0.1",
        `--bridge-port=${bridgePort}`,
        "--advertise-host=127.0.0.1",
        `--cluster-secret-file=${secretFile}`,
        `--admin-port=${adminPort}`,
        `--log-level=${opts.logLevel ?? "warn"}`,
        ...(behindHaproxy ? ["--proxy-protocol", `--proxy-trusted=${HAPROXY_SOURCE}/32`] : []),
        // Every local client (the tests, the tools, the bench) comes from 127.0.0.1, even
        // through HAProxy's PROXY header: per-address limits would cap them all as one.
        ...["--max-conns-per-address=0", "--max-sessions-per-address=0"],
        "--conn-rate-per-address=0",
        ...(opts.nodeArgs ?? []),
      ];
      const c = spawnChild(Deno.execPath(), args, output);
      child = c;
      exited = false;
      stopping = false;
      void c.status.then((st) => {
        if (child !== c) return;
        exited = true;
        if (!stopping) unexpected(`${id} exited (code ${st.code})`);
      });
      // The admin endpoint starts last, once presence is ready.
      await waitForPort(adminPort, 20000, () => !exited).catch((e) => {
        throw new Error(`${id} did not start: ${errorMessage(e)}`);
      });
    },
  };
  const stop = async () => {
    if (exited || !child) return;
    await handle.kill("SIGTERM").catch(() => {});
  };
  return { handle, stop };
}

const HELP = `Usage: deno task cluster [options]

Starts Redis (unless --redis-url), N ChatOS nodes in Redis mode and
HAProxy on 127.0.0.1:PORT in front of them, and prints where each listens.
Stops everything, and exits non-zero, as soon as any of them exits or fails
to bind. Ctrl-C stops everything.

Options:
  --nodes N          ChatOS nodes (default 3)
  --port PORT        HAProxy's port for clients (default 7777)
  --redis MODE       what Redis to start: single (one redis-server, default),
                     sentinel (a primary, a replica, 3 sentinels) or cluster
                     (a Redis Cluster of 3 primaries and 3 replicas)
  --redis-url URL    single mode: use this Redis instead of starting one
  --log-level LEVEL  the nodes' log level: ${LOG_LEVELS.join(", ")} (default info)
  -h, --help         this text

The nodes get the cluster secret from a file (--cluster-secret-file), never
on their command line.`;

/** The flags that name the cluster's Redis as the environment variables `deno task presence` reads. */
function redisEnv(flags: string[]): string {
  const names: Record<string, string> = {
    "--redis-url": "REDIS_URL",
    "--redis-sentinels": "CHATOS_REDIS_SENTINELS",
    "--redis-sentinel-name": "CHATOS_REDIS_SENTINEL_NAME",
    "--redis-cluster": "CHATOS_REDIS_CLUSTER",
  };
  return flags.map((f) => {
    const [flag, value] = f.split("=", 2);
    return `${names[flag]}=${value}`;
  }).join(" ");
}

/** Resolves with a reason when the Redis the harness started stops answering. */
async function watchRedis(redis: RedisProcess, stopped: () => boolean): Promise<string> {
  let misses = 0;
  while (!stopped()) {
    await sleep(1000);
    misses = (await pingRedis(redis.port)) ? 0 : misses + 1;
    if (misses >= 3) return `redis-server on port ${redis.port} stopped answering`;
  }
  return "";
}

export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(args),
      options: {
        nodes: { type: "string", default: "3" },
        port: { type: "string", default: "7777" },
        "redis-url": { type: "string" },
        redis: { type: "string", default: "single" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    console.error(`cluster: ${errorMessage(e)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const nodes = Number(values.nodes), port = Number(values.port);
  const logLevel = values["log-level"] as LogLevel;
  if (!Number.isInteger(nodes) || nodes < 1) {
    console.error(`cluster: --nodes: "${values.nodes}" is not a whole number of at least 1`);
    return 2;
  }
  if (!/^\d+$/.test(values.port) || port > 65535) {
    console.error(`cluster: --port: "${values.port}" is not a TCP port`);
    return 2;
  }
  const redisMode = values.redis as RedisMode;
  if (!REDIS_MODES.includes(redisMode)) {
    console.error(`cluster: --redis: "${values.redis}" is not one of ${REDIS_MODES.join(", ")}`);
    return 2;
  }
  if (values["redis-url"] !== undefined && redisMode !== "single") {
    console.error(
      `cluster: --redis-url names one Redis to use instead of starting one: only with --redis single, not ${redisMode}`,
    );
    return 2;
  }
  if (!LOG_LEVELS.includes(logLevel)) {
    console.error(`cluster: --log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
    return 2;
  }
  let cluster: Cluster;
  try {
    cluster = await startCluster({
      nodes,
      port,
      redisUrl: values["redis-url"],
      redis: redisMode,
      logLevel,
      output: "inherit",
    });
  } catch (e) {
    console.error(`cluster: could not start: ${errorMessage(e)}`);
    return 1;
  }
  console.log(`\nChatOS cluster up:
  clients:  127.0.0.1:${cluster.port} (HAProxy, round robin)
  redis:    ${redisMode}${cluster.redisUrl ? ` ${cluster.redisUrl}` : ""}
${
    cluster.nodes.map((n) =>
      `  ${n.id}:   127.0.0.1:${n.port}  bridge ${n.bridgePort}  admin http://127.0.0.1:${n.adminPort}/metrics`
    ).join("\n")
  }
For deno task presence (and redis-cli -u "$REDIS_URL"), in another terminal:
  export ${redisEnv(cluster.redisFlags)}
Ctrl-C to stop.\n`);
  let stopped = false;
  const signal = Promise.withResolvers<string>();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => signal.resolve(""));
  }
  const watches = [signal.promise, cluster.failure];
  if (cluster.redis) watches.push(watchRedis(cluster.redis, () => stopped));
  const why = await Promise.race(watches);
  stopped = true;
  if (why) console.error(`cluster: ${why}; stopping everything`);
  await cluster.stop();
  return why ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
