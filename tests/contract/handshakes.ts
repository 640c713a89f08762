/** The handshake registry's contract: pending private-link handshakes and their strikes. */
import assert from "node:assert/strict";
import { sleep } from "../../src/lib/async.ts";
import type { HandshakeKey } from "../../src/protocol/frames.ts";
import { uniq as name } from "../helpers/presence_testkit.ts";
import type { ContractTest } from "./mod.ts";

const key = (a: string, b: string, password = 42): HandshakeKey => ({ a, b, password });

export function handshakeContract(test: ContractTest): void {
  test("lifecycle: open, accept, claim", 1, async ([n]) => {
    const h = n.handshakes;
    const k = key(name("a"), name("b"), -7);
    assert.equal(await h.claim(k), null, "nothing to claim before open");
    assert.equal(await h.accept(k, { node: n.nodeId, token: "t", bridge: "" }), false);
    assert.equal(await h.open(k, 10_000), true);
    assert.equal(await h.open(k, 10_000), false, "same triple is in protocol");
    assert.equal(await h.open({ ...k, password: 8 }, 10_000), true, "other password");
    assert.equal(await h.claim(k), null, "not accepted yet");
    assert.equal(await h.accept(k, { node: n.nodeId, token: "t1", bridge: "" }), true);
    assert.equal(await h.accept(k, { node: n.nodeId, token: "t2", bridge: "" }), false, "once");
    assert.deepEqual(await h.claim(k), { node: n.nodeId, token: "t1", bridge: "" });
    assert.equal(await h.claim(k), null, "claimed once");
    assert.equal(await h.cancel(k), false, "gone after claim");
  });

  test("cancel drops a pending handshake once", 1, async ([n]) => {
    const h = n.handshakes;
    const k = key(name("a"), name("b"));
    assert.equal(await h.cancel(k), false);
    await h.open(k, 10_000);
    assert.equal(await h.cancel(k), true);
    assert.equal(await h.cancel(k), false);
    assert.equal(await h.open(k, 10_000), true, "can be asked again");
  });

  test("a handshake expires after its ttl", 1, async ([n]) => {
    const h = n.handshakes;
    const k = key(name("a"), name("b"));
    await h.open(k, 150);
    await sleep(400);
    assert.equal(await h.accept(k, { node: n.nodeId, token: "t", bridge: "" }), false);
    assert.equal(await h.open(k, 10_000), true);
  });

  test("cancelPair drops every password of the pair and no other pair", 1, async ([n]) => {
    const h = n.handshakes;
    const a = name("a"), b = name("b"), c = name("c");
    await h.open(key(a, b, 1), 10_000);
    await h.open(key(a, b, 2), 10_000);
    await h.open(key(b, a, 3), 10_000);
    await h.open(key(a, c, 4), 10_000);
    const dropped = (await h.cancelPair(a, b)).map((k) => k.password).sort();
    assert.deepEqual(dropped, [1, 2]);
    assert.equal(await h.cancel(key(b, a, 3)), true);
    assert.equal(await h.cancel(key(a, c, 4)), true);
  });

  test("strikePair strikes each pending handshake of the pair; the budget drops it", 1, async (
    [n],
  ) => {
    const h = n.handshakes;
    const a = name("a"), b = name("b");
    await h.open(key(a, b, 1), 10_000);
    await h.open(key(b, a, 9), 10_000);
    assert.deepEqual(await h.strikePair(a, b, 3), []);
    // A handshake opened later starts with a clean budget.
    await h.open(key(a, b, 2), 10_000);
    assert.deepEqual(await h.strikePair(a, b, 3), []);
    assert.deepEqual((await h.strikePair(a, b, 3)).map((k) => k.password), [1]);
    assert.equal(await h.cancel(key(a, b, 1)), false, "dropped by its third strike");
    assert.deepEqual(await h.strikePair(a, b, 3), [key(a, b, 2)]);
    // The other direction is another pair: untouched.
    assert.equal(await h.cancel(key(b, a, 9)), true);
    assert.deepEqual(await h.strikePair(a, b, 3), [], "nothing pending, nothing struck");
  });

  test("strikes die with the handshake: the next one of the pair starts clean", 1, async ([n]) => {
    const h = n.handshakes;
    const a = name("a"), b = name("b");
    await h.open(key(a, b, 5), 10_000);
    assert.deepEqual(await h.strikePair(a, b, 2), []);
    assert.equal(await h.cancel(key(a, b, 5)), true);
    await h.open(key(a, b, 5), 10_000);
    assert.deepEqual(await h.strikePair(a, b, 2), [], "the old strike did not carry over");
    assert.deepEqual(await h.strikePair(a, b, 2), [key(a, b, 5)]);
  });

  test("handshakes keyed by separators stay distinct", 1, async ([n]) => {
    assert.equal(await n.handshakes.open(key("ab", "c"), 10_000), true);
    assert.equal(await n.handshakes.open(key("a", "bc"), 10_000), true);
  });

  test("across nodes: handshakes and strikes are shared", 2, async ([p, q]) => {
    const k = key(name("a"), name("b"), 1234);
    assert.equal(await p.handshakes.open(k, 10_000), true);
    assert.equal(await q.handshakes.open(k, 10_000), false);
    assert.equal(
      await q.handshakes.accept(k, { node: q.nodeId, token: "tq", bridge: "127.0.0.1:9" }),
      true,
    );
    assert.deepEqual(await p.handshakes.claim(k), {
      node: q.nodeId,
      token: "tq",
      bridge: "127.0.0.1:9",
    });
    // Strikes from two nodes add up on one handshake.
    const k2 = { ...k, password: 99 };
    assert.equal(await p.handshakes.open(k2, 10_000), true);
    assert.deepEqual(await p.handshakes.strikePair(k.a, k.b, 2), []);
    assert.deepEqual(await q.handshakes.strikePair(k.a, k.b, 2), [k2]);
  });
}
