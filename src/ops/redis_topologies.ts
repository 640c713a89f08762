/**
 * Throwaway Redis topologies on loopback ports, for `deno task cluster
 * --redis sentinel|cluster` and the tests: a primary with a replica under
 * three sentinels, and a 6-server Redis Cluster (3 primaries, 3 replicas).
 * No persistence; every process is killed when the starter unloads
 * (processes.ts). Servers here can be killed one by one to test failover.
 */
import { freePort, spawnAnswering } from "./processes.ts";
import { sleep } from "../lib/async.ts";

/** One redis-server (or sentinel) process of a topology. */
export interface RedisMember {
  readonly port: number;
  /** Its process id (for CPU figures; stays set after it exits). */
  readonly pid: number;
  readonly running: boolean;
  /** SIGKILL and wait, as a crash would. */
  kill(): Promise<void>;
}

export interface SentinelSet {
  /** The name the sentinels monitor the primary under. */
  readonly name: string;
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3", as --redis-sentinels takes it. */
  readonly sentinels: string;
  readonly servers: RedisMember[];
  /** The port of the server the sentinels call primary now. */
  primaryPort(): Promise<number>;
  stop(): Promise<void>;
}

export interface RedisClusterSet {
  /** "127.0.0.1:p1,…" (all six), as --redis-cluster takes it. */
  readonly seeds: string;
  readonly servers: RedisMember[];
  /** The ports of the servers that are primaries now. */
  primaryPorts(): Promise<number[]>;
  /**
   * A replica takes over from its primary on request (CLUSTER FAILOVER): no data lost, but the
   * cluster's epoch grows, as after a real failover. A replica of `primary` if given.
   */
  manualFailover(primary?: RedisMember): Promise<void>;
  /** The server that is primary for `key`'s slot now; null while none is (a failover). */
  primaryFor(key: string): Promise<RedisMember | null>;
  stop(): Promise<void>;
}

const text = new TextDecoder();

/** Runs redis-cli against a loopback port; stdout, or throws with stderr. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  if (out.code !== 0) throw new Error(`redis-cli ${args.join(" ")}: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout);
}

async function spawnMember(
  cmd: string,
  args: (port: number) => string[],
  portOk: (port: number) => boolean = () => true,
): Promise<RedisMember> {
  for (let attempt = 1;; attempt++) {
    let port = freePort();
    while (!portOk(port)) port = freePort();
    const proc = await spawnAnswering(cmd, port, args(port));
    if (proc) {
      let exited = false;
      void proc.status.then(() => (exited = true));
      return {
        port,
        pid: proc.pid,
        get running() {
          return !exited;
        },
        async kill() {
          try {
            proc.kill("SIGKILL");
          } catch { /* exited already */ }
          await proc.status;
        },
      };
    }
    if (attempt >= 5) throw new Error(`${cmd} did not start`);
  }
}

const NO_DISK = ["--save", "", "--appendonly", "no", "--daemonize", "no", "--bind", "127.0.0.1"];

async function until(what: string, ms: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function stopAll(members: RedisMember[]): Promise<void> {
  await Promise.all(members.map((m) => m.kill()));
}

/**
 * A primary, one replica, and three sentinels (quorum 2) that fail over
 * within about two seconds of the primary dying (down-after 1000 ms).
 */
export async function startSentinelSet(name = "chatos"): Promise<SentinelSet> {
  const dir = await Deno.makeTempDir({ prefix: "chatos-sentinel-" });
  const members: RedisMember[] = [];
  try {
    const primary = await spawnMember("redis-server", (p) => [
      ...["--port", String(p), ...NO_DISK, "--dir", dir],
    ]);
    members.push(primary);
    const replica = await spawnMember("redis-server", (p) => [
      ...["--port", String(p), ...NO_DISK, "--dir", dir],
      ...["--replicaof", "127.0.0.1", String(primary.port)],
    ]);
    members.push(replica);
    await until("the replica to sync", 10000, async () => {
      const info = await redisCli(replica.port, "INFO", "replication").catch(() => "");
      return info.includes("master_link_status:up");
    });
    const sentinels: RedisMember[] = [];
    for (let i = 0; i < 3; i++) {
      sentinels.push(
        await spawnMember("redis-server", (p) => {
          const conf = `${dir}/sentinel-${p}.conf`; // a sentinel rewrites its own file
          Deno.writeTextFileSync(
            conf,
            [
              `port ${p}`,
              "bind 127.0.0.1",
              `dir ${dir}`,
              `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
              `sentinel down-after-milliseconds ${name} 1000`,
              `sentinel failover-timeout ${name} 5000`,
              `sentinel parallel-syncs ${name} 1`,
              "",
            ].join("\n"),
          );
          return [conf, "--sentinel"];
        }),
      );
    }
    members.push(...sentinels);
    // Each sentinel must know the others and the replica before a failover can be agreed on.
    await until("the sentinels to see each other and the replica", 15000, async () => {
      for (const s of sentinels) {
        const out = await redisCli(s.port, "SENTINEL", "MASTER", name).catch(() => "");
        const f = out.split("\n").map((l) => l.trim());
        const field = (k: string) => Number(f[f.indexOf(k) + 1]);
        if (field("num-other-sentinels") < 2 || field("num-slaves") < 1) return false;
      }
      return true;
    });
    const sentinelPorts = sentinels.map((s) => s.port);
    return {
      name,
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(","),
      servers: [primary, replica],
      async primaryPort() {
        for (const s of sentinels) {
          if (!s.running) continue;
          const out = await redisCli(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name);
          return Number(out.trim().split("\n")[1]);
        }
        throw new Error("no sentinel running");
      },
      async stop() {
        await stopAll(members);
        await Deno.remove(dir, { recursive: true }).catch(() => {}); // best effort
      },
    };
  } catch (e) {
    await stopAll(members);
    throw e;
  }
}

/**
 * Six servers in cluster mode joined by `redis-cli --cluster create` with one
 * replica per primary. A primary's death is noticed after cluster-node-timeout
 * (1000 ms here), then its replica is promoted.
 */
export async function startRedisCluster(): Promise<RedisClusterSet> {
  const dir = await Deno.makeTempDir({ prefix: "chatos-rcluster-" });
  const members: RedisMember[] = [];
  // The cluster bus listens on port + 10000; it must be free too.
  const busFree = (port: number) => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port: port + 10000 }).close();
      return true;
    } catch {
      return false;
    }
  };
  try {
    for (let i = 0; i < 6; i++) {
      members.push(
        await spawnMember("redis-server", (p) => [
          ...["--port", String(p), ...NO_DISK, "--dir", dir],
          ...["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${p}.conf`],
          ...["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"],
        ], busFree),
      );
    }
    const addrs = members.map((m) => `127.0.0.1:${m.port}`);
    await redisCli(
      members[0].port,
      "--cluster",
      "create",
      ...addrs,
      "--cluster-replicas",
      "1",
      "--cluster-yes",
    );
    await until("the cluster to be ok everywhere", 20000, async () => {
      for (const m of members) {
        const info = await redisCli(m.port, "CLUSTER", "INFO").catch(() => "");
        if (!info.includes("cluster_state:ok")) return false;
      }
      return true;
    });
    return {
      seeds: addrs.join(","),
      servers: members,
      async primaryPorts() {
        for (const m of members) {
          if (!m.running) continue;
          const out = await redisCli(m.port, "CLUSTER", "NODES");
          return out.split("\n").filter((l) => /\bmaster\b/.test(l) && !/\bfail\b/.test(l))
            .map((l) => Number(l.split(" ")[1].split("@")[0].split(":")[1]));
        }
        throw new Error("no cluster member running");
      },
      async manualFailover(primary?: RedisMember) {
        const live = members.find((m) => m.running)!;
        const nodes = (await redisCli(live.port, "CLUSTER", "NODES")).split("\n")
          .map((l) => l.split(" "));
        const portOf = (f: string[]) => Number(f[1].split("@")[0].split(":")[1]);
        const primaryId = primary && nodes.find((f) => f[1] && portOf(f) === primary.port)?.[0];
        const replica = nodes.find((f) =>
          /\bslave\b/.test(f[2] ?? "") && !/fail/.test(f[2]) && f[7] === "connected" &&
          (!primary || f[3] === primaryId)
        );
        if (!replica) throw new Error("no healthy replica to fail over to");
        const port = portOf(replica);
        await redisCli(port, "CLUSTER", "FAILOVER");
        await until("the replica to be primary", 10000, async () => {
          const info = await redisCli(port, "ROLE");
          return info.startsWith("master");
        });
      },
      async primaryFor(key: string): Promise<RedisMember | null> {
        const live = members.find((m) => m.running);
        if (!live) throw new Error("no cluster member running");
        const slot = Number(await redisCli(live.port, "CLUSTER", "KEYSLOT", key));
        const nodes = (await redisCli(live.port, "CLUSTER", "NODES")).split("\n");
        for (const line of nodes) {
          const f = line.split(" ");
          if (!/\bmaster\b/.test(f[2] ?? "") || /\bfail\b/.test(f[2])) continue;
          const port = Number(f[1].split("@")[0].split(":")[1]);
          for (const range of f.slice(8)) {
            const [lo, hi = lo] = range.split("-").map(Number);
            if (slot >= lo && slot <= hi) return members.find((m) => m.port === port)!;
          }
        }
        return null;
      },
      async stop() {
        await stopAll(members);
        await Deno.remove(dir, { recursive: true }).catch(() => {}); // best effort
      },
    };
  } catch (e) {
    await stopAll(members);
    throw e;
  }
}
