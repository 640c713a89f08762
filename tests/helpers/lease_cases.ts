/**
 * The lease cases every Redis store must pass (single Redis and Redis
 * Cluster): a reserve needs the node's own lease, and a node that stalls past
 * its lease gives up what others took and keeps the rest. One copy, run by
 * each store's test file over its own Redis.
 */
import assert from "node:assert/strict";
import type { Cluster, Redis } from "ioredis";
import type { RedisTarget } from "../../src/presence/redis.ts";
import { keys } from "../../src/presence/redis/schema.ts";
import { RecordingInbox } from "./presence_node.ts";
import { bytes, node, rejectsUnavailable, uniq, until } from "./presence_testkit.ts";

export interface LeaseRig {
  /** Where the nodes under test connect. */
  where(): Promise<string | RedisTarget>;
  /** A connected raw client on the same Redis, for looking at keys. */
  raw(): Promise<Redis | Cluster>;
  /** What a user key held by `nodeId` contains now (`node`, or `node|fence`). */
  holder(raw: Redis | Cluster, nodeId: string): Promise<string>;
  /** Whether the store fences its keys: then a lease created anew comes back with a new fence. */
  fenced: boolean;
  /** How soon a reserve without the lease must be refused. */
  refuseWithinMs: number;
}

export function leaseCases(
  test: (name: string, fn: () => Promise<void>) => void,
  rig: LeaseRig,
): void {
  test("a reserve needs this node's own lease", async () => {
    const p = await node(await rig.where());
    const raw = await rig.raw();
    try {
      p.stallHeartbeats();
      assert.equal(await raw.del(keys.lease(p.nodeId)), 1);
      const u = uniq("nolease");
      await rejectsUnavailable(
        p.login(u, new RecordingInbox()),
        rig.refuseWithinMs,
        "reserve without lease",
      );
      assert.equal(await raw.get(keys.user(u)), null, "nothing was written");
      assert.ok(!p.ready, "a node without its lease is not ready");
      p.resumeHeartbeats();
      await until("ready again", 5000, () => p.ready);
      assert.equal(await p.login(u, new RecordingInbox()), "ok");
      assert.equal(await raw.get(keys.user(u)), await rig.holder(raw, p.nodeId));
    } finally {
      raw.disconnect();
      await p.close();
    }
  });

  test("a node that stalls past its lease gives up what others took, and keeps the rest", async () => {
    const where = await rig.where();
    const p = await node(where, { leaseMs: 800, heartbeatMs: 200 });
    const q = await node(where);
    const raw = await rig.raw();
    try {
      const alice = uniq("alice"), bob = uniq("bob");
      const ia = new RecordingInbox(), ib = new RecordingInbox();
      await p.login(alice, ia);
      await p.login(bob, ib);
      const oldFence = await raw.hget(keys.lease(p.nodeId), "fence");
      p.stallHeartbeats();
      await until("the stalled node's lease to lapse", 5000, async () => {
        return (await raw.exists(keys.lease(p.nodeId))) === 0;
      });
      // p cannot vouch for bob past its lease: it holds the frame until it can again.
      assert.equal(await q.send(bob, bytes(2, 5)), true, "p's subscriber has it");
      assert.equal(ib.frames.length, 0, "held while p cannot vouch for its users");
      assert.equal(
        await q.login(alice, new RecordingInbox()),
        "ok",
        "free once the lease lapsed",
      );
      p.resumeHeartbeats();
      await ia.evicted(); // the session of the pseudo another node took ends
      assert.deepEqual(ib.evictions, [], "bob's stays");
      await until("the stalled node to be ready again", 5000, () => p.ready);
      if (rig.fenced) {
        const newFence = await raw.hget(keys.lease(p.nodeId), "fence");
        assert.notEqual(newFence, oldFence, "a lease created anew has a new fence");
      }
      assert.equal(await raw.get(keys.user(alice)), await rig.holder(raw, q.nodeId), "q keeps it");
      assert.equal(await raw.get(keys.user(bob)), await rig.holder(raw, p.nodeId), "re-asserted");
      assert.equal(await q.login(bob, new RecordingInbox()), "taken");
      assert.equal(await q.send(bob, bytes(2, 6)), true);
      await ib.waitFor(1);
      await ib.waitFor(2);
      assert.deepEqual(
        ib.frames,
        [bytes(2, 5), bytes(2, 6)],
        "the held frame first, once p vouched",
      );
    } finally {
      raw.disconnect();
      await p.close();
      await q.close();
    }
  });
}
