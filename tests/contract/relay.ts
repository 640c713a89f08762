/**
 * The relay's contract: frames for the users of other nodes, and broadcasts to them. The node
 * delivers to its own users itself (TestNode.send does as a session does), so what is asked of
 * the relay is only ever the rest.
 */
import assert from "node:assert/strict";
import { RecordingInbox } from "../helpers/presence_node.ts";
import { eventually } from "../helpers/harness.ts";
import { bytes, uniq as name } from "../helpers/presence_testkit.ts";
import type { ContractTest } from "./mod.ts";

/** A store sees the other nodes' counts on its heartbeat, not on an event a test can wait for. */
const SEEN_MS = 8000;

export function relayContract(test: ContractTest): void {
  test("a user no other node holds is unreachable; nobody else counts", 1, async ([n]) => {
    const a = name("a");
    assert.equal(await n.login(a), "ok");
    assert.equal(await n.relay.send(name("ghost"), bytes(2)), false);
    assert.equal(await n.relay.send(a, bytes(2)), false, "this node's own user is not relayed");
    await n.relay.broadcast(bytes(3, 1), a);
    assert.equal(n.relay.remoteUsers, 0);
  });

  test("across nodes: send, ordering, broadcast once each", 3, async ([p, q, r]) => {
    const a = name("a"), b = name("b"), b2 = name("b2"), c = name("c");
    const ia = new RecordingInbox(), ib = new RecordingInbox(), ic = new RecordingInbox();
    const ib2 = new RecordingInbox();
    await p.login(a, ia);
    await q.login(b, ib);
    await q.login(b2, ib2);
    await r.login(c, ic);
    for (let i = 0; i < 200; i++) {
      assert.equal(await p.relay.send(b, bytes(2, i & 0xff, i >> 8)), true);
    }
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
    await q.login(b, ib);
    assert.equal(await p.login(a, ip), "ok");
    assert.equal(await q.relay.send(a, bytes(2, 1)), true);
    await ip.waitFor(1);
    await p.logout(a, ip);
    assert.equal(await q.relay.send(a, bytes(2, 2)), false, "logged out: unreachable");
    assert.equal(await q.login(a, iq), "ok");
    assert.equal(await p.relay.send(a, bytes(2, 3)), true);
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
    assert.deepEqual(ip.frames, [bytes(2, 1)], "a logged-out inbox gets no broadcast");
    assert.deepEqual(ib.frames, [bytes(3, 10)], "except");
  });

  test(
    "across nodes: sends issued together arrive in order, before a later broadcast",
    2,
    async ([p, q]) => {
      const a = name("a"), b = name("b");
      const ib = new RecordingInbox();
      await p.login(a);
      await q.login(b, ib);
      const acks = [];
      for (let i = 0; i < 300; i++) acks.push(p.relay.send(b, bytes(2, i & 0xff, i >> 8)));
      const done = p.relay.broadcast(bytes(3, 9), a);
      assert.deepEqual(await Promise.all(acks), Array(300).fill(true));
      await done;
      await ib.waitFor(301);
      assert.deepEqual(ib.frames.slice(0, 300).map((f) => f[1] | (f[2] << 8)), [
        ...Array(300).keys(),
      ]);
      assert.deepEqual(ib.frames[300], bytes(3, 9));
      assert.equal(await p.relay.send(name("ghost"), bytes(2)), false, "absent users: false");
    },
  );

  test(
    "across nodes: remoteUsers counts the other nodes' users within a few heartbeats; a closed node's 0",
    3,
    async (nodes) => {
      const [p, q, r] = nodes;
      const counts = () => nodes.map((n) => n.userCount());
      const on = (n: typeof p, k: number) =>
        Promise.all(Array.from({ length: k }, () => n.login(name("u"))));
      await on(p, 1);
      await on(q, 5);
      const inbox = new RecordingInbox(), leaving = name("leaving");
      assert.equal(await q.login(leaving, inbox), "ok");
      await on(r, 2);
      // What an SMA from any node reaches: 1 + 6 + 2, whichever node is asked.
      await eventually(() => counts().every((c) => c === 9), SEEN_MS, "every node counts 9");
      await q.logout(leaving, inbox);
      await eventually(() => counts().every((c) => c === 8), SEEN_MS, "a logout seen everywhere");
      await q.close();
      await eventually(
        () => p.relay.remoteUsers === 2 && r.relay.remoteUsers === 1,
        SEEN_MS,
        "a closed node counts 0",
      );
    },
  );
}
