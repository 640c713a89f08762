/** src/server/chat/flood_control.ts: a session's two budgets, charged once per read. */
import assert from "node:assert/strict";
import { Op } from "../src/protocol/mod.ts";
import { FloodControl, type FloodLimits } from "../src/server/chat/flood_control.ts";

const OFF: FloodLimits = { rateFrames: 0, rateFramesBurst: 0, rateBytes: 0, rateBytesBurst: 0 };

/** A flood control on a clock the test moves, reaching `users` users per SMA. */
function control(limits: Partial<FloodLimits>, users = 1) {
  const clock = { now: 0, fanOuts: 0 };
  const fanOut = () => {
    clock.fanOuts++;
    return users;
  };
  return { flood: new FloodControl({ ...OFF, ...limits }, fanOut, () => clock.now), clock };
}

Deno.test("flood control: frames fit the burst, then each one over it is a debt at the rate", () => {
  const { flood, clock } = control({ rateFrames: 10, rateFramesBurst: 5 });
  for (let i = 0; i < 5; i++) flood.count(Op.SPM, 20);
  assert.equal(flood.charge(), 0, "five frames fit a burst of five");
  flood.count(Op.SPM, 20);
  flood.count(Op.SPM, 20);
  assert.equal(flood.charge(), 200, "two frames over, at 10/s: 200 ms");
  clock.now += 200;
  assert.equal(flood.charge(), 0, "the debt is paid in time");
});

Deno.test("flood control: a read is charged once; the next read starts from nothing", () => {
  const { flood, clock } = control({ rateFrames: 10, rateFramesBurst: 1 });
  flood.count(Op.SPM, 20);
  flood.count(Op.SPM, 20);
  assert.equal(flood.charge(), 100);
  clock.now += 100;
  assert.equal(flood.charge(), 0, "a read with no frame charges nothing again");
});

Deno.test("flood control: an SMA costs its size times the users it reaches, other frames their size", () => {
  const { flood, clock } = control({ rateBytes: 1000, rateBytesBurst: 1000 }, 10);
  flood.count(Op.SPM, 500);
  assert.equal(flood.charge(), 0, "500 bytes fit a burst of 1000");
  flood.count(Op.SMA, 100);
  assert.equal(flood.charge(), 500, "100 bytes to 10 users: 1000, 500 over at 1000/s");
  assert.equal(clock.fanOuts, 1, "the fan-out is asked per SMA");
  clock.now += 500;
  flood.count(Op.SMA, 100);
  assert.equal(flood.charge(), 1000, "the next SMA costs 1000 again");
});

Deno.test("flood control: the pause is the larger of the two debts", () => {
  const { flood } = control({
    rateFrames: 10,
    rateFramesBurst: 1,
    rateBytes: 1000,
    rateBytesBurst: 100,
  });
  flood.count(Op.SPM, 600);
  assert.equal(flood.charge(), 500, "bytes owe 500 ms, frames nothing");
  for (let i = 0; i < 10; i++) flood.count(Op.SPM, 1);
  assert.equal(flood.charge(), 1000, "frames owe 1000 ms, bytes 510");
});

Deno.test("flood control: a rate that is off limits nothing and never asks the fan-out", () => {
  const { flood, clock } = control({ rateFrames: 10, rateFramesBurst: 1000 }, 1000);
  for (let i = 0; i < 100; i++) flood.count(Op.SMA, 65_000);
  assert.equal(flood.charge(), 0, "bytes are not limited");
  assert.equal(clock.fanOuts, 0, "no byte budget: the fan-out is not needed");
  const off = control({}).flood;
  for (let i = 0; i < 10_000; i++) off.count(Op.SPM, 65_000);
  assert.equal(off.charge(), 0, "both off: never a pause");
});
