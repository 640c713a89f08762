/** A session's handshakes: asks limited while unanswered, offers forgotten past their ttl. */
import assert from "node:assert/strict";
import { HandshakeBook } from "../src/server/chat/handshake_book.ts";
import { Op } from "../src/protocol/mod.ts";

const limits = { maxPendingAsks: 2, handshakeTtlMs: 1000 };
const offer = (n: number) => ({ a: `asker${n}`, b: "bob", password: n });

Deno.test("session handshakes: unanswered asks are limited; an answered one no longer counts", () => {
  const hs = new HandshakeBook(limits, () => {});
  const k = (n: number) => ({ a: "alice", b: `b${n}`, password: n });
  try {
    assert.equal(hs.mayAsk(k(1)), true);
    hs.asked(k(1));
    assert.equal(hs.mayAsk(k(1)), false, "the same handshake twice");
    hs.asked(k(2));
    assert.equal(hs.mayAsk(k(3)), false, "two unanswered is the limit");
    hs.delivered(Op.TCPAccept, k(1), "alice");
    assert.equal(hs.mayAsk(k(3)), true, "B answered the first");
  } finally {
    hs.takeAll(); // stops the timers
  }
});

Deno.test("session handshakes: offers that nobody ends are dropped once past their ttl", () => {
  let now = 0;
  const hs = new HandshakeBook(limits, () => {}, () => now);
  // Offers whose askers' node died: no TCPAbort ever comes for them.
  for (let i = 0; i < 100; i++) hs.delivered(Op.TCPAsk, offer(i), "bob");
  assert.equal(
    hs.invitedCount,
    100,
    "all within their ttl: kept (the session aborts them at its end)",
  );
  now = 5000;
  for (let i = 100; i < 1100; i++) hs.delivered(Op.TCPAsk, offer(i), "bob");
  assert.ok(hs.invitedCount <= 1000, `the stale 100 are gone (${hs.invitedCount})`);
  now = 10_000;
  hs.delivered(Op.TCPAsk, offer(9999), "bob");
  for (let i = 0; i < 2000; i++) hs.delivered(Op.TCPAsk, offer(20_000 + i), "bob");
  assert.ok(hs.invitedCount <= 2001, `one ttl's worth at most (${hs.invitedCount})`);
  const keys = hs.takeAll();
  assert.ok(
    keys.every((k) => k.password >= 9999),
    "what is aborted at the end is only live offers",
  );
  assert.equal(hs.invitedCount, 0);
});

Deno.test("session handshakes: a TCPAbort forgets the offer; an offer to someone else is not kept", () => {
  const hs = new HandshakeBook(limits, () => {});
  hs.delivered(Op.TCPAsk, offer(1), "bob");
  hs.delivered(Op.TCPAsk, { a: "bob", b: "carol", password: 2 }, "bob");
  assert.equal(hs.invitedCount, 1);
  hs.delivered(Op.TCPAbort, offer(1), "bob");
  assert.equal(hs.invitedCount, 0);
});
