/** src/lib/rate.ts: the token bucket behind flood control and the warning throttle. */
import assert from "node:assert/strict";
import { TokenBucket, WarnThrottle } from "../src/lib/rate.ts";
import { Logger } from "../src/lib/log.ts";

Deno.test("token bucket: a burst, then the rate; debt is paid back in time", () => {
  let now = 0;
  const b = new TokenBucket(10, 5, () => now);
  for (let i = 0; i < 5; i++) assert.equal(b.tryTake(), true, `burst ${i}`);
  assert.equal(b.tryTake(), false, "burst spent");
  now += 100; // 10/s: one token back
  assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
  b.spend(20);
  assert.equal(b.debtMs(), 2000, "20 tokens owed at 10/s");
  now += 2000;
  assert.equal(b.debtMs(), 0);
  now += 10_000;
  for (let i = 0; i < 5; i++) assert.equal(b.tryTake(), true, "refilled to the burst, no more");
  assert.equal(b.tryTake(), false);
});

Deno.test("token bucket: a rate of 0 is no limit", () => {
  const b = new TokenBucket(0, 1, () => 0);
  for (let i = 0; i < 100; i++) assert.equal(b.tryTake(), true);
  b.spend(1e9);
  assert.equal(b.debtMs(), 0);
});

Deno.test("warn throttle: a few lines per reason, then one summary per interval", () => {
  let now = 0;
  const lines: Array<{ msg: string; count?: number }> = [];
  const log = new Logger("warn", {}, (l) => lines.push(JSON.parse(l)));
  const w = new WarnThrottle(log, 1000, 3, () => now);
  for (let i = 0; i < 100; i++) w.warn("bad greeting", { i });
  w.warn("malformed frame");
  assert.equal(lines.filter((l) => l.msg === "bad greeting").length, 3);
  assert.equal(lines.filter((l) => l.msg === "malformed frame").length, 1, "reasons apart");
  now += 1000;
  w.warn("bad greeting");
  const summary = lines.find((l) => l.msg === "warnings suppressed");
  assert.equal(summary?.count, 97);
  assert.equal(lines.at(-1)?.msg, "bad greeting", "a new interval shows lines again");
});
