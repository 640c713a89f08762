/**
 * Processes several scenarios share, started on first use: three ChatOS nodes
 * in Redis presence mode, on one standalone redis-server or on a Redis Cluster
 * (3 primaries, 3 replicas; src/ops/redis_topologies.ts). One shared cluster
 * runs at a time: asking for the other Redis stops the current one, so the
 * idle set never takes CPU from a measured one. A scenario that breaks its
 * cluster (SIGSTOPs Redis) starts a private one instead (`startBenchCluster`).
 */
import { readExactly, writeAll } from "../src/lib/async.ts";
import { closeQuietly, errorMessage } from "../src/lib/errors.ts";
import type { RedisProcess } from "../src/ops/processes.ts";
import { type RedisClusterSet, startRedisCluster } from "../src/ops/redis_topologies.ts";
import type { Harness, Proc } from "./harness.ts";
import type { ProfileName } from "./profiles.ts";
import type { Child } from "./procs.ts";
import { frame, FrameScanner, OP_CR, OP_SPM } from "./wire.ts";

/** The Redis the nodes share: one redis-server, or a Redis Cluster. */
export type BenchRedis = "single" | "cluster";

/** What a result line of a scenario run on `redis` is called: "spm-cluster", "spm-cluster[rc]". */
export function lineName(base: string, redis: BenchRedis): string {
  return redis === "single" ? base : `${base}[rc]`;
}

/** --only names of a cluster scenario: "cluster", and "rc" for the Redis Cluster variants. */
export function clusterGroups(redis: BenchRedis): string[] {
  return redis === "single" ? ["cluster"] : ["cluster", "rc"];
}

/**
 * The Redis Cluster variants run in full runs only: starting six redis-servers
 * and three more nodes, then measuring, would add about 20 s to --quick.
 */
export function clusterProfiles(redis: BenchRedis): ProfileName[] {
  return redis === "single" ? ["full", "quick"] : ["full"];
}

export interface Cluster {
  readonly redis: BenchRedis;
  /** The standalone redis-server (single mode only), e.g. to SIGSTOP it. */
  readonly redisProcess: RedisProcess | null;
  readonly nodes: Proc[];
  readonly ports: number[];
  /** Every redis-server's pid (1, or the Redis Cluster's 6), for their CPU over a window. */
  readonly redisPids: () => number[];
}

export type ClusterOrSkip = { cluster: Cluster } | { skipped: string };

/** A started cluster (or why not) and how to stop whatever of it did start. */
export interface Started {
  readonly got: ClusterOrSkip;
  readonly nodes: ReadonlySet<Child>;
  stop(): Promise<void>;
}

const SECRET = "bench-cluster-secret-0123456789abcdef";

export class Fixtures {
  readonly #h: Harness;
  #shared: { redis: BenchRedis; started: Promise<Started> } | null = null;

  constructor(h: Harness) {
    this.#h = h;
  }

  /** Children the run must not stop between scenarios: the shared cluster's nodes. */
  async children(): Promise<ReadonlySet<Child>> {
    return (await this.#shared?.started)?.nodes ?? new Set();
  }

  /** Three nodes in redis presence mode on `redis`, probed; or why not. */
  async cluster(redis: BenchRedis = "single"): Promise<ClusterOrSkip> {
    if (this.#shared?.redis !== redis) {
      await this.stop();
      this.#shared = { redis, started: startBenchCluster(this.#h, redis) };
    }
    return (await this.#shared.started).got;
  }

  /**
   * A private cluster on `redis`, for a scenario that breaks its Redis (SIGSTOP); the shared
   * one is stopped first, so it takes no CPU meanwhile. The caller stops what this returns.
   */
  async fresh(redis: BenchRedis, nodeFlags: string[] = []): Promise<Started> {
    await this.stop();
    return await startBenchCluster(this.#h, redis, nodeFlags);
  }

  async stop(): Promise<void> {
    const shared = this.#shared;
    this.#shared = null;
    await (await shared?.started)?.stop();
  }
}

/**
 * Starts Redis of the kind asked and three nodes on it, with `nodeFlags` besides the bench's;
 * never rejects (a failure is `skipped`).
 */
export async function startBenchCluster(
  h: Harness,
  redis: BenchRedis,
  nodeFlags: string[] = [],
): Promise<Started> {
  const nodes: Proc[] = [];
  let single: RedisProcess | null = null;
  let rc: RedisClusterSet | null = null;
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.child.stop()));
    await single?.stop();
    await rc?.stop();
  };
  const done = (got: ClusterOrSkip): Started => ({
    got,
    nodes: new Set(nodes.map((n) => n.child)),
    stop,
  });
  const skip = async (why: string) => {
    await stop();
    return done({ skipped: why });
  };
  let flags: string[];
  let redisPids: () => number[];
  if (redis === "single") {
    h.console.progress("cluster: starting redis-server and 3 nodes");
    try {
      single = await h.startRedis();
    } catch (e) {
      return await skip(`redis-server did not start: ${errorMessage(e)}`);
    }
    if (!single) return await skip("redis-server is not installed");
    const p = single;
    flags = ["--redis-url", p.url];
    redisPids = () => (p.pid === null ? [] : [p.pid]);
  } else {
    h.console.progress("cluster[rc]: starting a Redis Cluster (6 redis-servers) and 3 nodes");
    try {
      rc = await startRedisCluster();
    } catch (e) {
      return await skip(`no Redis Cluster: ${errorMessage(e)}`);
    }
    const pids = rc.servers.map((m) => m.pid);
    flags = ["--redis-cluster", rc.seeds];
    redisPids = () => pids;
  }
  for (let i = 0; i < 3; i++) {
    try {
      nodes.push(
        await h.startServer(`node${i}${redis === "single" ? "" : "[rc]"}`, [
          ...["--presence", "redis", ...flags, "--cluster-secret", SECRET],
          ...["--node-id", `bench${i}`, "--bridge-host", "127.0.0.1", "--bridge-port", "0"],
          ...["--advertise-host", "127.0.0.1"],
          ...nodeFlags,
        ]),
      );
    } catch (e) {
      return await skip(`node ${i} did not start in cluster mode: ${errorMessage(e)}`);
    }
  }
  const ports = nodes.map((n) => n.port);
  const broken = await probeCluster(ports);
  if (broken) return await skip(broken);
  return done({ cluster: { redis, redisProcess: single, nodes: [...nodes], ports, redisPids } });
}

/** One SPM from a user on node 0 to a user on node 1: does cross-node delivery work at all? */
async function probeCluster(ports: number[]): Promise<string | null> {
  const conns: Deno.Conn[] = [];
  const timer = setTimeout(() => conns.forEach(closeQuietly), 5000);
  try {
    const login = async (port: number, who: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(c);
      await writeAll(c, frame(OP_CR, [who]));
      const b = await readExactly(c, 2);
      if (b[0] !== 8 || b[1] !== 1) throw new Error(`login ${who} on port ${port}: ${b}`);
      return c;
    };
    const a = await login(ports[0], "probeA");
    const b = await login(ports[1], "probeB");
    await writeAll(a, frame(OP_SPM, ["probeA", "probeB", "hello"]));
    const ack = await readExactly(a, 2);
    if (ack[0] !== 8 || ack[1] !== 1) {
      return `cross-node SPM not acknowledged with ERROR 1 (got ${ack})`;
    }
    const buf = new Uint8Array(256);
    let got = false;
    const scan = new FrameScanner();
    while (!got) {
      const n = await b.read(buf);
      if (n === null) return "recipient's connection closed";
      scan.feed(buf, n, { onFrame: (op) => (got ||= op === OP_SPM) });
    }
    return null;
  } catch (e) {
    return `cross-node probe failed: ${errorMessage(e)}`;
  } finally {
    clearTimeout(timer);
    conns.forEach(closeQuietly);
  }
}
