/** Where Redis is, from the flags (src/presence/redis/target.ts), and the server's config check. */
import assert from "node:assert/strict";
import { parseHostPorts, redisTarget } from "../src/presence/redis/target.ts";
import { ConfigError, parseConfig } from "../src/server/config.ts";

const none = {
  redisUrl: "redis://x:1",
  redisSentinels: "",
  redisSentinelName: "",
  redisCluster: "",
};

Deno.test("redis target: host:port lists, IPv6 in brackets; anything else is an error message", () => {
  assert.deepEqual(parseHostPorts("127.0.0.1:7001, redis-2:7002,[::1]:7003"), [
    { host: "127.0.0.1", port: 7001 },
    { host: "redis-2", port: 7002 },
    { host: "::1", port: 7003 },
  ]);
  for (const bad of ["", "host", "host:", ":1", "h:0", "h:65536", "h:1,", "a b:1", "::1:7000"]) {
    assert.equal(typeof parseHostPorts(bad), "string", JSON.stringify(bad));
  }
});

Deno.test("redis target: one mode from the flags", () => {
  assert.deepEqual(redisTarget(none), { mode: "single", url: "redis://x:1" });
  assert.deepEqual(redisTarget({ ...none, redisCluster: "a:1,b:2" }), {
    mode: "cluster",
    seeds: [{ host: "a", port: 1 }, { host: "b", port: 2 }],
  });
  assert.deepEqual(redisTarget({ ...none, redisSentinels: "s:26379", redisSentinelName: "m" }), {
    mode: "sentinel",
    sentinels: [{ host: "s", port: 26379 }],
    name: "m",
  });
  assert.match(redisTarget({ ...none, redisSentinels: "s:1" }) as string, /sentinel-name/);
  assert.match(
    redisTarget({
      ...none,
      redisSentinels: "s:1",
      redisSentinelName: "m",
      redisCluster: "c:1",
    }) as string,
    /exclude/,
  );
  assert.match(redisTarget({ ...none, redisCluster: "c" }) as string, /--redis-cluster/);
});

Deno.test("redis target: the server refuses bad Redis flags before listening", () => {
  const secret = ["--presence", "redis", "--cluster-secret", "0123456789abcdef".repeat(2)];
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.throws(() => parseConfig([...secret, "--redis-cluster", "nope"], env({})), ConfigError);
  assert.throws(
    () => parseConfig(secret, env({ CHATOS_REDIS_SENTINELS: "127.0.0.1:26379" })),
    /sentinel-name/,
  );
  const r = parseConfig(secret, env({ CHATOS_REDIS_CLUSTER: "127.0.0.1:7001" }));
  assert.ok(!r.help && r.config.redisCluster === "127.0.0.1:7001");
  // In memory mode the Redis flags are not looked at.
  assert.doesNotThrow(() => parseConfig(["--redis-cluster", "nope"], env({})));
});
