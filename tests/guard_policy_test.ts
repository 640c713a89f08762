/**
 * The link-guessing rule (src/server/links/guard_policy.ts): strangers are
 * refused without touching A and B's handshakes, owner-address misses spend a
 * per-handshake budget, and the address limiter stays bounded. The rule is
 * exercised through a small model broker built only from the policy's parts.
 */
import assert from "node:assert/strict";
import {
  AddressLimiter,
  clientKey,
  judgeAttempt,
  type LinkRole,
  sameClient,
} from "../src/server/links/guard_policy.ts";
import { StrikeLedger } from "../src/presence/strike_ledger.ts";
import { Rng } from "./helpers/prng.ts";

Deno.test("client keys: IPv4 exact, IPv4-mapped unmapped, IPv6 by /64", () => {
  assert.equal(clientKey("10.0.0.1"), "10.0.0.1");
  assert.equal(clientKey("::ffff:10.0.0.1"), "10.0.0.1");
  assert.equal(clientKey("2001:db8:1:2:aaaa::10"), "2001:db8:1:2::/64");
  assert.equal(clientKey("2001:db8:1:2:aaaa::10", 128), "2001:db8:1:2:aaaa::10/128");
  assert.equal(clientKey("unix:/tmp/x"), "unix:/tmp/x");
  assert.ok(sameClient("10.0.0.1", "::ffff:10.0.0.1"));
  assert.ok(!sameClient("10.0.0.1", "10.0.0.2"));
  assert.ok(sameClient("2001:db8:1:2::10", "2001:db8:1:2:ffff::99"));
  assert.ok(!sameClient("2001:db8:1:2::10", "2001:db8:1:3::10"));
  assert.ok(!sameClient("2001:db8:1:2::10", "2001:db8:1:2::99", 128));
  assert.ok(!sameClient("10.0.0.1", "::a00:1")); // IPv4-compatible is not IPv4
});

Deno.test("judgeAttempt: only the named user's address is an owner", () => {
  assert.equal(judgeAttempt({ role: "accept", from: "10.0.0.2", owner: "10.0.0.2" }), "owner");
  assert.equal(judgeAttempt({ role: "connect", from: "10.0.0.9", owner: "10.0.0.2" }), "foreign");
  assert.equal(judgeAttempt({ role: "connect", from: "10.0.0.2", owner: null }), "foreign");
});

Deno.test("StrikeLedger: each pending handshake takes at most `budget` misses", () => {
  const ledger = new StrikeLedger<string>();
  ledger.open("h1");
  assert.deepEqual(ledger.strike(["h1"], 3), []);
  ledger.open("h2"); // opened after one miss: its budget is whole
  assert.deepEqual(ledger.strike(["h1", "h2"], 3), []);
  assert.deepEqual(ledger.strike(["h1", "h2"], 3), ["h1"]);
  assert.equal(ledger.strikesOf("h1"), undefined);
  assert.equal(ledger.strikesOf("h2"), 2);
  assert.deepEqual(ledger.strike(["h1", "h2", "unknown"], 3), ["h2"]);
  assert.equal(ledger.size, 0);
  ledger.open("h3");
  ledger.close("h3");
  assert.deepEqual(ledger.strike(["h3"], 3), []);
  assert.throws(() => ledger.strike([], 0), RangeError);
});

/** A model broker: pending handshakes, A's and B's chat addresses, the three policy parts. */
class ModelBroker {
  readonly ledger = new StrikeLedger<number>();
  readonly limiter = new AddressLimiter({ limit: 20, windowMs: 60_000, maxKeys: 1000 });
  readonly pending = new Set<number>();
  readonly aborted: number[] = [];
  /** Misses that were looked up against each handshake while it was pending. */
  readonly reached = new Map<number, number>();
  constructor(readonly addrA: string, readonly addrB: string) {}

  ask(p: number): void {
    this.pending.add(p);
    this.ledger.open(p);
    this.reached.set(p, 0);
  }

  /** A private-end frame naming (A, B, p) from `from`: "joined" or "refused". */
  attempt(role: LinkRole, p: number, from: string, now: number): "joined" | "refused" {
    const key = clientKey(from);
    if (this.limiter.blocked(key, now)) return "refused";
    const owner = role === "accept" ? this.addrB : this.addrA;
    if (judgeAttempt({ role, from, owner }) === "foreign") {
      this.limiter.record(key, now);
      return "refused";
    }
    if (this.pending.has(p)) {
      this.pending.delete(p);
      this.ledger.close(p);
      return "joined";
    }
    this.limiter.record(key, now);
    for (const q of this.pending) this.reached.set(q, this.reached.get(q)! + 1);
    for (const q of this.ledger.strike(this.pending, 3)) {
      this.pending.delete(q);
      this.aborted.push(q);
    }
    return "refused";
  }
}

Deno.test("a stranger guessing every 200 ms cannot stop A and B completing 10 links, nor join", () => {
  const rng = new Rng(7);
  const rnd = () => rng.float();
  const broker = new ModelBroker("198.51.100.1", "203.0.113.2");
  let now = 0;
  let links = 0;
  for (let i = 0; i < 10; i++) {
    const p = Math.floor(rnd() * 65536);
    broker.ask(p);
    for (let t = 0; t < 25; t++) { // 5 s of guessing per handshake, both roles
      now += 200;
      const guess = Math.floor(rnd() * 65536);
      const role = t % 2 === 0 ? "connect" : "accept";
      assert.equal(broker.attempt(role, guess, "192.0.2.66", now), "refused");
      // Even the right password is refused from a stranger's address.
      assert.equal(broker.attempt(role, p, "192.0.2.66", now), "refused");
    }
    if (broker.attempt("connect", p, "198.51.100.1", now) === "joined") links++;
  }
  assert.equal(links, 10);
  assert.deepEqual(broker.aborted, []);
  assert.ok(broker.limiter.blocked("192.0.2.66", now), "the stranger's own address is blocked");
});

Deno.test("guesses from 50 addresses never join a pending link", () => {
  const broker = new ModelBroker("198.51.100.1", "203.0.113.2");
  broker.ask(4242);
  let now = 0;
  for (let a = 0; a < 50; a++) {
    for (let p = 0; p < 65536; p += 97) {
      now += 1;
      assert.equal(broker.attempt("connect", p, `10.1.${a}.7`, now), "refused");
    }
    assert.equal(broker.attempt("connect", 4242, `10.1.${a}.7`, now), "refused");
  }
  assert.ok(broker.pending.has(4242));
  assert.equal(broker.ledger.strikesOf(4242), 0);
});

Deno.test("misses from an owner address reach a handshake at most 3 times", () => {
  // A neighbour behind B's NAT is B to the server: it can spend the budget (a
  // documented limit), but never more than 3 guesses per handshake.
  const rng = new Rng(11);
  const rnd = () => rng.float();
  const broker = new ModelBroker("198.51.100.1", "203.0.113.2");
  let now = 0;
  let joined = 0;
  for (let round = 0; round < 2000; round++) {
    if (broker.pending.size < 4) broker.ask(Math.floor(rnd() * 65536));
    now += 10;
    const guess = Math.floor(rnd() * 65536);
    if (broker.attempt("accept", guess, "203.0.113.2", now) === "joined") joined++;
    if (round % 100 === 0) now += 61_000; // let the limiter's window pass now and then
  }
  for (const [, n] of broker.reached) assert.ok(n <= 3, `a handshake took ${n} misses`);
  assert.ok(broker.aborted.length > 0);
  assert.ok(joined <= 1, `${joined} lucky joins`);
});

Deno.test("AddressLimiter: limit within the window, free again after it", () => {
  const l = new AddressLimiter({ limit: 3, windowMs: 1000, maxKeys: 10 });
  l.record("a", 0);
  l.record("a", 100);
  assert.ok(!l.blocked("a", 200));
  l.record("a", 200);
  assert.ok(l.blocked("a", 200));
  assert.ok(!l.blocked("b", 200));
  assert.ok(l.blocked("a", 999));
  assert.ok(!l.blocked("a", 1001)); // the stamp at 0 left the window
  assert.ok(!l.blocked("a", 1201));
  assert.equal(l.trackedKeys, 0);
});

Deno.test("AddressLimiter: memory stays bounded, expired keys go first", () => {
  const l = new AddressLimiter({ limit: 2, windowMs: 1000, maxKeys: 100 });
  l.record("old", 0);
  l.record("keep", 900);
  l.record("keep", 900);
  for (let i = 0; i < 10_000; i++) l.record(`k${i}`, 1500);
  assert.ok(l.trackedKeys <= 100);
  const l2 = new AddressLimiter({ limit: 2, windowMs: 1000, maxKeys: 3 });
  l2.record("stale", 0);
  l2.record("live1", 900);
  l2.record("live1", 900);
  l2.record("live2", 950);
  l2.record("new", 1100); // full: "stale" has nothing left in the window, so it goes
  assert.equal(l2.trackedKeys, 3);
  assert.ok(l2.blocked("live1", 1100));
  // Repeated records keep at most `limit` stamps per key.
  for (let i = 0; i < 1000; i++) l2.record("new", 1100);
  assert.ok(l2.blocked("new", 1100) && !l2.blocked("new", 2101));
});
