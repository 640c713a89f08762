/** The ops tools say what is true: clean errors, the flag and port at fault, children watched. */
import assert from "node:assert/strict";
import * as path from "node:path";
import { withDeadline } from "../src/lib/async.ts";
import { Logger } from "../src/lib/log.ts";
import { freePort, startRedis } from "../src/ops/processes.ts";
import { redisCli } from "../src/ops/redis_topologies.ts";
import { ConfigError, helpText, parseConfig } from "../src/server/config.ts";
import { startServer } from "../src/server/server.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const dec = new TextDecoder();

async function run(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A private TMPDIR, so what a tool leaves behind is seen and nobody else's is. */
async function withTmp(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "chatos-ops-truth-" });
  try {
    await fn(tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("ops: -h works everywhere (deno task mutate too: it runs nothing); --help never shows an empty default", async () => {
  const scripts = ["src/server/main.ts", "src/ops/cluster.ts", "src/ops/presence.ts"];
  for (const script of [...scripts, "tests/mutation/run.ts"]) {
    const r = await run(script, ["-h"]);
    assert.equal(r.code, 0, `${script} -h: ${r.stderr}`);
    assert.match(r.stdout, /Usage|usage/, script);
    assert.doesNotMatch(r.stdout, /default ""/, script);
  }
  // A typo in deno task mutate's flags must not start its quarter-hour run.
  const typo = await run("tests/mutation/run.ts", ["--lst"]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^mutate: Unknown option '--lst'/);
  assert.match(typo.stderr, /Usage: deno task mutate/);
  const client = await run("src/client/cli/main.ts", ["-h"]);
  assert.equal(client.code, 0);
  assert.doesNotMatch(helpText(), /default ""/);
  assert.match(helpText(), /--cluster-secret-file/);
});

Deno.test("ops: cluster refuses a bad flag cleanly, and a taken port by its flag, leaving nothing", async () => {
  await withTmp(async (tmp) => {
    const verbose = await run("src/ops/cluster.ts", ["--log-level", "verbose"], { TMPDIR: tmp });
    assert.equal(verbose.code, 2);
    assert.match(verbose.stderr, /--log-level: "verbose" is not one of error, warn, info, debug/);
    assert.doesNotMatch(verbose.stderr, /\n\s+at /, "no stack trace");
    const negative = await run("src/ops/cluster.ts", ["--nodes", "-1"], { TMPDIR: tmp });
    assert.equal(negative.stderr, 'cluster: --nodes: "-1" is not a whole number of at least 1\n');
    // --redis-url names a Redis to use instead of starting one: another mode would ignore it.
    const both = await run(
      "src/ops/cluster.ts",
      ["--redis", "cluster", "--redis-url", "redis://x"],
      {
        TMPDIR: tmp,
      },
    );
    assert.equal(both.code, 2);
    assert.equal(
      both.stderr,
      "cluster: --redis-url names one Redis to use instead of starting one: only with --redis single, not cluster\n",
    );

    const taken = Deno.listen({ hostname: "127.0.0.1", port: freePort() });
    try {
      const port = taken.addr.port;
      const r = await run("src/ops/cluster.ts", ["--nodes", "1", "--port", String(port)], {
        TMPDIR: tmp,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`could not start: --port ${port}: .* already in use`));
      assert.doesNotMatch(r.stdout, /cluster up/);
    } finally {
      taken.close();
    }
    assert.deepEqual(await Array.fromAsync(Deno.readDir(tmp)), [], "no temp folder left");
  });
});

/**
 * Starts `deno task cluster` with a private TMPDIR, kills the one child whose
 * command line matches `child` (and names that TMPDIR), and returns the
 * cluster's exit code and stderr, and that child's command line.
 */
async function killChildOfCluster(child: string) {
  let result!: { code: number; stderr: string; args: string; left: Deno.DirEntry[] };
  await withTmp(async (tmp) => {
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/ops/cluster.ts", "--nodes", "1", "--port", String(freePort())],
      cwd: ROOT,
      env: { TMPDIR: tmp },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(proc.stderr).text();
    const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let stdout = "";
    try {
      while (!stdout.includes("Ctrl-C to stop")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`cluster ended early: ${stdout}\n${await stderr}`);
        stdout += value;
      }
      const ps = dec.decode(
        (await new Deno.Command("ps", { args: ["-eo", "pid,args"] }).output()).stdout,
      );
      const lines = ps.split("\n").filter((l) => l.includes(tmp) && l.includes(child));
      assert.equal(lines.length, 1, ps);
      Deno.kill(Number(lines[0].trim().split(/\s+/)[0]), "SIGKILL");
      const status = await withDeadline(
        proc.status,
        30_000,
        () => new Error(`the cluster kept running after ${child} died`),
      );
      result = {
        code: status.code,
        stderr: await stderr,
        args: lines[0],
        left: await Array.fromAsync(Deno.readDir(tmp)),
      };
    } finally {
      try {
        proc.kill("SIGKILL");
      } catch { /* exited */ }
      await reader.cancel().catch(() => {});
      await proc.status;
      await stderr;
    }
  });
  return result;
}

Deno.test("ops: cluster stops everything and exits 1 when a node dies; the secret is not in ps", async () => {
  const r = await killChildOfCluster("--node-id=node-1");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cluster: node-1 exited \(code \d+\); stopping everything/);
  assert.match(r.args, /--cluster-secret-file=/);
  assert.doesNotMatch(r.args, /--cluster-secret=/, "the secret is not on the command line");
  assert.deepEqual(r.left, [], "no temp folder left");
});

Deno.test("ops: cluster stops everything and exits 1 when HAProxy dies", async () => {
  const r = await killChildOfCluster("haproxy -f");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cluster: HAProxy exited \(code \d+\); stopping everything/);
  assert.deepEqual(r.left, [], "no temp folder left");
});

Deno.test("ops: an address in use, or a host not of this machine, is named by its flag; the listening line has the admin URL", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  try {
    await assert.rejects(
      startServer({ host: "127.0.0.1", port }),
      new RegExp(`--port ${port}: 127\\.0\\.0\\.1:${port} is already in use`),
    );
    await assert.rejects(
      startServer({ host: "127.0.0.1", port: 0, adminPort: port }),
      new RegExp(`--admin-port ${port}: 127\\.0\\.0\\.1:${port} is already in use`),
    );
    await assert.rejects(
      startServer({
        host: "127.0.0.1",
        port: 0,
        presence: "redis",
        bridgeHost: "127.0.0.1",
        bridgePort: port,
        clusterSecret: "0123456789abcdef".repeat(2),
      }),
      new RegExp(`--bridge-port ${port}: 127\\.0\\.0\\.1:${port} is already in use`),
    );
  } finally {
    taken.close();
  }
  // A host that is no address of this machine is named by its flag too.
  await assert.rejects(
    startServer({ host: "999.1.1.1", port: 0 }),
    /^Error: --host 999\.1\.1\.1: cannot listen there: failed to lookup address/,
  );
  await assert.rejects(
    startServer({ host: "127.0.0.1", port: 0, adminHost: "192.0.2.1", adminPort: 0 }),
    /^Error: --admin-host 192\.0\.2\.1: cannot listen there: Cannot assign requested address/,
  );
  const lines: string[] = [];
  const server = await startServer({ host: "127.0.0.1", port: 0, adminPort: 0 }, {
    logger: new Logger("info", {}, (l) => lines.push(l)),
  });
  try {
    const listening = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "listening");
    assert.equal(listening?.admin, `http://127.0.0.1:${server.adminPort}/metrics`);
  } finally {
    await server.close();
  }
});

Deno.test("ops: the cluster secret can come from a file", async () => {
  await withTmp(async (tmp) => {
    const file = path.join(tmp, "secret");
    await Deno.writeTextFile(file, "  a-cluster-secret-of-thirty-two-bytes\n");
    const noEnv = () => undefined;
    const r = parseConfig(["--presence", "redis", "--cluster-secret-file", file], noEnv);
    assert.ok(!r.help && r.config.clusterSecret === "a-cluster-secret-of-thirty-two-bytes");
    const fromEnv = parseConfig(
      ["--presence", "redis"],
      (n) => n === "CHATOS_CLUSTER_SECRET_FILE" ? file : undefined,
    );
    assert.ok(
      !fromEnv.help && fromEnv.config.clusterSecret === "a-cluster-secret-of-thirty-two-bytes",
    );
    assert.throws(
      () => parseConfig(["--cluster-secret-file", path.join(tmp, "missing")], noEnv),
      (e) => e instanceof ConfigError && /--cluster-secret-file: cannot read/.test(e.message),
    );
    assert.throws(
      () => parseConfig(["--cluster-secret", "x".repeat(20), "--cluster-secret-file", file], noEnv),
      /give the cluster secret once/,
    );
  });
});

Deno.test("ops: presence checks the URL and says plainly when Redis cannot be reached, or holds no ChatOS data", async () => {
  const bad = await run("src/ops/presence.ts", ["--redis-url", "notaurl"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--redis-url: "notaurl" is not a URL/);
  const http = await run("src/ops/presence.ts", ["--redis-url", "http://127.0.0.1:1"]);
  assert.equal(http.code, 2);
  assert.match(http.stderr, /not a redis:\/\/ or rediss:\/\/ URL/);
  const port = freePort(); // nothing listens there
  const down = await run("src/ops/presence.ts", ["--redis-url", `redis://127.0.0.1:${port}`]);
  assert.equal(down.code, 1);
  assert.match(
    down.stderr,
    new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`),
  );
  // A Redis that answers, but is not the nodes' (or no node runs): said so, not empty tables.
  const redis = await startRedis();
  try {
    const empty = await run("src/ops/presence.ts", [], { REDIS_URL: redis.url });
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(
      empty.stdout,
      `redis ${redis.url}\n\nNo ChatOS data here: this Redis holds no keys at all.\n` +
        "Either no node runs against this Redis now, or the nodes use another one:\n" +
        "`deno task cluster` prints the line to export for its Redis (export REDIS_URL=...).\n",
    );
    await redisCli(redis.port, "SET", "other:app", "1");
    const other = await run("src/ops/presence.ts", ["--redis-url", redis.url]);
    assert.match(
      other.stdout,
      /^No ChatOS data here: its 1 key is not ChatOS's \(no chatos:\* key\)\.$/m,
    );
    assert.doesNotMatch(other.stdout, /NODES/);
  } finally {
    await redis.stop();
  }
});
