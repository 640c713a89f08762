/** The checks both Redis failover tests (cluster, sentinel) make once every node is ready again. */
import assert from "node:assert/strict";
import { RecordingInbox, type TestNode } from "./presence_node.ts";
import { bytes, uniq } from "./presence_testkit.ts";

/**
 * `p` holds alice (inbox `ia`), `q` holds bob (inbox `ib`), `r` holds neither.
 * After the failover: both are still held once, sends and a broadcast reach them,
 * and exactly one of 30 racing reservations wins.
 */
export async function assertServesAfterFailover(
  [p, q, r]: readonly [TestNode, TestNode, TestNode],
  alice: string,
  bob: string,
  ia: RecordingInbox,
  ib: RecordingInbox,
): Promise<void> {
  // Held once (the new primary may have missed the last writes; the nodes wrote them again).
  assert.equal(await r.login(alice, new RecordingInbox()), "taken");
  assert.equal(await r.login(bob, new RecordingInbox()), "taken");
  assert.equal(await q.send(alice, bytes(2, 1)), true);
  assert.equal(await p.send(bob, bytes(2, 2)), true);
  await ia.waitFor(1);
  await ib.waitFor(1);
  await r.broadcast(bytes(3, 3), "");
  await ia.waitFor(2);
  await ib.waitFor(2);
  // Exactly one of 30 racing logins wins.
  const contested = uniq("race");
  const nodes = [p, q, r];
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) => nodes[i % 3].login(contested, new RecordingInbox())),
  );
  assert.equal(results.filter((x) => x === "ok").length, 1);
}
