/** The outbound queue: one write per tick, a hard bound, and no pinning of shared blocks by slow readers. */
import assert from "node:assert/strict";
import type { ByteWriter } from "../src/lib/async.ts";
import { CHUNK_OVERHEAD, OutboundQueue, QueueBudget } from "../src/server/chat/outbound.ts";
import { keepFrame } from "../src/server/chat/arena.ts";
import { concatBytes } from "../src/lib/bytes.ts";

/** A socket whose writes complete only when the test says so. */
class GatedWriter implements ByteWriter {
  writes: Uint8Array[] = [];
  #release: Array<() => void> = [];
  gated = false;
  write(p: Uint8Array): Promise<number> {
    this.writes.push(p);
    if (!this.gated) return Promise.resolve(p.length);
    return new Promise((resolve) => this.#release.push(() => resolve(p.length)));
  }
  open(): void {
    this.gated = false;
    for (const r of this.#release.splice(0)) r();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5));

Deno.test("outbound: frames queued in one turn leave in one write, in order", async () => {
  const w = new GatedWriter();
  const q = new OutboundQueue(w, 1 << 20, () => {}, () => {});
  for (let i = 0; i < 100; i++) q.push(Uint8Array.of(8, i));
  await q.drained();
  assert.equal(w.writes.length, 1);
  assert.deepEqual([...w.writes[0]], Array.from({ length: 100 }, (_, i) => [8, i]).flat());
});

Deno.test("outbound: past the bound the queue closes and reports the slow reader", async () => {
  const w = new GatedWriter();
  w.gated = true;
  let overflowed = 0;
  const bound = 1000 + 2 * CHUNK_OVERHEAD;
  const q = new OutboundQueue(w, bound, () => overflowed++, () => {});
  assert.equal(q.push(new Uint8Array(600)), true);
  await tick(); // the first write is now waiting on the socket
  assert.equal(q.push(new Uint8Array(300)), true);
  assert.equal(q.pending, 900);
  assert.equal(q.push(new Uint8Array(200)), false, "1100 bytes would cross the bound");
  assert.equal(overflowed, 1);
  assert.equal(q.push(new Uint8Array(1)), false, "closed");
  w.open();
});

Deno.test("outbound: a lone frame carved from a shared block is written from its own copy", async () => {
  const w = new GatedWriter();
  const q = new OutboundQueue(w, 1 << 20, () => {}, () => {});
  const frame = keepFrame(Uint8Array.of(2, 1, 2, 3));
  assert.ok(frame.buffer.byteLength >= 64 * 1024, "carved from a block");
  q.push(frame);
  await q.drained();
  assert.deepEqual([...w.writes[0]], [2, 1, 2, 3]);
  // a socket that takes its time must not keep the whole 64 KiB block alive
  assert.ok(w.writes[0].buffer.byteLength < 1024, "written from a copy, not the block");
});

Deno.test("outbound: behind a waiting write, a frame of its own is kept by reference until 16 KiB are held, a carved one is packed at once", async () => {
  const w = new GatedWriter();
  w.gated = true;
  const q = new OutboundQueue(w, 1 << 20, () => assert.fail("overflow"), () => {});
  q.push(new Uint8Array(40));
  await tick(); // a write is waiting
  const broadcast = new Uint8Array(40); // one SMA, encoded once for every recipient
  const before = q.cost;
  for (let i = 0; i < 10; i++) q.push(broadcast);
  assert.equal(q.cost - before, 10 * (40 + CHUNK_OVERHEAD), "kept by reference, not copied");
  while (q.cost < 16 * 1024) q.push(broadcast);
  const packedFrom = q.cost;
  q.push(broadcast);
  assert.ok(q.cost - packedFrom >= 1024, "past 16 KiB it starts a block of its own");
  const carved = new OutboundQueue(w, 1 << 20, () => assert.fail("overflow"), () => {});
  carved.push(new Uint8Array(40));
  await tick();
  const c0 = carved.cost;
  carved.push(keepFrame(new Uint8Array(40)));
  assert.ok(carved.cost - c0 >= 1024, "a frame that pins a 64 KiB block is copied into a block");
  w.open();
  await q.drained();
  await carved.drained();
});

/** 22 bytes numbered `i`, so order and content can be checked. */
const small = (i: number) => Uint8Array.from({ length: 22 }, (_, j) => (i * 7 + j) & 255);

Deno.test("outbound: behind a waiting write, small frames are packed and charged the blocks they fill", async () => {
  const w = new GatedWriter();
  w.gated = true;
  let discarded = -1;
  const bound = 1024 * 1024;
  const q = new OutboundQueue(w, bound, (n) => (discarded = n), () => {});
  q.push(small(0));
  await tick(); // a write is waiting: what follows is queued behind a reader that does not read
  let accepted = 0;
  while (accepted < 100_000 && q.push(small(++accepted)));
  // Each kept on its own (an object and a buffer: ~400 bytes) would allow ~2,600 frames
  // per MiB of real memory; packed (past the first 16 KiB), they cost their bytes and fill the bound.
  assert.ok(accepted * 22 <= bound, `${accepted} frames queued: the charge covers their bytes`);
  assert.ok(
    accepted * 22 >= bound * 0.85,
    `${accepted} frames queued: packed, not ~150 bytes each`,
  );
  assert.ok(discarded >= bound * 0.9, `the owner is told how much is thrown away (${discarded})`);
  w.open();
});

Deno.test("outbound: packed frames leave in order with the others, and every charge is given back", async () => {
  const shared = new QueueBudget(1 << 20);
  const w = new GatedWriter();
  w.gated = true;
  const q = new OutboundQueue(w, 1 << 20, () => assert.fail("overflow"), () => {}, shared);
  const sent: Uint8Array[] = [small(0)];
  q.push(sent[0]);
  await tick(); // the first write waits on the socket
  for (let i = 1; i < 400; i++) {
    // a large frame now and then is kept by reference, between the packed ones
    const f = i % 100 === 50 ? new Uint8Array(4096).fill(i) : small(i);
    sent.push(f);
    assert.equal(q.push(f), true);
    assert.ok(q.cost >= q.pending, `charged ${q.cost} for ${q.pending} bytes held`);
  }
  assert.equal(shared.used, q.cost, "the node-wide budget sees the same charge");
  w.open();
  await q.drained();
  assert.equal(w.writes.length, 2, "everything queued behind the first write leaves in one");
  assert.deepEqual(w.writes[1], concatBytes(sent.slice(1)));
  assert.equal(q.pending, 0);
  assert.equal(q.cost, 0, "nothing stays charged once written");
  assert.equal(shared.used, 0);
});

Deno.test("outbound: a node-wide bound drops the queues that hold much, spares small ones", async () => {
  const shared = new QueueBudget(200 * 1024);
  const w = new GatedWriter();
  w.gated = true;
  const dropped: string[] = [];
  const big = new OutboundQueue(w, 1 << 20, () => dropped.push("big"), () => {}, shared);
  const small = new OutboundQueue(w, 1 << 20, () => dropped.push("small"), () => {}, shared);
  big.push(new Uint8Array(1024));
  small.push(new Uint8Array(1024));
  await tick();
  let queued = 1024;
  while (queued < 4 << 20 && big.push(new Uint8Array(8 * 1024))) queued += 8 * 1024;
  assert.deepEqual(dropped, ["big"]);
  assert.ok(queued <= 200 * 1024, `dropped at the node's 200 KiB, not its own 1 MiB (${queued})`);
  assert.ok(shared.used < 8 * 1024, "the dropped queue's charge was given back");
  assert.equal(small.push(new Uint8Array(1024)), true, "a small queue still gets through");
  w.open();
});

Deno.test("outbound: held bytes count against the same bound until given back", () => {
  const w = new GatedWriter();
  let overflowed = 0;
  const q = new OutboundQueue(w, 4096, () => overflowed++, () => {});
  assert.equal(q.hold(3000), true);
  assert.equal(q.cost, 3000 + CHUNK_OVERHEAD);
  q.unhold(3000);
  assert.equal(q.cost, 0);
  assert.equal(q.hold(3000), true);
  assert.equal(q.hold(3000), false, "6000 held would cross 4096");
  assert.equal(overflowed, 1);
});

Deno.test("outbound: a large relayed frame is written on its own, and its buffer reused only once written", async () => {
  const w = new GatedWriter();
  w.gated = true;
  const q = new OutboundQueue(w, 1 << 20, () => {}, () => {});
  const big = keepFrame(new Uint8Array(32_787).fill(7));
  q.push(Uint8Array.of(8, 1));
  q.push(big);
  q.push(Uint8Array.of(8, 2));
  await tick(); // the first write waits on the socket
  // Still in flight: a new frame of the same size must not get its buffer.
  const other = keepFrame(new Uint8Array(32_787).fill(9));
  assert.notEqual(other.buffer, big.buffer);
  w.open();
  await q.drained();
  assert.deepEqual(w.writes.map((b) => b.length), [2, 32_787, 2], "not copied into a join");
  assert.equal(w.writes[1].buffer, big.buffer);
  assert.ok(w.writes[1].every((b) => b === 7));
  const next = keepFrame(new Uint8Array(32_787));
  assert.equal(next.buffer, big.buffer, "written: back in the pool");
  // Given back once: the buffer now in use is not handed out a second time.
  assert.notEqual(keepFrame(new Uint8Array(32_787)).buffer, big.buffer);
});

Deno.test("outbound: large frames viewing one shared buffer (a Redis relay batch) are charged their own bytes", async () => {
  const w = new GatedWriter();
  w.gated = true;
  const q = new OutboundQueue(
    w,
    1 << 20,
    () => assert.fail("a reader within its bound was dropped"),
    () => {},
  );
  const frame = 32 * 1024;
  const batch = new Uint8Array(8 * frame).map((_, i) => i & 255);
  // One batch delivered in one turn, before any write: charged the 256 KiB batch each, eight
  // frames would cost 2 MiB, over the bound.
  for (let i = 0; i < 8; i++) {
    assert.equal(q.push(batch.subarray(i * frame, (i + 1) * frame)), true);
  }
  assert.ok(q.cost < 8 * (frame + 4096), `charged ${q.cost} for ${q.pending} bytes`);
  await tick(); // the writes wait on the socket: the batch must not be what they hold
  assert.ok(w.writes.every((b) => b.buffer !== batch.buffer), "written from copies, not the batch");
  w.open();
  await q.drained();
  assert.deepEqual(concatBytes(w.writes), batch, "written whole and in order");
  assert.equal(q.cost, 0);
});
