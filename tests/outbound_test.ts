/** The outbound queue: one write per tick, a hard bound, and no pinning of shared blocks by slow readers. */
import assert from "node:assert/strict";
import type { ByteWriter } from "../src/lib/async.ts";
import { CHUNK_OVERHEAD, OutboundQueue, QueueBudget } from "../src/server/chat/outbound.ts";
import { keepFrame } from "../src/server/chat/arena.ts";

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

Deno.test("outbound: small frames are charged what they cost, not only their bytes", async () => {
  const w = new GatedWriter();
  w.gated = true;
  let discarded = -1;
  const q = new OutboundQueue(w, 64 * 1024, (n) => (discarded = n), () => {});
  q.push(new Uint8Array(22));
  await tick(); // a write is waiting: what follows is queued behind a reader that does not read
  let accepted = 1;
  while (q.push(new Uint8Array(22))) accepted++;
  // 22 payload bytes each would allow ~2980 frames; their real cost allows far fewer.
  assert.ok(accepted <= (64 * 1024) / (22 + CHUNK_OVERHEAD) + 1, `${accepted} frames queued`);
  assert.ok(discarded >= 60 * 1024, "the owner is told how much is thrown away");
  w.open();
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
  while (big.push(new Uint8Array(8 * 1024)));
  assert.deepEqual(dropped, ["big"]);
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
