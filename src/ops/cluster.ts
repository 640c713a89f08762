/**
 * `deno task cluster`: the docker-compose topology as local processes — a
 * redis-server on a free port, N ChatOS nodes in Redis mode, and HAProxy in
 * TCP mode on one public port in front of them. The tests start the same
 * harness (`startCluster`) to exercise the cluster end to end.
 */
import { parseArgs } from "node:util";
import { freePort, type RedisProcess, spawnChild, startRedis, waitForPort } from "./processes.ts";

export interface ClusterOptions {
  /** Number of ChatOS nodes (default 3). */
  nodes?: number;
  /** HAProxy's port (default 7777; 0 = a free port). */
  port?: number;
  /** Start HAProxy in front of the nodes (default true). */
  haproxy?: boolean;
  /** Use this Redis instead of starting one. */
  redisUrl?: string;
  logLevel?: "error" | "warn" | "info" | "debug";
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
  readonly redis: RedisProcess | null;
  readonly redisUrl: string;
  readonly nodes: ClusterNode[];
  /** HAProxy's port, or -1 without HAProxy. */
  readonly port: number;
  readonly secret: string;
  stop(): Promise<void>;
}

const REPO = new URL("../../", import.meta.url);

/**
 * HAProxy dials the nodes from this address and sends a PROXY v2 header; the
 * nodes trust only it, so a client connecting to a node directly (from
 * 127.0.0.1, as the tests and tools do) is served without one.
 */
const HAPROXY_SOURCE = "127.0.0.2";
const SERVER_MAIN = new URL("src/server/main.ts", REPO).pathname;

function writeHaproxyConfig(
  port: number,
  nodes: { id: string; port: number; adminPort: number }[],
): string {
  const dir = Deno.makeTempDirSync({ prefix: "chatos-haproxy-" });
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

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.nodes ?? 3;
  const output = opts.output ?? "null";
  const secret = crypto.randomUUID() + crypto.randomUUID();
  const redis = opts.redisUrl ? null : await startRedis();
  const redisUrl = opts.redisUrl ?? redis!.url;
  const nodes: ClusterNode[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  try {
    for (let i = 1; i <= count; i++) {
      const node = makeNode(`node-${i}`, redisUrl, secret, opts, output, opts.haproxy ?? true);
      nodes.push(node.handle);
      stoppers.push(node.stop);
    }
    await Promise.all(nodes.map((n) => n.restart()));
    let port = -1;
    if (opts.haproxy ?? true) {
      port = opts.port === 0 ? freePort() : opts.port ?? 7777;
      const cfg = writeHaproxyConfig(port, nodes);
      const lb = spawnChild("haproxy", ["-f", cfg, "-db"], output);
      let exited = false;
      void lb.status.then(() => (exited = true));
      stoppers.push(async () => {
        try {
          lb.kill("SIGTERM");
        } catch { /* gone */ }
        await lb.status;
      });
      await waitForPort(port, 10000, () => !exited);
    }
    return {
      redis,
      redisUrl,
      nodes,
      port,
      secret,
      async stop() {
        await Promise.all(stoppers.map((s) => s()));
        await redis?.stop();
      },
    };
  } catch (e) {
    await Promise.all(stoppers.map((s) => s().catch(() => {})));
    await redis?.stop();
    throw e;
  }
}

function makeNode(
  id: string,
  redisUrl: string,
  secret: string,
  opts: ClusterOptions,
  output: "inherit" | "null",
  behindHaproxy: boolean,
) {
  const port = freePort(), bridgePort = freePort(), adminPort = freePort();
  let child: Deno.ChildProcess | null = null;
  let exited = true;
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
      try {
        c.kill(signal);
      } catch { /* gone */ }
      return await c.status;
    },
    async restart() {
      if (!exited) throw new Error(`${id} is running`);
      const args = [
        "run",
        "-A",
        SERVER_MAIN,
        "--host=127.0.0.1",
        `--port=${port}`,
        "--presence=redis",
        `--redis-url=${redisUrl}`,
        `--node-id=${id}`,
        "--bridge-host=127.0.0.1",
        `--bridge-port=${bridgePort}`,
        "--advertise-host=127.0.0.1",
        `--cluster-secret=${secret}`,
        `--admin-port=${adminPort}`,
        `--log-level=${opts.logLevel ?? "warn"}`,
        ...(behindHaproxy ? ["--proxy-protocol", `--proxy-trusted=${HAPROXY_SOURCE}/32`] : []),
        ...(opts.nodeArgs ?? []),
      ];
      const c = spawnChild(Deno.execPath(), args, output);
      child = c;
      exited = false;
      void c.status.then(() => {
        if (child === c) exited = true;
      });
      // The admin endpoint starts last, once presence is ready.
      await waitForPort(adminPort, 20000, () => !exited);
    },
  };
  const stop = async () => {
    if (exited || !child) return;
    await handle.kill("SIGTERM").catch(() => {});
  };
  return { handle, stop };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      nodes: { type: "string", default: "3" },
      port: { type: "string", default: "7777" },
      "redis-url": { type: "string" },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(`deno task cluster [--nodes 3] [--port 7777] [--redis-url URL] [--log-level info]

Starts redis-server (unless --redis-url), N ChatOS nodes in Redis mode and
HAProxy on 127.0.0.1:PORT in front of them. Ctrl-C stops everything.`);
    Deno.exit(0);
  }
  const nodes = Number(values.nodes), port = Number(values.port);
  if (
    !Number.isInteger(nodes) || nodes < 1 || !Number.isInteger(port) || port < 0 || port > 65535
  ) {
    console.error("cluster: --nodes must be ≥ 1 and --port a TCP port");
    Deno.exit(2);
  }
  const cluster = await startCluster({
    nodes,
    port,
    redisUrl: values["redis-url"],
    logLevel: values["log-level"] as ClusterOptions["logLevel"],
    output: "inherit",
  });
  console.log(`\nChatOS cluster up:
  clients:  127.0.0.1:${cluster.port} (HAProxy, round robin)
  redis:    ${cluster.redisUrl}   (deno task presence --redis-url ${cluster.redisUrl})
${
    cluster.nodes.map((n) =>
      `  ${n.id}:   127.0.0.1:${n.port}  bridge ${n.bridgePort}  admin http://127.0.0.1:${n.adminPort}/metrics`
    ).join("\n")
  }
Ctrl-C to stop.\n`);
  const done = Promise.withResolvers<void>();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => done.resolve());
  }
  await done.promise;
  await cluster.stop();
  Deno.exit(0);
}
