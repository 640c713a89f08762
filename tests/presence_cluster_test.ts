/**
 * RedisPresence on a Redis Cluster (3 primaries, 3 replicas) started by this
 * file: the shared contract, the schema's slot layout, readiness per primary,
 * then failovers (manual, and kill -9 of a primary) while nodes hold pseudos.
 */
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import {
  parseHostPorts,
  type RedisPresenceSettings,
  type RedisTarget,
} from "../src/presence/redis.ts";
import { holderNode, holderValue, keys, pairTag } from "../src/presence/redis/schema.ts";
import { leaseCases } from "./helpers/lease_cases.ts";
import { RecordingInbox } from "./helpers/presence_node.ts";
import { assertServesAfterFailover } from "./helpers/failover_checks.ts";
import { redisCli, type RedisClusterSet, startRedisCluster } from "./helpers/redis_server.ts";
import type { RedisMember } from "../src/ops/redis_topologies.ts";
import type { BreakableRedisNode } from "./helpers/redis_presence_probe.ts";
import {
  bytes,
  contractOver,
  log,
  logLines,
  namedTests,
  node,
  rejectsUnavailable,
  uniq,
  until,
} from "./helpers/presence_testkit.ts";
import { sleep } from "../src/lib/async.ts";

let shared: Promise<RedisClusterSet> | null = null;
const clusterSet = () => shared ??= startRedisCluster();

async function target(): Promise<RedisTarget> {
  const seeds = parseHostPorts((await clusterSet()).seeds);
  if (typeof seeds === "string") throw new Error(seeds);
  return { mode: "cluster", seeds };
}

contractOver("redis cluster", target);

const test = namedTests("cluster presence");

test("the keys of each atomic step share a slot", async () => {
  const set = await clusterSet();
  const port = set.servers[0].port;
  const slot = async (k: string) => Number(await redisCli(port, "CLUSTER", "KEYSLOT", k));
  for (const id of ["n1", "node-2.x"]) {
    const s = await slot(keys.lease(id));
    assert.equal(await slot(keys.nodeUsers(id)), s);
    assert.equal(await slot(`chatos:to:{${id}}`), s, "the channel is in the lease's slot");
  }
  for (const [a, b] of [["alice", "bob"], ["a}b", "c"], ["x{", "}y"]]) {
    const k = { a, b, password: 7 };
    const s = await slot(keys.pairIndex(a, b));
    assert.equal(await slot(keys.handshake(k)), s, `${a}/${b}`);
    assert.equal(await slot(keys.pairHandshake(pairTag(a, b), "123")), s, "as a script names it");
  }
});

test("a user key names its node and the lease's fence", async () => {
  const t = await target();
  const p = await node(t);
  const raw = await rawCluster();
  try {
    const u = uniq("fenced");
    assert.equal(await p.login(u, new RecordingInbox()), "ok");
    const fence = await raw.hget(keys.lease(p.nodeId), "fence");
    assert.ok(fence, "the lease has a fence");
    assert.equal(await raw.get(keys.user(u)), `${p.nodeId}|${fence}`);
  } finally {
    raw.disconnect();
    await p.close();
  }
});

test("deno task presence reads a Redis Cluster (every primary)", async () => {
  const set = await clusterSet();
  const p = await node(await target(), { clientAddress: "127.0.0.1:4343" });
  try {
    const names = [uniq("opsa"), uniq("opsb"), uniq("opsc"), uniq("opsd")];
    for (const u of names) await p.login(u, new RecordingInbox());
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "--allow-net", "--allow-env", "src/ops/presence.ts"],
        ...["--redis-cluster", set.seeds],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(text.includes("127.0.0.1:4343"), text);
    // Keys spread over the primaries; every one is listed, with its node (not node|fence).
    for (const u of names) assert.match(text, new RegExp(`${u}\\s+${p.nodeId}\\s*$`, "m"));
  } finally {
    await p.close();
  }
});

/** A raw client on the shared cluster, for looking at keys. */
async function rawCluster(): Promise<Cluster> {
  const raw = new Cluster(parseHostPorts((await clusterSet()).seeds) as never, {
    lazyConnect: true,
  });
  await raw.connect();
  return raw;
}

test("a release slow on its node lets no other node take the pseudo before it is done", async () => {
  const t = await target();
  const p = await node(t), q = await node(t);
  const cmd = p.parts.conns.cmd;
  const del = cmd.del;
  try {
    const u = uniq("slow"), k = uniq("slowk");
    const first = new RecordingInbox(), next = new RecordingInbox();
    assert.equal(await p.login(u, first, { keys: [k], client: "p" }), "ok");
    // p's event loop stalls before its profile DEL leaves (as under load): 300 ms.
    cmd.del = ((...args: Parameters<typeof del>) =>
      sleep(300).then(() =>
        del.apply(cmd, args)
      )) as typeof del;
    const released = p.logout(u, first);
    const deadline = Date.now() + 5000;
    while (await q.login(u, next, { keys: [k], client: "q" }) !== "ok") {
      assert.ok(Date.now() < deadline, "the pseudo is free within 5 s of its logout");
    }
    await released;
    // q's reservation is whole: its profile (client key) and its name key.
    assert.equal(await p.directory.clientOf(u), "q", "q's profile survived p's release");
    assert.equal(
      await p.login(uniq("look"), new RecordingInbox(), { keys: [k], client: "x" }),
      "taken",
    );
    await q.logout(u, next);
    const raw = await rawCluster();
    try {
      assert.deepEqual(
        await Promise.all([keys.user(u), keys.profile(u), keys.name(k)].map((x) => raw.exists(x))),
        [0, 0, 0],
        "nothing of it is left once q let go",
      );
    } finally {
      raw.disconnect();
    }
  } finally {
    cmd.del = del;
    await p.close();
    await q.close();
  }
});

test("a release cut short at any step is finished by running it again (as the heartbeat does)", async () => {
  const p = await node(await target());
  const raw = await rawCluster();
  try {
    const left = async (u: string, ks: string[]) => {
      const found = [keys.user(u), keys.profile(u), ...ks.map(keys.name)];
      const exist = await Promise.all(found.map((k) => raw.exists(k)));
      const listed = (await raw.smembers(keys.nodeUsers(p.nodeId))).includes(u);
      return [...found.filter((_, i) => exist[i]), ...(listed ? ["users set entry"] : [])];
    };
    // What a release leaves at each point it can stop: the user key goes last, the profile
    // (the list of name keys) just before it, so a second run finds what is left.
    const cuts: Record<string, (u: string, ks: string[]) => Promise<unknown>> = {
      "before any step": () => Promise.resolve(),
      "after the name keys": (_, ks) => Promise.all(ks.map((k) => raw.del(keys.name(k)))),
      "after the profile": async (u, ks) => {
        await Promise.all(ks.map((k) => raw.del(keys.name(k))));
        await raw.del(keys.profile(u));
      },
    };
    for (const [cut, leave] of Object.entries(cuts)) {
      const u = uniq("cut"), ks = [uniq("ck1"), uniq("ck2")];
      assert.equal(await p.login(u, new RecordingInbox(), { keys: ks, client: "c" }), "ok");
      await leave(u, ks);
      await p.parts.topology.release([u]);
      assert.deepEqual(await left(u, ks), [], `cut ${cut}: nothing left`);
    }
  } finally {
    raw.disconnect();
    await p.close();
  }
});

leaseCases(test, {
  where: target,
  raw: rawCluster,
  holder: async (raw, id) => holderValue(id, (await raw.hget(keys.lease(id), "fence"))!),
  fenced: true,
  refuseWithinMs: 3000,
});

test("a dead holder's pseudo is taken over exactly once by racing nodes", async () => {
  const t = await target();
  const p = await node(t, { leaseMs: 600, heartbeatMs: 200 });
  const [q, r] = await Promise.all([node(t), node(t)]);
  const raw = await rawCluster();
  try {
    const alice = uniq("alice");
    await p.login(alice, new RecordingInbox());
    p.crash();
    await until("the dead node's lease to lapse", 5000, async () => {
      return (await raw.exists(keys.lease(p.nodeId))) === 0;
    });
    // Both read the dead holder's value and both try to replace it: one compare-and-set wins.
    const results = await Promise.all([
      q.login(alice, new RecordingInbox()),
      r.login(alice, new RecordingInbox()),
    ]);
    assert.deepEqual(results.toSorted(), ["ok", "taken"]);
  } finally {
    raw.disconnect();
    await Promise.all([p.close(), q.close(), r.close()]);
  }
});

test("a value naming a live node that does not hold the user is unreachable", async () => {
  const t = await target();
  const [p, q] = await Promise.all([node(t), node(t)]);
  const raw = await rawCluster();
  try {
    const ghost = uniq("ghost");
    await raw.set(keys.user(ghost), `${p.nodeId}|not-the-fence`);
    assert.equal(await q.send(ghost, bytes(2, 1)), false, "p answers: not here");
    assert.equal(q.stats.routeStale, 1, "q dropped the route it had looked up");
  } finally {
    raw.disconnect();
    await Promise.all([p.close(), q.close()]);
  }
});

test("a node whose publish socket to one primary is closed is not ready until it is back", async () => {
  const t = await target();
  const [p, q] = await Promise.all([node(t), node(t)]);
  try {
    const bob = uniq("bob");
    const ib = new RecordingInbox();
    assert.equal(await q.login(bob, ib), "ok");
    assert.ok(p.ready);
    p.dropPrimarySocket();
    // ioredis still calls the cluster client ready, but what goes to that primary would fail.
    await until("p not ready", 2000, () => !p.ready);
    await until("p ready again (the heartbeat reopens it)", 5000, () => p.ready);
    await p.broadcast(bytes(3, 1), "");
    assert.equal(await p.send(bob, bytes(2, 1)), true);
    await ib.waitFor(2);
  } finally {
    await Promise.all([p.close(), q.close()]);
  }
});

/** From a failover to every node ready again: detection (node timeout 1 s), vote, resync. */
const FAILOVER_BOUND_MS = 15_000;

/** A fresh name for which `holds` is true. */
async function nameWhere(base: string, holds: (name: string) => Promise<boolean>) {
  for (;;) {
    const name = uniq(base);
    if (await holds(name)) return name;
  }
}

/**
 * Three nodes placed for the worst case of `primary`'s shard failing over, for the first publish
 * after ready: p's and q's channels live on that shard, so a broadcast from r sends two scripts
 * there in one auto-pipelined batch (which ioredis does not redirect when the replies differ:
 * MOVED for two slots); r's channel lives elsewhere, and r has had a socket to that primary.
 */
async function nodesAround(
  set: RedisClusterSet,
  primary: RedisMember,
  extra: Partial<RedisPresenceSettings> = {},
): Promise<BreakableRedisNode[]> {
  const t = await target();
  const there = async (key: string) => (await set.primaryFor(key)) === primary;
  const ids = [
    await nameWhere("n", (id) => there(keys.lease(id))),
    await nameWhere("n", (id) => there(keys.lease(id))),
    await nameWhere("n", async (id) => !(await there(keys.lease(id)))),
  ];
  const nodes = await Promise.all(ids.map((nodeId) => node(t, { nodeId, ...extra })));
  // A lookup of a key on that shard: r's socket to it is open, whatever r does on its own.
  const nobody = await nameWhere("nobody", (u) => there(keys.user(u)));
  assert.equal(await nodes[2].send(nobody, bytes(2, 0)), false);
  return nodes;
}

/** Each node learns of a failover from the cluster's epoch, at its next heartbeat. */
function noticedFailover(nodes: readonly BreakableRedisNode[]): boolean {
  return nodes.every((n) =>
    logLines.some((l) => l.includes("failed over") && l.includes(`"${n.nodeId}"`))
  );
}

test("after a failover (the epoch grows) nodes write their reservations again and publish", async () => {
  const set = await clusterSet();
  const alice = uniq("alice"), bob = uniq("bob");
  const shard = (await set.primaryFor(keys.user(alice)))!;
  const nodes = await nodesAround(set, shard, { heartbeatMs: 200 });
  const [p, q, r] = nodes;
  const raw = await rawCluster();
  try {
    const ia = new RecordingInbox(), ib = new RecordingInbox();
    assert.equal(await p.login(alice, ia), "ok");
    assert.equal(await q.login(bob, ib), "ok");
    // As if the promoted replica had missed this write.
    await raw.del(keys.user(alice));
    // The old primary stays up, a replica now: no socket closes to tell the nodes. (It pauses
    // writes meanwhile, for seconds here: p's lease may lapse and come back with a new fence.)
    await set.manualFailover(shard);
    await until("alice written again", FAILOVER_BOUND_MS, async () => {
      const v = await raw.get(keys.user(alice));
      return v !== null && holderNode(v) === p.nodeId;
    });
    await until(
      "every node to notice the failover",
      FAILOVER_BOUND_MS,
      () => noticedFailover(nodes),
    );
    await until("every node ready again", FAILOVER_BOUND_MS, () => nodes.every((n) => n.ready));
    await assertServesAfterFailover([p, q, r], alice, bob, ia, ib);
  } finally {
    raw.disconnect();
    for (const n of nodes) await n.close();
  }
});

test("kill -9 of a primary: fail fast, a replica takes over, pseudos held once, relay works", async () => {
  const set = await clusterSet();
  const alice = uniq("alice"), bob = uniq("bob");
  // The primary of alice's key: the worst case for her reservation.
  const victim = (await set.primaryFor(keys.user(alice)))!;
  const nodes = await nodesAround(set, victim);
  const [p, q, r] = nodes;
  try {
    const ia = new RecordingInbox(), ib = new RecordingInbox();
    assert.equal(await p.login(alice, ia), "ok");
    assert.equal(await q.login(bob, ib), "ok");
    const t0 = Date.now();
    await victim.kill();
    await rejectsUnavailable(
      r.login(alice, new RecordingInbox()),
      5000,
      "reserve on a dead slot",
    );
    await until("a replica to take over", FAILOVER_BOUND_MS, async () => {
      const now = await set.primaryFor(keys.user(alice));
      return now !== null && now !== victim;
    });
    await until(
      "every node to notice the failover",
      FAILOVER_BOUND_MS,
      () => noticedFailover(nodes),
    );
    await until("every node ready again", FAILOVER_BOUND_MS, () => nodes.every((n) => n.ready));
    const took = Date.now() - t0;
    assert.ok(took < FAILOVER_BOUND_MS, `recovered in ${took} ms`);
    log("info", "cluster failover: every node ready again", { tookMs: took });
    // Demands delivery at once: ready means the publish connection reaches every primary.
    await assertServesAfterFailover([p, q, r], alice, bob, ia, ib);
  } finally {
    for (const n of nodes) await n.close();
  }
});

// Runs last: the shared servers must not outlive the run (they are also killed on unload).
test("stop the redis cluster", async () => {
  await (await shared)?.stop();
  shared = null;
});
