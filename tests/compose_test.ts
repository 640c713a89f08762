/**
 * docker-compose.yml cannot be started here (no Docker engine), so it is
 * checked the way `docker-compose config` sees it, and its HAProxy file with
 * `haproxy -c`. The same topology runs as processes in tests/cluster_test.ts.
 */
import assert from "node:assert/strict";
import { NODE_V8_FLAGS, nodeRunArgs } from "../src/ops/node_command.ts";

/** A secret as an operator would make one (`openssl rand -hex 32`). */
const SECRET = "9f".repeat(32);

/** Runs `cmd` with only PATH and `env`: no CHATOS_CLUSTER_SECRET from whoever runs the tests. */
const run = async (cmd: string, args: string[], env: Record<string, string> = {}) => {
  const out = await new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
};

Deno.test("compose: docker-compose config accepts the file; redis, 3 nodes and haproxy on 7777", async () => {
  const r = await run("docker-compose", ["-f", "docker-compose.yml", "config"], {
    CHATOS_CLUSTER_SECRET: SECRET,
  });
  assert.equal(r.code, 0, r.stderr);
  const cfg = r.stdout;
  for (const s of ["redis:", "node1:", "node2:", "node3:", "haproxy:"]) {
    assert.match(cfg, new RegExp(`^  ${s}`, "m"), s);
  }
  assert.match(cfg, /published: 7777/);
  for (const n of ["node1", "node2", "node3"]) {
    assert.match(cfg, new RegExp(`CHATOS_NODE_ID: ${n}`));
    assert.match(cfg, new RegExp(`CHATOS_ADVERTISE_HOST: ${n}`));
  }
  assert.match(cfg, /CHATOS_PRESENCE: redis/);
  assert.match(cfg, /REDIS_URL: redis:\/\/redis:6379/);
  assert.equal(cfg.split(`CHATOS_CLUSTER_SECRET: ${SECRET}`).length - 1, 3, "the secret given");
  // The nodes take PROXY headers from HAProxy's pinned address only.
  assert.match(cfg, /CHATOS_PROXY_PROTOCOL: "true"|CHATOS_PROXY_PROTOCOL: 'true'/);
  assert.match(cfg, /CHATOS_PROXY_TRUSTED: 172\.28\.0\.10\/32/);
  assert.match(cfg, /ipv4_address: 172\.28\.0\.10/);
  // the grace period must outlast the drain deadline, or SIGKILL cuts the drain
  const drainMs = Number(cfg.match(/CHATOS_DRAIN_TIMEOUT_MS: '(\d+)'/)![1]);
  const graceS = Number(cfg.match(/stop_grace_period: (\d+)s/)![1]);
  assert.ok(graceS * 1000 > drainMs, `grace ${graceS}s vs drain ${drainMs}ms`);
});

Deno.test("compose: the HAProxy config is valid and health-checks /readyz on the admin port", async () => {
  const r = await run("haproxy", ["-c", "-f", "deploy/haproxy.cfg"]);
  assert.equal(r.code, 0, r.stderr);
  const text = await Deno.readTextFile("deploy/haproxy.cfg");
  assert.match(text, /mode tcp/);
  assert.match(text, /option httpchk GET \/readyz/);
  assert.match(text, /check port 9090/);
  assert.match(text, /default-server send-proxy-v2 /);
  assert.match(text, /timeout tunnel 7d/);
  const compose = await Deno.readTextFile("docker-compose.yml");
  assert.match(compose, /CHATOS_ADMIN_PORT: "9090"/);
});

Deno.test("compose: the Dockerfile uses the official Deno image and runs the server", async () => {
  const text = await Deno.readTextFile("Dockerfile");
  assert.match(text, /^FROM denoland\/deno:/m);
  // Exactly as every other launcher runs a node (src/ops/node_command.ts).
  const entry = ["deno", ...nodeRunArgs("src/server/main.ts")];
  assert.match(
    text,
    new RegExp(`^ENTRYPOINT ${escape(JSON.stringify(entry).replaceAll(",", ", "))}$`, "m"),
  );
});

Deno.test("compose: deno task serve runs a node as every other launcher does", async () => {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  assert.equal(config.tasks.serve, ["deno", ...nodeRunArgs("src/server/main.ts")].join(" "));
  assert.ok(nodeRunArgs("x").includes(`--v8-flags=${NODE_V8_FLAGS}`));
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("compose: the Redis Cluster file: 6 cluster-mode servers, joined once, nodes on their seeds", async () => {
  const r = await run("docker-compose", ["-f", "docker-compose.redis-cluster.yml", "config"], {
    CHATOS_CLUSTER_SECRET: SECRET,
  });
  assert.equal(r.code, 0, r.stderr);
  const cfg = r.stdout;
  for (let i = 1; i <= 6; i++) assert.match(cfg, new RegExp(`^  redis-${i}:`, "m"));
  assert.equal(cfg.match(/--cluster-enabled yes/g)?.length, 6);
  assert.match(cfg, /redis-cli --cluster\s+create/);
  assert.match(cfg, /--cluster-replicas 1/);
  const seeds = "redis-1:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379,redis-6:6379";
  assert.equal(cfg.split(`CHATOS_REDIS_CLUSTER: ${seeds}`).length - 1, 3, "all three nodes");
  assert.doesNotMatch(cfg, /REDIS_URL/, "no single Redis");
  assert.equal(cfg.match(/condition: service_completed_successfully/g)?.length, 3);
  assert.match(cfg, /published: 7777/);
});

Deno.test("compose: without CHATOS_CLUSTER_SECRET both files refuse to start, saying how to set it", async () => {
  for (const file of ["docker-compose.yml", "docker-compose.redis-cluster.yml"]) {
    const r = await run("docker-compose", ["-f", file, "config"]);
    assert.equal(r.code, 1, `${file}: ${r.stdout}`);
    assert.match(
      r.stderr,
      /CHATOS_CLUSTER_SECRET is not set: give every node the same random secret of at least 32 bytes, e\.g\. CHATOS_CLUSTER_SECRET=`openssl rand -hex 32` docker-compose up --build/,
      file,
    );
    assert.doesNotMatch(r.stdout + r.stderr, /change-me/, `${file}: no placeholder secret`);
  }
});

Deno.test("README: the first step, deno install, fetches what deno.lock lists, as it says", async () => {
  const lock = JSON.parse(await Deno.readTextFile("deno.lock"));
  const packages = Object.keys(lock.npm);
  const readme = await Deno.readTextFile("README.md");
  const said = /^deno install +# first, once: the (\d+) npm packages deno\.lock lists/m.exec(
    readme,
  );
  assert.ok(said, "the README's first command is deno install, saying how many packages");
  assert.equal(Number(said[1]), packages.length);
  // The summary deno install ends with names the versions deno.lock pins.
  for (const [spec, version] of Object.entries(lock.specifiers as Record<string, string>)) {
    const name = spec.replace(/^npm:/, "").replace(/@[^@]*$/, "");
    assert.match(readme, new RegExp(`\\+ npm:${name} ${version.replaceAll(".", "\\.")}`), spec);
  }
  const direct = Object.keys(lock.specifiers).length;
  assert.match(readme, new RegExp(`\\(with its ${packages.length - direct} dependencies\\)`));
});
