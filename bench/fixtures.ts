/**
 * Processes several scenarios share, started on first use and stopped when
 * the run ends: a Redis-backed cluster of three ChatOS nodes. (A Redis Cluster
 * beside it would be one more fixture here.)
 */
import { readExactly, writeAll } from "../src/lib/async.ts";
import { closeQuietly, errorMessage } from "../src/lib/errors.ts";
import type { RedisProcess } from "../src/ops/processes.ts";
import type { Harness, Proc } from "./harness.ts";
import type { Child } from "./procs.ts";
import { frame, FrameScanner, OP_CR, OP_SPM } from "./wire.ts";

export interface Cluster {
  readonly redis: RedisProcess;
  readonly nodes: Proc[];
  readonly ports: number[];
  /** Redis's pid while it runs, for its CPU over a window. */
  readonly redisPids: () => number[];
}

export type ClusterOrSkip = { cluster: Cluster } | { skipped: string };

const SECRET = "bench-cluster-secret-0123456789";

export class Fixtures {
  readonly #h: Harness;
  #cluster: Promise<ClusterOrSkip> | null = null;
  #redis: RedisProcess | null = null;
  #nodes: Proc[] = [];

  constructor(h: Harness) {
    this.#h = h;
  }

  /** Children the run must not stop between scenarios. */
  get children(): ReadonlySet<Child> {
    return new Set(this.#nodes.map((n) => n.child));
  }

  /** Redis and three nodes in redis presence mode, probed; or why not. */
  cluster(): Promise<ClusterOrSkip> {
    return this.#cluster ??= this.#startCluster();
  }

  async #startCluster(): Promise<ClusterOrSkip> {
    this.#h.console.progress("cluster: starting redis-server and 3 nodes");
    const redis = await this.#h.startRedis();
    if (!redis) return { skipped: "redis-server is not installed" };
    this.#redis = redis;
    for (let i = 0; i < 3; i++) {
      try {
        this.#nodes.push(
          await this.#h.startServer(`node${i}`, [
            ...["--presence", "redis", "--redis-url", redis.url, "--cluster-secret", SECRET],
            ...["--node-id", `bench${i}`, "--bridge-host", "127.0.0.1", "--bridge-port", "0"],
            ...["--advertise-host", "127.0.0.1"],
          ]),
        );
      } catch (e) {
        return { skipped: `node ${i} did not start in cluster mode: ${errorMessage(e)}` };
      }
    }
    const ports = this.#nodes.map((n) => n.port);
    const broken = await probeCluster(ports);
    if (broken) return { skipped: broken };
    const redisPids = () => (redis.pid === null ? [] : [redis.pid]);
    return { cluster: { redis, nodes: this.#nodes, ports, redisPids } };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.child.stop()));
    await this.#redis?.stop();
    this.#nodes = [];
    this.#redis = null;
    this.#cluster = null;
  }
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
