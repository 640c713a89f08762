/**
 * What only a cluster can get wrong, with real processes: a login race over
 * three nodes, a node killed with SIGKILL, a Redis restart and outage, the
 * HAProxy front door, and the compose file.
 */
import assert from "node:assert/strict";
import { ChatClient, PrivateEnd } from "../src/client/client.ts";
import { withDeadline } from "../src/lib/async.ts";
import { type Cluster, startCluster } from "../src/ops/cluster.ts";
import { encode, ErrorCode, type Frame, Op } from "../src/protocol/mod.ts";
import { eventually } from "./helpers/harness.ts";
import { openLink, pendingAsk } from "./helpers/link.ts";

const t = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `cluster: ${name}`, fn, sanitizeOps: false, sanitizeResources: false });

async function withCluster(
  fn: (c: Cluster, connect: (node: number) => Promise<ChatClient>) => Promise<void>,
  haproxy = false,
) {
  const cluster = await startCluster({ nodes: 3, haproxy, port: 0 });
  const clients: ChatClient[] = [];
  const connect = async (node: number) => {
    const c = await ChatClient.connect({ port: cluster.nodes[node].port });
    clients.push(c);
    return c;
  };
  try {
    await fn(cluster, connect);
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
}

async function loginOn(connect: (n: number) => Promise<ChatClient>, node: number, pseudo: string) {
  const c = await connect(node);
  assert.equal(await c.login(pseudo), ErrorCode.OK, `${pseudo} on node ${node + 1}`);
  return c;
}

const key = (a: string, b: string, password: number) => ({ sender: a, recipient: b, password });
const ask = (a: string, b: string, password: number): Frame => ({
  op: Op.TCPAsk,
  ...key(a, b, password),
});
const abort = (a: string, b: string, password: number): Frame => ({
  op: Op.TCPAbort,
  ...key(a, b, password),
});

async function spm(from: ChatClient, sender: string, to: string, message: string) {
  from.send({ op: Op.SPM, sender, recipient: to, message });
  return await from.nextError(3000);
}

t(
  "30 clients racing for one pseudo over 3 nodes: exactly one OK, the rest ERROR 2",
  () =>
    withCluster(async (_c, connect) => {
      const clients = await Promise.all(Array.from({ length: 30 }, (_, i) => connect(i % 3)));
      const codes = await Promise.all(clients.map((c) => c.login("contested")));
      assert.equal(codes.filter((x) => x === ErrorCode.OK).length, 1);
      assert.equal(codes.filter((x) => x === ErrorCode.PseudoUnavailable).length, 29);
    }),
);

t(
  "kill -9 of a node: its pseudos free within 5 s, SPM to its users → ERROR 4, others chat on",
  () =>
    withCluster(async (cluster, connect) => {
      const a = await loginOn(connect, 0, "alice");
      const b = await loginOn(connect, 1, "bob");
      await loginOn(connect, 2, "victim");
      assert.equal(await spm(a, "alice", "victim", "hi"), ErrorCode.OK);
      await cluster.nodes[2].kill("SIGKILL");
      const killedAt = Date.now();
      // no silence: the dead node's users are unreachable at once
      assert.equal(await spm(a, "alice", "victim", "are you there?"), ErrorCode.UnreachableUser);
      // nobody cleans up, yet the pseudo can be taken on another node within 5 s
      const again = await connect(1);
      await eventually(
        async () => (await again.login("victim")) === ErrorCode.OK,
        5000,
        "victim free",
      );
      assert.ok(Date.now() - killedAt < 5000);
      assert.equal(await spm(a, "alice", "bob", "still here"), ErrorCode.OK);
      assert.equal(((await b.next()) as { message: string }).message, "still here");
      assert.equal(await spm(a, "alice", "victim", "welcome back"), ErrorCode.OK);
    }),
);

t(
  "Redis down: whatever needs Redis gets ERROR 9 at once, local delivery goes on; back after a restart",
  () =>
    withCluster(async (cluster, connect) => {
      const a = await loginOn(connect, 0, "alice");
      const c = await loginOn(connect, 0, "carol"); // on alice's node
      const b = await loginOn(connect, 1, "bob");
      await pendingAsk(a, b, 1);
      await cluster.redis!.kill();
      const unavailable = ErrorCode.ServiceUnavailable;
      // CR
      const early = await connect(2);
      const started = Date.now();
      assert.equal(await early.login("newcomer", 4000), unavailable, "CR");
      assert.ok(Date.now() - started < 3000, "refused promptly");
      // SPM to a user on another node; to a user on this node it still works
      assert.equal(await spm(a, "alice", "bob", "remote"), unavailable, "remote SPM");
      assert.equal(await spm(a, "alice", "carol", "local"), ErrorCode.OK, "local SPM");
      assert.deepEqual(await c.next(), {
        op: Op.SPM,
        sender: "alice",
        recipient: "carol",
        message: "local",
      });
      // SMA: refused before anyone has it, local users included (ERROR 9 means delivered to none)
      a.send({ op: Op.SMA, sender: "alice", message: "to all" });
      assert.equal(await a.nextError(3000), unavailable, "SMA");
      await c.expectSilence(200);
      // TCPAsk, with its TCPAbort
      a.send(ask("alice", "carol", 2));
      assert.equal(await a.nextError(3000), unavailable, "TCPAsk");
      assert.deepEqual(await a.next(), abort("alice", "carol", 2));
      // the private-end frames, on new connections
      const endB = await PrivateEnd.open({ port: cluster.nodes[1].port }, {
        op: Op.TCPAccept,
        ...key("alice", "bob", 1),
      });
      assert.deepEqual(await endB.answer(3000), [{ op: Op.ERROR, code: unavailable }], "TCPAccept");
      endB.close();
      const endA = await PrivateEnd.open({ port: cluster.nodes[0].port }, {
        op: Op.TCPConnect,
        ...key("alice", "bob", 1),
      });
      assert.deepEqual(
        await endA.answer(3000),
        [{ op: Op.ERROR, code: unavailable }],
        "TCPConnect",
      );
      assert.deepEqual(
        await withDeadline(endA.readAll(), 5000, () => new Error("TCPConnect's TCPAbort")),
        encode(abort("alice", "bob", 1)),
      );
      await b.expectSilence(100);

      await cluster.redis!.start(); // comes back empty
      const back = Date.now();
      await eventually(
        async () => (await spm(a, "alice", "bob", "after restart")) === ErrorCode.OK,
        5000,
        "relay back",
      );
      assert.ok(Date.now() - back < 5000);
      // bob's session was never dropped: he gets the message on the same connection
      let got;
      do got = await b.next(); while ((got as { message?: string }).message !== "after restart");
      // alice and bob were re-asserted into the empty Redis: their pseudos are still taken.
      // The thief's node must have its own Redis back first (else its answer is ERROR 9).
      await eventually(
        async () => {
          const r = await fetch(`http://127.0.0.1:${cluster.nodes[2].adminPort}/readyz`);
          await r.body?.cancel();
          return r.ok;
        },
        10000,
        "node 2 ready again",
      );
      const thief = await connect(2);
      assert.equal(await thief.login("alice"), ErrorCode.PseudoUnavailable);
      assert.equal(await thief.login("bob"), ErrorCode.PseudoUnavailable);
      assert.equal(await thief.login("newcomer"), ErrorCode.OK);
    }),
);

t(
  "a node stalled past its lease: its users may be taken; awake, it evicts those and keeps the rest",
  () =>
    withCluster(async (cluster, connect) => {
      const alice = await loginOn(connect, 0, "alice");
      const dave = await loginOn(connect, 0, "dave");
      const bob = await loginOn(connect, 1, "bob");
      const stalled = cluster.nodes[0];
      // kill() waits for the exit, which SIGSTOP and SIGCONT are not: only the signal matters
      void stalled.kill("SIGSTOP");
      try {
        const thief = await connect(1);
        await eventually(
          async () => (await thief.login("alice", 3000)) === ErrorCode.OK,
          15_000,
          "alice free once the stalled node's lease lapsed",
        );
        void stalled.kill("SIGCONT");
        // awake: its heartbeat finds the lease gone, re-asserts, and learns alice is taken
        await withDeadline(alice.closed, 15_000, () => new Error("the old alice was not evicted"));
        assert.equal(await spm(bob, "bob", "alice", "to the new alice"), ErrorCode.OK);
        assert.equal(((await thief.next()) as { message: string }).message, "to the new alice");
        // dave, whom nobody took, is served again by the node that woke up
        await eventually(
          async () => (await spm(bob, "bob", "dave", "still there?")) === ErrorCode.OK,
          15_000,
          "dave re-asserted",
        );
        assert.equal(((await dave.next()) as { message: string }).message, "still there?");
        const other = await connect(2);
        assert.equal(await other.login("dave"), ErrorCode.PseudoUnavailable, "dave is held");
      } finally {
        void stalled.kill("SIGCONT");
      }
    }),
);

t(
  "through HAProxy: clients spread over the nodes chat as one server",
  () =>
    withCluster(async (cluster) => {
      const clients: ChatClient[] = [];
      try {
        for (let i = 0; i < 6; i++) {
          const c = await ChatClient.connect({ port: cluster.port });
          clients.push(c);
          assert.equal(await c.login(`u${i}`), ErrorCode.OK);
        }
        clients[0].send({ op: Op.SMA, sender: "u0", message: "hello cluster" });
        assert.equal(await clients[0].nextError(), ErrorCode.OK);
        for (const c of clients.slice(1)) {
          assert.deepEqual(await c.next(), { op: Op.SMA, sender: "u0", message: "hello cluster" });
        }
        for (let i = 1; i < 6; i++) {
          assert.equal(await spm(clients[i], `u${i}`, "u0", `from ${i}`), 1);
        }
        const got = new Set<string>();
        for (let i = 1; i < 6; i++) {
          got.add(((await clients[0].next()) as { message: string }).message);
        }
        assert.equal(got.size, 5);
        await clients[0].expectSilence(100);
        // A private link through HAProxy: the nodes see each end's real address (PROXY v2),
        // which must match its user's chat connection, wherever each socket lands.
        for (const password of [1, 2, 3]) {
          const { endA, endB } = await openLink(
            { port: cluster.port },
            clients[1],
            clients[2],
            password,
            {
              a: "u1",
              b: "u2",
            },
          );
          endA.close();
          endB.close();
        }
      } finally {
        for (const c of clients) {
          c.close();
        }
      }
    }, true),
);

t(
  "a node stopped with SIGTERM releases its users at once and exits 0",
  () =>
    withCluster(async (cluster, connect) => {
      await loginOn(connect, 0, "leaving");
      const status = await cluster.nodes[0].kill("SIGTERM");
      assert.equal(status.code, 0);
      const other = await connect(1);
      assert.equal(await other.login("leaving"), ErrorCode.OK, "free without waiting for a lease");
    }),
);
