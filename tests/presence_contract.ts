/**
 * The presence contract, written once and run against every store.
 * `makeCluster(n)` returns n stores that share one backend, as n server nodes
 * would; a store that cannot share (memory) supports only n = 1 and the
 * multi-node cases are skipped for it.
 */
import assert from "node:assert/strict";
import { sleep } from "../src/lib/async.ts";
import type { Inbox, Presence } from "../src/presence/presence.ts";
import type { HandshakeKey } from "../src/protocol/frames.ts";
import { eventually } from "./helpers/harness.ts";

/** A store sees the other nodes' counts on its heartbeat, not on an event a test can wait for. */
const SEEN_MS = 8000;

export interface ContractTarget {
  name: string;
  maxNodes: number;
  makeCluster(n: number): Promise<Presence[]>;
  /** Stops the shared backend, if any (called once after the suite). */
  teardown?: () => Promise<void>;
}

export class RecordingInbox implements Inbox {
  frames: Uint8Array[] = [];
  #waiters: Array<() => void> = [];
  deliver(frame: Uint8Array): void {
    this.frames.push(frame);
    for (const w of this.#waiters.splice(0)) w();
  }
  /** Resolves once at least `n` frames have arrived (cross-node delivery is asynchronous). */
  async waitFor(n: number, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.frames.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} frames, got ${this.frames.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

const bytes = (...xs: number[]) => Uint8Array.from(xs);
let unique = 0;
const name = (base: string) => `${base}${++unique}_${Math.random().toString(36).slice(2, 6)}`;
const key = (a: string, b: string, password = 42): HandshakeKey => ({ a, b, password });

export function presenceContract(target: ContractTarget): void {
  const test = (
    title: string,
    nodes: number,
    fn: (stores: Presence[]) => Promise<void>,
  ) =>
    Deno.test({
      name: `presence contract [${target.name}]: ${title}`,
      ignore: nodes > target.maxNodes,
      sanitizeOps: false,
      sanitizeResources: false,
      async fn() {
        const stores = await target.makeCluster(nodes);
        try {
          await fn(stores);
        } finally {
          for (const s of stores) await s.close();
        }
      },
    });

  test("a pseudo is reserved once; release frees it", 1, async ([p]) => {
    const alice = name("alice");
    const i1 = new RecordingInbox(), i2 = new RecordingInbox();
    assert.equal(await p.reserve(alice, i1), "ok");
    assert.equal(await p.reserve(alice, i2), "taken");
    await p.release(alice, i2); // not the holder: no effect
    assert.equal(await p.reserve(alice, i2), "taken");
    await p.release(alice, i1);
    assert.equal(await p.reserve(alice, i2), "ok");
  });

  test("send reaches the holder only, and reports a missing user", 1, async ([p]) => {
    const a = name("a"), b = name("b");
    const ia = new RecordingInbox(), ib = new RecordingInbox();
    await p.reserve(a, ia);
    await p.reserve(b, ib);
    assert.equal(await p.send(b, bytes(2, 9)), true);
    await ib.waitFor(1);
    assert.deepEqual(ib.frames, [bytes(2, 9)]);
    assert.equal(ia.frames.length, 0);
    assert.equal(await p.send(name("ghost"), bytes(2)), false);
    await p.release(b, ib);
    assert.equal(await p.send(b, bytes(2)), false);
  });

  test("broadcast reaches everyone once except the sender", 1, async ([p]) => {
    const names = [name("u"), name("u"), name("u")];
    const inboxes = names.map(() => new RecordingInbox());
    for (let i = 0; i < 3; i++) await p.reserve(names[i], inboxes[i]);
    await p.broadcast(bytes(3, 1), names[0]);
    // Local users are served before broadcast resolves; the sender's own node drops its echo.
    await inboxes[1].waitFor(1);
    await inboxes[2].waitFor(1);
    assert.equal(inboxes[0].frames.length, 0);
    assert.equal(inboxes[1].frames.length, 1);
    assert.equal(inboxes[2].frames.length, 1);
  });

  test(
    "userCount counts this node's users at once: reserve adds, release takes back",
    1,
    async ([p]) => {
      const a = name("a"), b = name("b");
      const ia = new RecordingInbox(), ib = new RecordingInbox();
      const base = p.userCount();
      assert.equal(await p.reserve(a, ia), "ok");
      assert.equal(p.userCount(), base + 1, "counted as soon as the reserve resolves");
      assert.equal(await p.reserve(a, ib), "taken");
      assert.equal(p.userCount(), base + 1, "a refused reserve adds nobody");
      assert.equal(await p.reserve(b, ib), "ok");
      assert.equal(p.userCount(), base + 2);
      await p.release(a, ib); // not the holder: no effect
      assert.equal(p.userCount(), base + 2);
      await p.release(a, ia);
      assert.equal(p.userCount(), base + 1);
    },
  );

  test("handshake lifecycle: open, accept, claim", 1, async ([p]) => {
    const k = key(name("a"), name("b"), -7);
    assert.equal(await p.claimHandshake(k), null, "nothing to claim before open");
    assert.equal(await p.acceptHandshake(k, { node: p.nodeId, token: "t", bridge: "" }), false);
    assert.equal(await p.openHandshake(k, 10_000), true);
    assert.equal(await p.openHandshake(k, 10_000), false, "same triple is in protocol");
    assert.equal(await p.openHandshake({ ...k, password: 8 }, 10_000), true, "other password");
    assert.equal(await p.claimHandshake(k), null, "not accepted yet");
    assert.equal(await p.acceptHandshake(k, { node: p.nodeId, token: "t1", bridge: "" }), true);
    assert.equal(
      await p.acceptHandshake(k, { node: p.nodeId, token: "t2", bridge: "" }),
      false,
      "once",
    );
    assert.deepEqual(await p.claimHandshake(k), { node: p.nodeId, token: "t1", bridge: "" });
    assert.equal(await p.claimHandshake(k), null, "claimed once");
    assert.equal(await p.cancelHandshake(k), false, "gone after claim");
  });

  test("cancel drops a pending handshake once", 1, async ([p]) => {
    const k = key(name("a"), name("b"));
    assert.equal(await p.cancelHandshake(k), false);
    await p.openHandshake(k, 10_000);
    assert.equal(await p.cancelHandshake(k), true);
    assert.equal(await p.cancelHandshake(k), false);
    assert.equal(await p.openHandshake(k, 10_000), true, "can be asked again");
  });

  test("a handshake expires after its ttl", 1, async ([p]) => {
    const k = key(name("a"), name("b"));
    await p.openHandshake(k, 150);
    await sleep(400);
    assert.equal(await p.acceptHandshake(k, { node: p.nodeId, token: "t", bridge: "" }), false);
    assert.equal(await p.openHandshake(k, 10_000), true);
  });

  test("cancelPair drops every password of the pair and no other pair", 1, async ([p]) => {
    const a = name("a"), b = name("b"), c = name("c");
    await p.openHandshake(key(a, b, 1), 10_000);
    await p.openHandshake(key(a, b, 2), 10_000);
    await p.openHandshake(key(b, a, 3), 10_000);
    await p.openHandshake(key(a, c, 4), 10_000);
    const dropped = (await p.cancelPair(a, b)).map((k) => k.password).sort();
    assert.deepEqual(dropped, [1, 2]);
    assert.equal(await p.cancelHandshake(key(b, a, 3)), true);
    assert.equal(await p.cancelHandshake(key(a, c, 4)), true);
  });

  test(
    "strikePair strikes each pending handshake of the pair; the budget drops it",
    1,
    async ([p]) => {
      const a = name("a"), b = name("b");
      await p.openHandshake(key(a, b, 1), 10_000);
      await p.openHandshake(key(b, a, 9), 10_000);
      assert.deepEqual(await p.strikePair(a, b, 3), []);
      // A handshake opened later starts with a clean budget.
      await p.openHandshake(key(a, b, 2), 10_000);
      assert.deepEqual(await p.strikePair(a, b, 3), []);
      assert.deepEqual((await p.strikePair(a, b, 3)).map((k) => k.password), [1]);
      assert.equal(await p.cancelHandshake(key(a, b, 1)), false, "dropped by its third strike");
      assert.deepEqual(await p.strikePair(a, b, 3), [key(a, b, 2)]);
      // The other direction is another pair: untouched.
      assert.equal(await p.cancelHandshake(key(b, a, 9)), true);
      assert.deepEqual(await p.strikePair(a, b, 3), [], "nothing pending, nothing struck");
    },
  );

  test("strikes die with the handshake: the next one of the pair starts clean", 1, async ([p]) => {
    const a = name("a"), b = name("b");
    await p.openHandshake(key(a, b, 5), 10_000);
    assert.deepEqual(await p.strikePair(a, b, 2), []);
    assert.equal(await p.cancelHandshake(key(a, b, 5)), true);
    await p.openHandshake(key(a, b, 5), 10_000);
    assert.deepEqual(await p.strikePair(a, b, 2), [], "the old strike did not carry over");
    assert.deepEqual(await p.strikePair(a, b, 2), [key(a, b, 5)]);
  });

  // Run on one store, and on two sharing a backend (the second answers for the first's users).
  for (const n of [1, 2]) {
    test(
      `a claim's keys are held all together and released together (${n} node)`,
      n,
      async (stores) => {
        const p = stores[0], q = stores[n - 1];
        const alice = name("alice"), lookalike = name("Alice"), other = name("x");
        const k1 = name("k1"), k2 = name("k2"), k3 = name("k3");
        const i1 = new RecordingInbox(), i2 = new RecordingInbox(), i3 = new RecordingInbox();
        assert.equal(await p.reserve(alice, i1, { keys: [k1, k2], client: "10.0.0.1" }), "ok");
        // Another display name with any key of alice's is refused, from any node.
        assert.equal(
          await q.reserve(lookalike, i2, { keys: [k3, k2], client: "10.0.0.2" }),
          "taken",
        );
        assert.equal(await q.reserve(lookalike, i2, { keys: [k1], client: "10.0.0.2" }), "taken");
        // All or nothing: the refused reserve took neither k3 nor the display name.
        assert.equal(await p.reserve(other, i3, { keys: [k3], client: "10.0.0.3" }), "ok");
        await p.release(other, i3);
        assert.equal(await q.send(lookalike, bytes(1)), false);
        await p.release(alice, i1);
        assert.equal(await q.reserve(lookalike, i2, { keys: [k3, k2], client: "10.0.0.2" }), "ok");
        assert.equal(await p.reserve(alice, i1, { keys: [k1, k2], client: "10.0.0.1" }), "taken");
        assert.equal(await p.reserve(alice, i1, { keys: [k1], client: "10.0.0.1" }), "ok");
      },
    );

    test(`clientOf answers the client key a user logged in with (${n} node)`, n, async (stores) => {
      const p = stores[0], q = stores[n - 1];
      const u = name("u");
      const inbox = new RecordingInbox();
      assert.equal(await q.clientOf(u), null);
      assert.equal(await p.reserve(u, inbox, { keys: [name("ku")], client: "192.0.2.7" }), "ok");
      assert.equal(await p.clientOf(u), "192.0.2.7");
      assert.equal(await q.clientOf(u), "192.0.2.7");
      await p.release(u, inbox);
      assert.equal(await p.clientOf(u), null);
      assert.equal(await q.clientOf(u), null);
    });
  }

  test("pseudos with separators and unicode stay distinct", 1, async ([p]) => {
    const i1 = new RecordingInbox(), i2 = new RecordingInbox();
    const u = name("é:ü");
    assert.equal(await p.reserve(u + ":x", i1), "ok");
    assert.equal(await p.reserve(u, i2), "ok");
    assert.equal(await p.send(u, bytes(1)), true);
    await i2.waitFor(1);
    assert.equal(i1.frames.length, 0);
    const k1 = key("ab", "c"), k2 = key("a", "bc");
    assert.equal(await p.openHandshake(k1, 10_000), true);
    assert.equal(await p.openHandshake(k2, 10_000), true);
  });

  test("close releases this node's pseudos", 2, async ([p, q]) => {
    const a = name("a");
    assert.equal(await p.reserve(a, new RecordingInbox()), "ok");
    assert.equal(await q.reserve(a, new RecordingInbox()), "taken");
    await p.close();
    assert.equal(await q.reserve(a, new RecordingInbox()), "ok");
  });

  test("across nodes: reservations are exclusive", 3, async (stores) => {
    const a = name("race");
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % 3].reserve(a, new RecordingInbox())),
    );
    assert.equal(results.filter((r) => r === "ok").length, 1);
    assert.equal(results.filter((r) => r === "taken").length, 29);
  });

  test("across nodes: send, ordering, broadcast once each", 3, async ([p, q, r]) => {
    const a = name("a"), b = name("b"), b2 = name("b2"), c = name("c");
    const ia = new RecordingInbox(), ib = new RecordingInbox(), ic = new RecordingInbox();
    const ib2 = new RecordingInbox();
    await p.reserve(a, ia);
    await q.reserve(b, ib);
    await q.reserve(b2, ib2);
    await r.reserve(c, ic);
    for (let i = 0; i < 200; i++) assert.equal(await p.send(b, bytes(2, i & 0xff, i >> 8)), true);
    await ib.waitFor(200);
    assert.deepEqual(ib.frames.map((f) => f[1] | (f[2] << 8)), [...Array(200).keys()]);
    await q.broadcast(bytes(3, 7), b);
    // A second broadcast from the same node is a barrier: a duplicate of the first would arrive
    // before it.
    await q.broadcast(bytes(3, 8), b);
    for (const inbox of [ia, ic, ib2]) {
      await inbox.waitFor(2);
      assert.deepEqual(inbox.frames, [bytes(3, 7), bytes(3, 8)]);
    }
    assert.equal(ib.frames.length, 200, "not the sender");
  });

  test("across nodes: sends follow a pseudo that moves to another node", 2, async ([p, q]) => {
    const a = name("mover"), b = name("b");
    const ip = new RecordingInbox(), iq = new RecordingInbox(), ib = new RecordingInbox();
    await q.reserve(b, ib);
    assert.equal(await p.reserve(a, ip), "ok");
    assert.equal(await q.send(a, bytes(2, 1)), true);
    await ip.waitFor(1);
    await p.release(a, ip);
    assert.equal(await q.send(a, bytes(2, 2)), false, "released: unreachable");
    assert.equal(await q.reserve(a, iq), "ok");
    assert.equal(await p.send(a, bytes(2, 3)), true);
    await iq.waitFor(1); // two senders: no order between them
    assert.equal(await q.send(a, bytes(2, 4)), true, "now local to q");
    await iq.waitFor(2);
    assert.deepEqual(iq.frames, [bytes(2, 3), bytes(2, 4)]);
    assert.deepEqual(ip.frames, [bytes(2, 1)]);
    await p.broadcast(bytes(3, 9), b);
    await p.broadcast(bytes(3, 10), ""); // a barrier: ib would see the first before this one
    await ib.waitFor(1);
    await iq.waitFor(4);
    assert.deepEqual(iq.frames.slice(2), [bytes(3, 9), bytes(3, 10)]);
    assert.deepEqual(ip.frames, [bytes(2, 1)], "released inbox gets no broadcast");
    assert.deepEqual(ib.frames, [bytes(3, 10)], "except");
  });

  test(
    "across nodes: sends issued together arrive in order, before a later broadcast",
    2,
    async ([p, q]) => {
      const a = name("a"), b = name("b");
      const ib = new RecordingInbox();
      await p.reserve(a, new RecordingInbox());
      await q.reserve(b, ib);
      const acks = [];
      for (let i = 0; i < 300; i++) acks.push(p.send(b, bytes(2, i & 0xff, i >> 8)));
      const done = p.broadcast(bytes(3, 9), a);
      assert.deepEqual(await Promise.all(acks), Array(300).fill(true));
      await done;
      await ib.waitFor(301);
      assert.deepEqual(ib.frames.slice(0, 300).map((f) => f[1] | (f[2] << 8)), [
        ...Array(300).keys(),
      ]);
      assert.deepEqual(ib.frames[300], bytes(3, 9));
      assert.equal(await p.send(name("ghost"), bytes(2)), false, "absent users still answer false");
    },
  );

  test(
    "across nodes: userCount adds the other nodes' users within a few heartbeats; a closed node's count 0",
    3,
    async ([p, q, r]) => {
      const counts = () => [p, q, r].map((s) => s.userCount());
      const on = (s: Presence, n: number) =>
        Promise.all(Array.from({ length: n }, () => s.reserve(name("u"), new RecordingInbox())));
      await on(p, 1);
      await on(q, 5);
      const inbox = new RecordingInbox(), leaving = name("leaving");
      assert.equal(await q.reserve(leaving, inbox), "ok");
      await on(r, 2);
      // What an SMA from any node reaches: 1 + 6 + 2, whichever node is asked.
      await eventually(() => counts().every((c) => c === 9), SEEN_MS, "every node counts 9");
      await q.release(leaving, inbox);
      await eventually(() => counts().every((c) => c === 8), SEEN_MS, "a release seen everywhere");
      await q.close();
      await eventually(
        () => p.userCount() === 3 && r.userCount() === 3,
        SEEN_MS,
        "a closed node 0",
      );
    },
  );

  test("across nodes: handshakes and strikes are shared", 2, async ([p, q]) => {
    const k = key(name("a"), name("b"), 1234);
    assert.equal(await p.openHandshake(k, 10_000), true);
    assert.equal(await q.openHandshake(k, 10_000), false);
    assert.equal(
      await q.acceptHandshake(k, { node: q.nodeId, token: "tq", bridge: "127.0.0.1:9" }),
      true,
    );
    assert.deepEqual(await p.claimHandshake(k), {
      node: q.nodeId,
      token: "tq",
      bridge: "127.0.0.1:9",
    });
    // Strikes from two nodes add up on one handshake.
    const k2 = { ...k, password: 99 };
    assert.equal(await p.openHandshake(k2, 10_000), true);
    assert.deepEqual(await p.strikePair(k.a, k.b, 2), []);
    assert.deepEqual(await q.strikePair(k.a, k.b, 2), [k2]);
  });

  // Registered last, so it runs after the suite: stops the shared backend (see ContractTarget).
  Deno.test({
    name: `presence contract [${target.name}]: teardown`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await target.teardown?.();
    },
  });
}
