/** The actor mailbox and the ordered replies: the two pieces a session's order rests on. */
import assert from "node:assert/strict";
import { Mailbox } from "../src/server/chat/mailbox.ts";
import { OrderedReplies } from "../src/server/chat/replies.ts";

Deno.test("mailbox: a message to an idle mailbox is handled before post returns", () => {
  const seen: number[] = [];
  const box = new Mailbox<number>((m) => void seen.push(m), (e) => assert.fail(String(e)));
  box.post(1);
  assert.deepEqual(seen, [1]);
  assert.equal(box.busy, false);
});

Deno.test("mailbox: a handler's promise holds the mailbox; later messages wait in order", async () => {
  const seen: number[] = [];
  const gate = Promise.withResolvers<void>();
  const box = new Mailbox<number>((m) => {
    seen.push(m);
    if (m === 1) return gate.promise;
  }, (e) => assert.fail(String(e)));
  box.post(1);
  box.post(2);
  box.post(3);
  assert.deepEqual(seen, [1], "2 and 3 wait while 1 is handled");
  assert.equal(box.busy, true);
  assert.equal(box.depth, 2);
  const idle = box.idle();
  gate.resolve();
  await idle;
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(box.busy, false);
  assert.equal(box.depth, 0);
});

Deno.test("mailbox: a failing handler is reported and the next message is still handled", async () => {
  const errors: string[] = [];
  const seen: string[] = [];
  const box = new Mailbox<string>((m) => {
    seen.push(m);
    if (m === "sync") throw new Error("sync");
    if (m === "async") return Promise.reject(new Error("async"));
  }, (e) => errors.push((e as Error).message));
  box.post("sync");
  box.post("async");
  box.post("after");
  await box.idle();
  assert.deepEqual(errors, ["sync", "async"]);
  assert.deepEqual(seen, ["sync", "async", "after"]);
});

Deno.test("mailbox: many messages behind a slow one keep their order", async () => {
  const seen: number[] = [];
  const gate = Promise.withResolvers<void>();
  const box = new Mailbox<number>((m) => {
    seen.push(m);
    if (m === 0) return gate.promise;
  }, (e) => assert.fail(String(e)));
  for (let i = 0; i < 3000; i++) box.post(i); // past the compaction threshold
  gate.resolve();
  await box.idle();
  assert.deepEqual(seen, Array.from({ length: 3000 }, (_, i) => i));
});

const frame = (n: number) => Uint8Array.of(8, n);

Deno.test("replies: with nothing pending a reply goes out at once", () => {
  const out: number[] = [];
  const r = new OrderedReplies((b) => out.push(b[1]), 8);
  r.now(frame(1), frame(2));
  assert.deepEqual(out, [1, 2]);
});

Deno.test("replies: a later reply waits for an earlier one still in flight", async () => {
  const out: number[] = [];
  const r = new OrderedReplies((b) => out.push(b[1]), 8);
  const first = Promise.withResolvers<Uint8Array[]>();
  const second = Promise.withResolvers<Uint8Array[]>();
  r.later(first.promise);
  r.later(second.promise);
  r.now(frame(3));
  second.resolve([frame(2)]);
  await new Promise((res) => setTimeout(res, 0));
  assert.deepEqual(out, [], "nothing overtakes the first reply");
  first.resolve([frame(1)]);
  await r.settled();
  assert.deepEqual(out, [1, 2, 3]);
});

Deno.test("replies: past maxInFlight the caller is given a promise to wait on", async () => {
  const r = new OrderedReplies(() => {}, 3);
  const gates = [0, 1, 2].map(() => Promise.withResolvers<Uint8Array[]>());
  assert.equal(r.later(gates[0].promise), undefined);
  assert.equal(r.later(gates[1].promise), undefined);
  const wait = r.later(gates[2].promise);
  assert.ok(wait instanceof Promise, "the third in flight holds the caller");
  for (const g of gates) g.resolve([]);
  await wait;
  assert.equal(r.later(Promise.resolve([])), undefined, "in-flight count went back down");
  await r.settled();
});
