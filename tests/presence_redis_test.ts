/**
 * RedisPresence against a real redis-server started by this file (never the
 * one that may run on 6379): the shared contract, then what only a networked
 * store can get wrong: crashed nodes, Redis restarts and outages, a silent
 * pub/sub link, and the ops tool.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { PresenceUnavailable } from "../src/presence/presence.ts";
import { sleep } from "../src/lib/async.ts";
import { keys, pairTag } from "../src/presence/redis/schema.ts";
import { leaseCases } from "./helpers/lease_cases.ts";
import { encodeFrame } from "../src/presence/redis/envelope.ts";
import { channels } from "../src/presence/redis/schema.ts";
import { presenceContract } from "./contract/mod.ts";
import { RecordingInbox } from "./helpers/presence_node.ts";
import type { BreakableRedisNode } from "./helpers/redis_presence_probe.ts";
import { freePort, startRedis, type TestRedis } from "./helpers/redis_server.ts";
import {
  bytes,
  logLines,
  namedTests,
  node,
  rejectsUnavailable,
  uniq,
  until,
} from "./helpers/presence_testkit.ts";

let shared: TestRedis | null = null;
async function sharedRedis(): Promise<TestRedis> {
  return shared ??= await startRedis();
}

presenceContract({
  name: "redis",
  maxNodes: 3,
  async nodes(n) {
    const r = await sharedRedis();
    return await Promise.all(Array.from({ length: n }, () => node(r.url)));
  },
  async teardown() {
    await shared?.stop();
    shared = null;
  },
});

const test = namedTests("redis presence");

test("the schema is what docs/REDIS.md says", async () => {
  const r = await sharedRedis();
  const p = await node(r.url, { leaseMs: 3000 });
  const raw = new Redis(r.url, { lazyConnect: true });
  try {
    await raw.connect();
    const alice = uniq("alicé:");
    assert.equal(
      await p.login(alice, new RecordingInbox(), {
        keys: ["k1:" + alice, "k2"],
        client: "::/64",
      }),
      "ok",
    );
    assert.equal(await raw.get(`chatos:user:${alice}`), p.nodeId);
    assert.deepEqual(await raw.hgetall(keys.profile(alice)), {
      client: "::/64",
      k1: "k1:" + alice,
      k2: "k2",
    });
    assert.equal(await raw.get(keys.name("k1:" + alice)), alice);
    assert.equal(await raw.get(keys.name("k2")), alice);
    assert.deepEqual(await raw.smembers(`chatos:node:{${p.nodeId}}:users`), [alice]);
    assert.ok((await raw.smembers("chatos:nodes")).includes(p.nodeId));
    const lease = await raw.hgetall(`chatos:node:{${p.nodeId}}`);
    assert.equal(lease.bridge, p.bridge);
    assert.equal(lease.client, "127.0.0.1:1234");
    assert.ok(Math.abs(Number(lease.heartbeat) - Date.now()) < 5000, "heartbeat is ms epoch");
    assert.ok(Number(lease.started) <= Date.now());
    const ttl = await raw.pttl(`chatos:node:{${p.nodeId}}`);
    assert.ok(ttl > 0 && ttl <= 3000, `lease PTTL ${ttl}`);

    const k = { a: "ab", b: "c", password: -3 };
    assert.equal(keys.handshake(k), "chatos:hs:{2:ab1:c}-3");
    assert.equal(keys.pairHandshake(pairTag(k.a, k.b), String(k.password)), keys.handshake(k));
    await p.handshakes.open(k, 5000);
    const hs = await raw.hgetall(keys.handshake(k));
    assert.equal(hs.state, "asked");
    assert.equal(hs.password, "-3");
    assert.ok((await raw.pttl(keys.handshake(k))) > 0);
    assert.ok(await p.handshakes.cancel(k));

    await p.close();
    assert.equal(await raw.get(`chatos:user:${alice}`), null);
    assert.equal(
      await raw.exists(keys.profile(alice), keys.name("k1:" + alice), keys.name("k2")),
      0,
    );
    assert.equal(await raw.exists(`chatos:node:{${p.nodeId}}`), 0);
    assert.ok(!(await raw.smembers("chatos:nodes")).includes(p.nodeId));
  } finally {
    raw.disconnect();
    await p.close();
  }
});

test("a frame that overtakes the reserve's reply is not lost", async () => {
  const r = await sharedRedis();
  const p = await node(r.url);
  const raw = new Redis(r.url, { lazyConnect: true });
  try {
    await raw.connect();
    for (let i = 0; i < 20; i++) {
      const u = uniq("early");
      const inbox = new RecordingInbox();
      const origin = new TextEncoder().encode("sender");
      const payload = encodeFrame(origin, i, Date.now() + 60_000, u, bytes(2, i));
      // Published as soon as p listens for u, which may be before its login completes: the
      // frame then reaches a pseudo that is only pending on p; either way it must not be lost.
      const reserved = p.login(u, inbox);
      const channel = channels.user(p.nodeId, u);
      await until("p listens for u", 2000, async () => {
        const [, subscribers] = await raw.pubsub("NUMSUB", channel) as [string, number];
        return subscribers > 0;
      });
      assert.equal(await raw.publish(channel, payload), 1, "p's subscriber received it");
      assert.equal(await reserved, "ok");
      await inbox.waitFor(1);
      assert.deepEqual(inbox.frames, [bytes(2, i)]);
    }
  } finally {
    raw.disconnect();
    await p.close();
  }
});

test("a crashed node's users are free once its lease lapses", async () => {
  const r = await sharedRedis();
  const p = await node(r.url); // default lease: 3000 ms
  const q = await node(r.url);
  try {
    const alice = uniq("alice"), bob = uniq("bob");
    await p.login(alice, new RecordingInbox());
    await p.login(bob, new RecordingInbox());
    assert.equal(await q.send(bob, bytes(2)), true);
    const t0 = Date.now();
    p.crash();
    // Its subscriber is gone at once, so delivery fails before the lease lapses.
    await until(
      "send to a crashed node's user to fail",
      1000,
      async () => !(await q.send(bob, bytes(2))),
    );
    assert.equal(await q.login(alice, new RecordingInbox()), "taken", "lease still running");
    await until("the pseudo to be free", 5000, async () => {
      return (await q.login(alice, new RecordingInbox())) === "ok";
    });
    const took = Date.now() - t0;
    assert.ok(took < 5000, `took ${took} ms`);
    assert.equal(await q.send(bob, bytes(2)), false);
  } finally {
    await p.close();
    await q.close();
  }
});

test("a node restarted under a crashed node's id waits for the old lease, then starts clean", async () => {
  const r = await sharedRedis();
  const id = uniq("again");
  const p = await node(r.url, { nodeId: id, leaseMs: 1500, heartbeatMs: 300 });
  const q = await node(r.url);
  const raw = new Redis(r.url, { lazyConnect: true });
  let p2: BreakableRedisNode | null = null;
  try {
    await raw.connect();
    const alice = uniq("alice");
    await p.login(alice, new RecordingInbox());
    p.crash();
    const t0 = Date.now();
    const left = await raw.pttl(keys.lease(id));
    assert.ok(left > 0, `the crashed node's lease is still running (${left})`);
    p2 = await node(r.url, { nodeId: id, leaseMs: 1500, heartbeatMs: 300 });
    const took = Date.now() - t0;
    // Not before the old lease lapsed (it was not overwritten), and not much after.
    assert.ok(took >= left - 50, `started after ${took} ms, the old lease had ${left} ms left`);
    assert.ok(took < left + 2000, `started after ${took} ms, the old lease had ${left} ms left`);
    assert.ok(p2.ready);
    // The new process does not serve alice: what its predecessor left was dropped.
    assert.equal(await q.login(alice, new RecordingInbox()), "ok");
  } finally {
    raw.disconnect();
    await p.close();
    await p2?.close();
    await q.close();
  }
});

leaseCases(test, {
  where: async () => (await sharedRedis()).url,
  async raw() {
    const raw = new Redis((await sharedRedis()).url, { lazyConnect: true });
    await raw.connect();
    return raw;
  },
  holder: (_raw, id) => Promise.resolve(id),
  fenced: false,
  refuseWithinMs: 2000,
});

test("a dead node's sets are pruned by a live node, sparing keys another node holds", async () => {
  const r = await sharedRedis();
  const p = await node(r.url, { leaseMs: 600, heartbeatMs: 200 });
  const q = await node(r.url, { heartbeatMs: 100 });
  const raw = new Redis(r.url, { lazyConnect: true });
  try {
    await raw.connect();
    const names = [uniq("dead"), uniq("dead"), uniq("dead")];
    for (const u of names) assert.equal(await p.login(u, new RecordingInbox()), "ok");
    assert.equal(await raw.scard(keys.nodeUsers(p.nodeId)), 3);
    // The state after q took names[0] over: p's set still lists it, its key names q.
    const [taken, ...gone] = names;
    await raw.set(keys.user(taken), q.nodeId);
    await raw.sadd(keys.nodeUsers(q.nodeId), taken);
    p.crash();
    await until("the dead node's users set to be pruned", 8000, async () => {
      return (await raw.exists(keys.nodeUsers(p.nodeId))) === 0;
    });
    await until("the dead node's id to leave the nodes set", 8000, async () => {
      return !(await raw.smembers(keys.nodes)).includes(p.nodeId);
    });
    for (const u of gone) assert.equal(await raw.get(keys.user(u)), null, `${u}'s key pruned`);
    assert.equal(await raw.get(keys.user(taken)), q.nodeId, "a key another node holds is left");
    assert.ok((await raw.smembers(keys.nodes)).includes(q.nodeId), "the live node stays");
  } finally {
    raw.disconnect();
    await p.close();
    await q.close();
  }
});

test("after a Redis restart a node does not take back a pseudo a live node now holds", async () => {
  const r = await startRedis();
  const p = await node(r.url);
  const q = await node(r.url);
  const raw = new Redis(r.url, { lazyConnect: true, retryStrategy: () => 50 });
  raw.on("error", () => {}); // it reconnects across the restart
  try {
    const alice = uniq("alice"), carol = uniq("carol");
    const ia = new RecordingInbox(), ic = new RecordingInbox();
    await p.login(alice, ia);
    await p.login(carol, ic);
    p.stallHeartbeats(); // p re-asserts only when told to, after q took alice
    await r.restart();
    await until("q ready again", 5000, () => q.ready);
    assert.equal(await q.login(alice, new RecordingInbox()), "ok", "Redis came back empty");
    p.resumeHeartbeats();
    await ia.evicted();
    assert.deepEqual(ic.evictions, [], "only the pseudo q took is evicted");
    await until("p ready again", 5000, () => p.ready);
    await raw.connect();
    assert.equal(await raw.get(keys.user(alice)), q.nodeId, "held once, by q");
    assert.equal(await raw.get(keys.user(carol)), p.nodeId, "p's other pseudo is back");
  } finally {
    raw.disconnect();
    await p.close();
    await q.close();
    await r.stop();
  }
});

test("a handshake cancel that failed is tried again by the heartbeat once Redis is back", async () => {
  const r = await startRedis();
  const p = await node(r.url);
  const raw = new Redis(r.url, { lazyConnect: true, retryStrategy: () => 50 });
  raw.on("error", () => {}); // it reconnects across the restart
  try {
    const key = { a: uniq("a"), b: uniq("b"), password: 9 };
    p.stallHeartbeats(); // no retry before the handshake is back in Redis
    await r.stop();
    await rejectsUnavailable(p.handshakes.cancel(key), 2000, "cancel with Redis down");
    await r.start();
    await raw.connect();
    // As if it had outlived the outage (a replica promoted with it, say): only a retry drops it.
    await raw.hset(keys.handshake(key), "a", key.a, "b", key.b, "state", "asked");
    await raw.sadd(keys.pairIndex(key.a, key.b), String(key.password));
    p.resumeHeartbeats();
    await until("the failed cancel done by a heartbeat", 3000, async () => {
      return await raw.exists(keys.handshake(key), keys.pairIndex(key.a, key.b)) === 0;
    });
  } finally {
    raw.disconnect();
    await p.close();
    await r.stop();
  }
});

test("a Redis restart: nodes recover, reservations are re-asserted, sends work", async () => {
  const r = await startRedis();
  const p = await node(r.url);
  const q = await node(r.url);
  try {
    const alice = uniq("alice"), bob = uniq("bob"), aliceKey = uniq("k-alice");
    const ia = new RecordingInbox(), ib = new RecordingInbox();
    assert.equal(await p.login(alice, ia, { keys: [aliceKey], client: "10.0.0.1" }), "ok");
    assert.equal(await q.login(bob, ib), "ok");
    assert.ok(p.ready && q.ready);
    const before = p.stats.reconnects;
    const t0 = Date.now();
    await r.restart();
    await until("both nodes ready again", 5000, () => p.ready && q.ready);
    const took = Date.now() - t0;
    assert.ok(took < 5000, `recovered in ${took} ms`);
    assert.ok(p.stats.reconnects > before);
    // Redis came back empty; the nodes wrote their reservations again.
    assert.equal(await q.login(alice, new RecordingInbox()), "taken");
    assert.equal(await p.login(bob, new RecordingInbox()), "taken");
    // ...with their name keys and client keys: a lookalike is still refused.
    const lookalike = { keys: [aliceKey], client: "10.0.0.9" };
    assert.equal(await q.login(uniq("Alice"), new RecordingInbox(), lookalike), "taken");
    assert.equal(await q.clientOf(alice), "10.0.0.1");
    assert.equal(await q.send(alice, bytes(2, 1)), true);
    assert.equal(await p.send(bob, bytes(2, 2)), true);
    await ia.waitFor(1);
    await ib.waitFor(1);
    assert.deepEqual(ia.frames, [bytes(2, 1)]);
    assert.deepEqual(ib.frames, [bytes(2, 2)]);
  } finally {
    await p.close();
    await q.close();
    await r.stop();
  }
});

test("Redis down: calls reject with PresenceUnavailable quickly, and recover", async () => {
  const r = await startRedis();
  const p = await node(r.url);
  const q = await node(r.url);
  try {
    const local = uniq("local"), remote = uniq("remote");
    const il = new RecordingInbox();
    await p.login(local, il);
    await q.login(remote, new RecordingInbox());
    await r.stop();
    await until("not ready", 2000, () => !p.ready);
    await rejectsUnavailable(p.login(uniq("x"), new RecordingInbox()), 2000, "reserve");
    await rejectsUnavailable(Promise.resolve(p.send(remote, bytes(2))), 2000, "send");
    await rejectsUnavailable(
      p.handshakes.open({ a: local, b: remote, password: 1 }, 1000),
      2000,
      "hs",
    );
    await rejectsUnavailable(p.handshakes.strikePair(local, remote, 3), 2000, "strikePair");
    await rejectsUnavailable(p.clientOf(remote), 2000, "clientOf");
    await rejectsUnavailable(p.broadcast(bytes(3), remote), 2000, "broadcast");
    assert.equal(il.frames.length, 1, "the local part of a broadcast still happened");
    assert.equal(await p.send(local, bytes(2)), true, "local delivery needs no Redis");

    // A stalled Redis (sockets open, no answers) is bounded by the command timeout.
    await r.start();
    await until("ready again", 5000, () => p.ready && q.ready);
    const stalled = uniq("stalled");
    r.pause();
    try {
      await rejectsUnavailable(p.login(stalled, new RecordingInbox()), 2000, "reserve (stalled)");
      await rejectsUnavailable(Promise.resolve(p.send(remote, bytes(2))), 2000, "send (stalled)");
    } finally {
      r.resume();
    }
    // The timed-out reserve ran once Redis woke up; it was undone right behind it.
    await until("the stalled reserve to be undone", 3000, async () => {
      return (await q.login(stalled, new RecordingInbox())) === "ok";
    });
    await until("ready again", 5000, () => p.ready && q.ready);
    assert.equal(await p.send(remote, bytes(2)), true);
  } finally {
    await p.close();
    await q.close();
    await r.stop();
  }
});

test("the liveness probe revives a silently dead subscription", async () => {
  const r = await sharedRedis();
  const p = await node(r.url);
  const q = await node(r.url, { probeIntervalMs: 200, probeTimeoutMs: 800 });
  try {
    const bob = uniq("bob");
    const ib = new RecordingInbox();
    await q.login(bob, ib);
    await q.dropSubscriptions();
    assert.equal(await p.send(bob, bytes(2)), false, "nobody listens on q's channel");
    await until("q to notice", 3000, () => !q.ready);
    await until("q to resubscribe", 5000, () => q.ready);
    assert.ok(logLines.some((l) => l.includes("reconnecting the subscriber")));
    assert.equal(await p.send(bob, bytes(2, 5)), true);
    await ib.waitFor(1);
    assert.ok(q.stats.lastRttMs >= 0 && q.stats.receives >= 1);
  } finally {
    await p.close();
    await q.close();
  }
});

test("start-up fails fast when Redis is unreachable or the node id is in use", async () => {
  const r = await sharedRedis();
  const t0 = Date.now();
  await assert.rejects(
    node(`redis://127.0.0.1:${freePort()}`, { connectTimeoutMs: 500 }),
    PresenceUnavailable,
  );
  assert.ok(Date.now() - t0 < 2000);
  const p = await node(r.url);
  try {
    await assert.rejects(
      node(r.url, { nodeId: p.nodeId, connectTimeoutMs: 500, leaseMs: 300 }),
      PresenceUnavailable,
    );
    assert.ok(p.ready, "the first holder is untouched");
  } finally {
    await p.close();
  }
  await assert.rejects(node(r.url, { nodeId: "bad:id" }), TypeError);
});

test("ops tool lists nodes, users and handshakes", async () => {
  const r = await sharedRedis();
  const p = await node(r.url, { clientAddress: "127.0.0.1:4242" });
  try {
    const alice = uniq("opsalice");
    await p.login(alice, new RecordingInbox());
    await p.handshakes.open({ a: alice, b: "opsbob", password: 77 }, 10_000);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "src/ops/presence.ts", "--redis-url", r.url],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(text.includes(p.nodeId), text);
    assert.ok(text.includes(p.bridge), text);
    assert.ok(text.includes("127.0.0.1:4242"), text);
    assert.match(text, new RegExp(`${alice}\\s+${p.nodeId}`));
    assert.match(text, /opsbob/);

    const help = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "src/ops/presence.ts", "--help"],
      stdout: "piped",
    }).output();
    assert.equal(help.code, 0);
    assert.match(new TextDecoder().decode(help.stdout), /--redis-url/);
  } finally {
    await p.close();
  }
});

// Runs last: the shared server must not outlive the run (the helper also kills it on unload).
test("stop the shared redis-server", async () => {
  await shared?.stop();
  shared = null;
});

test("a node of another release is refused, said once in the log, never sent frames", async () => {
  const r = await sharedRedis();
  const raw = new Redis(r.url, { lazyConnect: true });
  const p = await node(r.url, { heartbeatMs: 100 });
  const old = uniq("old"), carol = uniq("carol");
  try {
    await raw.connect();
    // What a node of the previous release leaves in Redis: a lease without `proto`, a user on it.
    await raw.hset(keys.lease(old), {
      instance: "x",
      fence: "f",
      users: "1",
      bridge: "",
      client: "",
    });
    await raw.pexpire(keys.lease(old), 60_000);
    await raw.sadd(keys.nodes, old);
    await raw.set(keys.user(carol), old);
    await until(
      "p to read the old node's lease",
      3000,
      () => logLines.some((l) => l.includes("a node of another release") && l.includes(old)),
    );
    await rejectsUnavailable(p.send(carol, bytes(2, 1)), 2000, "a send to its user");
    assert.equal(p.relay.remoteUsers, 0, "its users are not counted as reachable");
    await sleep(300); // a few more heartbeats: still one line for it
    assert.equal(
      logLines.filter((l) => l.includes("another release") && l.includes(old)).length,
      1,
    );
  } finally {
    await raw.del(keys.lease(old), keys.user(carol));
    await raw.srem(keys.nodes, old);
    raw.disconnect();
    await p.close();
  }
});
