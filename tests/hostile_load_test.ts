/**
 * Issue 9: no client can lock others out. Real sockets on one in-process
 * node; the attacker and the legitimate users come from distinct loopback
 * source addresses.
 */
import assert from "node:assert/strict";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { PrivateEnd } from "../src/client/client.ts";
import { eventually, withServer } from "./helpers/harness.ts";
import { RawConn } from "./helpers/from_address.ts";
import { pendingAsk } from "./helpers/link.ts";
import { MemoryPresence } from "../src/presence/memory.ts";
import { startServer } from "../src/server/server.ts";

const ATTACKER = "127.0.0.2";
const USER = "127.0.0.3";

/** Logs in `n` users from USER one after another; how many got ERROR 1. */
async function legitLogins(port: number, n: number, prefix: string, keep: RawConn[]) {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const c = await RawConn.open(port, USER).catch(() => null);
    if (!c) continue;
    keep.push(c);
    if (await c.login(`${prefix}${i}`).catch(() => null) === ErrorCode.OK) ok++;
  }
  return ok;
}

Deno.test("never-logged-in connections from one address cannot keep another out", async () => {
  await withServer({ maxConnections: 60 }, async (h) => {
    const held: RawConn[] = [];
    let attacking = true;
    // The attacker fills the node and reopens whatever the node closes.
    const attacker = async () => {
      while (attacking) {
        const c = await RawConn.open(h.port, ATTACKER).catch(() => null);
        if (!c) continue;
        held.push(c);
        if (held.filter((x) => !x.socket.destroyed).length >= 80) {
          await Promise.race([...held.map((x) => x.closed), new Promise((r) => setTimeout(r, 50))]);
        }
      }
    };
    const running = attacker();
    await eventually(() => h.server.connections >= 60, 5000, "the node full");
    const mine: RawConn[] = [];
    const ok = await legitLogins(h.port, 40, "user", mine);
    attacking = false;
    await running;
    assert.ok(ok >= 38, `${ok} of 40 logins succeeded`);
    assert.ok(h.server.context.metrics.evictions >= 38, "room was made by evicting idle ones");
    for (const c of [...held, ...mine]) c.close();
  });
});

Deno.test("idle logged-in sessions from one address cannot keep another out", async () => {
  await withServer({ maxConnections: 120, maxSessionsPerAddress: 50 }, async (h) => {
    const held: RawConn[] = [];
    let attackerIn = 0;
    for (let i = 0; i < 100; i++) {
      const c = await RawConn.open(h.port, ATTACKER).catch(() => null);
      if (!c) continue;
      held.push(c);
      if (await c.login(`idle${i}`).catch(() => null) === ErrorCode.OK) attackerIn++;
    }
    assert.equal(attackerIn, 50, "the address's sessions stop at its cap");
    assert.equal(h.server.context.metrics.refused.sessions_per_address, 50);
    const mine: RawConn[] = [];
    const ok = await legitLogins(h.port, 40, "user", mine);
    assert.ok(ok >= 38, `${ok} of 40 logins succeeded`);
    for (const c of [...held, ...mine]) c.close();
  });
});

Deno.test("a parked-end flood stays under the per-user cap", async () => {
  await withServer({ maxLinksPerUser: 4 }, async (h) => {
    const alice = await h.login("alice");
    const bob = await h.login("bob");
    const ends: PrivateEnd[] = [];
    for (let p = 1; p <= 20; p++) {
      const key = { sender: "alice", recipient: "bob", password: p };
      await pendingAsk(alice, bob, p);
      ends.push(await PrivateEnd.open({ port: h.port }, { op: Op.TCPAccept, ...key }));
      // Alice hears of each: TCPAccept while under the cap, TCPAbort past it.
      const told = await alice.next();
      assert.equal(told.op, p <= 4 ? Op.TCPAccept : Op.TCPAbort, `password ${p}`);
      if (p > 4) assert.equal((await bob.next()).op, Op.TCPAbort);
    }
    const gauges = h.server.context.metrics.gauges;
    assert.equal(gauges.links_pending(), 4, "parked ends stop at the cap");
    assert.equal(h.server.context.metrics.refused.links_per_user, 16);
    for (const e of ends) e.close();
    await eventually(() => gauges.links_pending() === 0, 5000, "closed parked ends leave");
    for (let p = 1; p <= 4; p++) {
      // each closed parked end ended its handshake: both hear of it
      assert.equal((await alice.next()).op, Op.TCPAbort);
      assert.equal((await bob.next()).op, Op.TCPAbort);
    }
    // The count follows the ends: bob may park again.
    alice.send({ op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 99 });
    assert.equal(await alice.nextError(), ErrorCode.OK);
    assert.equal((await bob.next()).op, Op.TCPAsk);
    const again = await PrivateEnd.open({ port: h.port }, {
      op: Op.TCPAccept,
      sender: "alice",
      recipient: "bob",
      password: 99,
    });
    assert.equal((await alice.next()).op, Op.TCPAccept);
    again.close();
  });
});

Deno.test("a bridge slowloris does not stop logins", async () => {
  // Redis mode's bridge listener, with an in-memory store standing in for Redis.
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    presence: "redis",
    bridgeHost: "127.0.0.1",
    bridgePort: 0,
    clusterSecret: "a-cluster-secret-of-thirty-two-bytes",
    bridgeMaxGreetings: 16,
    bridgeGreetingMs: 300,
  }, { presence: () => new MemoryPresence({ nodeId: "n1" }) });
  const slow = new Set<RawConn>();
  const all: RawConn[] = [];
  const mine: RawConn[] = [];
  try {
    let trickling = true;
    // 200 connections sending a byte at a time; those the node closes are reopened.
    const trickle = (async () => {
      while (trickling) {
        while (slow.size < 200 && trickling) {
          const c = await RawConn.open(server.bridgePort, ATTACKER).catch(() => null);
          if (!c) continue;
          slow.add(c);
          all.push(c);
          void c.closed.then(() => slow.delete(c));
        }
        for (const c of slow) c.send(Uint8Array.of(0));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const metrics = server.context.metrics;
    await eventually(() => (metrics.refused.bridge_greetings ?? 0) > 0, 5000, "greetings capped");
    const ok = await legitLogins(server.port, 40, "user", mine);
    await eventually(() => (metrics.refused.bad_bridge_greeting ?? 0) > 0, 5000, "deadline passed");
    trickling = false;
    await trickle;
    assert.ok(ok >= 38, `${ok} of 40 logins succeeded`);
  } finally {
    for (const c of [...all, ...mine]) c.close();
    await server.close();
  }
});

Deno.test("a session over its frame budget is not read until it refills", async () => {
  await withServer({ rateFrames: 50, rateFramesBurst: 10 }, async (h) => {
    const flooder = await h.login("flooder");
    const other = await h.login("other");
    for (let i = 0; i < 40; i++) {
      flooder.send({ op: Op.SPM, sender: "flooder", recipient: "other", message: `m${i}` });
    }
    const metrics = h.server.context.metrics;
    await eventually(() => metrics.throttled > 0, 5000, "the flooder throttled");
    // Everyone else is served at once meanwhile.
    const bystander = await h.login("bystander");
    bystander.send({ op: Op.SMA, sender: "bystander", message: "hi" });
    assert.equal(await bystander.nextError(), ErrorCode.OK);
    // The flooder is slowed, not cut off: every request is answered, in order.
    for (let i = 0; i < 40; i++) assert.equal(await flooder.nextError(), ErrorCode.OK);
    for (let i = 0; i < 40; i++) {
      const f = await other.next();
      if (f.op === Op.SMA) {
        i--;
        continue;
      }
      assert.equal((f as { message: string }).message, `m${i}`);
    }
  });
});
