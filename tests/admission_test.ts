/** The node's admission of connections: per-address caps and rate, eviction, descriptor budget. */
import assert from "node:assert/strict";
import { Admission, type AdmissionLimits, Ticket } from "../src/server/limits/admission.ts";
import { defaultFdBudget, FdBudget, processFdLimit } from "../src/server/limits/fd_budget.ts";
import { Metrics } from "../src/server/metrics.ts";

const limits: AdmissionLimits = {
  maxConnections: 4,
  maxConnsPerAddress: 3,
  maxSessionsPerAddress: 2,
  connRatePerAddress: 0,
  connBurstPerAddress: 1,
};

function setup(over: Partial<AdmissionLimits> = {}, fds = 100) {
  const metrics = new Metrics();
  const budget = new FdBudget(fds);
  return { a: new Admission({ ...limits, ...over }, budget, metrics), budget, metrics };
}

function ticket(t: Ticket | string): Ticket {
  assert.ok(t instanceof Ticket, `refused: ${t}`);
  return t;
}

Deno.test("admission: connections per address are capped; other addresses are not", () => {
  const { a } = setup();
  for (let i = 0; i < 3; i++) ticket(a.admit("10.0.0.1"));
  assert.equal(a.admit("10.0.0.1"), "per_address");
  ticket(a.admit("10.0.0.2"));
});

Deno.test("admission: new connections per address follow a token bucket", () => {
  const { a } = setup({ connRatePerAddress: 1, connBurstPerAddress: 2, maxConnsPerAddress: 0 });
  ticket(a.admit("10.0.0.1")).release();
  ticket(a.admit("10.0.0.1")).release();
  assert.equal(a.admit("10.0.0.1"), "address_rate", "closing does not give the rate back");
  ticket(a.admit("10.0.0.2"));
});

Deno.test("admission: a full node evicts its oldest never-logged-in connection", () => {
  const { a, metrics } = setup({ maxConnsPerAddress: 0 });
  const evicted: string[] = [];
  const ts = ["old", "logged", "mid", "new"].map((name) => {
    const t = ticket(a.admit("10.0.0.1"));
    t.onEvict(() => evicted.push(name));
    return t;
  });
  assert.equal(ts[1].claimSession(2), true); // logged in: never evicted
  ticket(a.admit("10.0.0.2"));
  assert.deepEqual(evicted, ["old"]);
  assert.equal(metrics.evictions, 1);
  ts[0].release(); // its handler closed it
  ticket(a.admit("10.0.0.2"));
  assert.deepEqual(evicted, ["old", "mid"]);
});

Deno.test("admission: with nobody to evict, a full node refuses", () => {
  const { a } = setup({ maxConnsPerAddress: 0 });
  for (let i = 0; i < 4; i++) assert.equal(ticket(a.admit(`10.0.0.${i}`)).claimSession(2), true);
  assert.equal(a.admit("10.0.0.9"), "node_full");
});

Deno.test("admission: sessions per address are capped, and a failed login gives its place back", () => {
  const { a } = setup({ maxConnections: 10 });
  const [x, y, z] = [0, 1, 2].map(() => ticket(a.admit("10.0.0.1")));
  assert.equal(x.claimSession(2), true);
  assert.equal(y.claimSession(2), true);
  assert.equal(z.claimSession(2), false);
  y.dropSession();
  assert.equal(z.claimSession(2), true);
  x.release();
  assert.equal(y.claimSession(2), true);
});

Deno.test("admission: the descriptor budget bounds every connection", () => {
  const { a, budget } = setup({ maxConnections: 100, maxConnsPerAddress: 0 }, 2);
  const t1 = ticket(a.admit("10.0.0.1"));
  t1.claimSession(2);
  const t2 = ticket(a.admit("10.0.0.1"));
  t2.claimSession(2);
  assert.equal(a.admit("10.0.0.1"), "fd_budget");
  t1.release();
  t1.release(); // idempotent
  assert.equal(budget.used, 1);
  ticket(a.admit("10.0.0.1"));
});

Deno.test("fd budget: the default is the process limit less headroom", () => {
  const limits = "Limit                     Soft Limit           Hard Limit           Units\n" +
    "Max open files            1024                 4096                 files\n";
  assert.equal(processFdLimit(() => limits), 1024);
  assert.equal(processFdLimit(() => limits.replace("1024 ", "unlimited ")), null);
  assert.equal(
    processFdLimit(() => {
      throw new Error("no /proc");
    }),
    null,
  );
  assert.equal(defaultFdBudget(256), 192);
  assert.equal(defaultFdBudget(20000), 18000);
  assert.ok(defaultFdBudget(null) > 1000);
});

Deno.test("admission: a full node refusing 30,000 new addresses remembers a bounded number", () => {
  const { a } = setup({ maxConnections: 1, maxConnsPerAddress: 0 });
  const held = ticket(a.admit("10.0.0.1"));
  assert.ok(held.claimSession(0)); // logged in: nothing to evict
  for (let i = 0; i < 30_000; i++) {
    assert.equal(a.admit(`2001:db8:${i.toString(16)}::1`), "node_full");
  }
  assert.ok(a.addresses <= 10_001, `${a.addresses} addresses remembered`);
  assert.equal(a.open, 1);
});
