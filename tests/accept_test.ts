/**
 * src/server/accept.ts: a client connection from accept to served or
 * refused. The connections here are plain objects, not sockets: the pipeline
 * takes any Deno.Conn (a TLS or WebSocket-backed one alike).
 */
import assert from "node:assert/strict";
import { ClientPipeline } from "../src/server/accept.ts";
import { Admission, type Ticket } from "../src/server/limits/admission.ts";
import { FdBudget } from "../src/server/limits/fd_budget.ts";
import type { Identified } from "../src/server/net/client_address.ts";
import { Metrics } from "../src/server/metrics.ts";
import { WarnThrottle } from "../src/lib/rate.ts";
import { Logger } from "../src/lib/log.ts";
import { withDeadline } from "../src/lib/async.ts";

/** A connection whose only behaviour is closing: what a pending read sees end. */
class FakeConn {
  closed = false;
  #waiters: Array<() => void> = [];
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.#waiters) w();
  }
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.#waiters.push(r));
  }
}

const fake = (conn: Deno.Conn) => conn as unknown as FakeConn;

function setup(fds: number, identify: (conn: Deno.Conn) => Identified | Promise<Identified>) {
  const metrics = new Metrics();
  const budget = new FdBudget(fds);
  const limits = {
    maxConnections: 100,
    maxConnsPerAddress: 1,
    maxSessionsPerAddress: 0,
    connRatePerAddress: 0,
    connBurstPerAddress: 1,
  };
  const warnings: string[] = [];
  const log = new Logger("warn", {}, (line) => warnings.push(JSON.parse(line).msg));
  const served: Array<{ address: string; initial: Uint8Array }> = [];
  const pipeline = new ClientPipeline({
    admission: new Admission(limits, budget, metrics),
    budget,
    metrics,
    warn: new WarnThrottle(log, 60_000),
    identify,
    // Served until the socket closes, as a read loop would be.
    serve: (conn: Deno.Conn, ticket: Ticket, initial: Uint8Array, onClose: () => void) => {
      served.push({ address: ticket.address, initial });
      return fake(conn).whenClosed().then(() => {
        ticket.release();
        onClose();
      });
    },
  });
  const take = (conn: FakeConn) => pipeline.take(conn as unknown as Deno.Conn);
  return { pipeline, take, metrics, budget, served, warnings };
}

const peer = (address: string, initial = new Uint8Array(0)): Identified => ({
  ok: true,
  address,
  initial,
});

Deno.test("accept: an identified connection is admitted and served; one over a limit is refused and closed", () => {
  const { take, metrics, budget, served, warnings } = setup(10, () => peer("10.0.0.1"));
  const first = new FakeConn(), second = new FakeConn();
  take(first);
  take(second);
  assert.deepEqual(served.map((s) => s.address), ["10.0.0.1"], "only the first is served");
  assert.equal(first.closed, false);
  assert.equal(second.closed, true, "the refused one is closed");
  assert.equal(metrics.connectionsOpened, 2);
  assert.equal(metrics.connectionsRejected, 1);
  assert.deepEqual(metrics.refused, { per_address: 1 });
  assert.deepEqual(warnings, ["connection refused"]);
  assert.equal(budget.used, 1, "the served one holds its descriptor");
});

Deno.test("accept: a connection identified later holds a descriptor meanwhile, refused past the budget", async () => {
  const header = Promise.withResolvers<Identified>();
  const { take, metrics, budget, served } = setup(1, () => header.promise);
  const waiting = new FakeConn(), over = new FakeConn();
  take(waiting);
  assert.equal(budget.used, 1, "the pending header counts");
  take(over);
  assert.equal(over.closed, true, "no descriptor left for a second one");
  assert.deepEqual(metrics.refused, { fd_budget: 1 });
  header.resolve(peer("192.0.2.7", Uint8Array.of(1, 2)));
  await header.promise; // the pipeline's own `then`, attached first, has run
  assert.deepEqual(served.map((s) => [s.address, [...s.initial]]), [["192.0.2.7", [1, 2]]]);
  assert.equal(budget.used, 1, "the pending slot became the admitted one, not two");
});

Deno.test("accept: a refused identification is counted as a PROXY header refusal and closed", () => {
  const { take, metrics, served, warnings } = setup(10, () => ({
    ok: false,
    address: "10.0.0.9",
    reason: "bad PROXY header: junk",
  }));
  const conn = new FakeConn();
  take(conn);
  assert.equal(conn.closed, true);
  assert.equal(served.length, 0);
  assert.equal(metrics.proxyHeaderRefused, 1);
  assert.deepEqual(metrics.refused, { proxy_header: 1 });
  assert.deepEqual(warnings, ["connection refused: PROXY header"]);
});

Deno.test("accept: shutdown closes connections being identified and served, and waits for them", async () => {
  let n = 0;
  const { pipeline, take, budget } = setup(10, (conn) =>
    n++ === 0
      ? peer("10.0.0.1")
      // A header that never comes: the read ends when shutdown closes the socket.
      : fake(conn).whenClosed().then(() => ({
        ok: false,
        address: "10.0.0.2",
        reason: "closed before the PROXY header",
      })));
  const served = new FakeConn(), waiting = new FakeConn();
  take(served);
  take(waiting);
  assert.equal(budget.used, 2);
  await withDeadline(pipeline.closeAll(), 1000, () => new Error("closeAll did not return"));
  assert.equal(served.closed, true, "the served connection was closed");
  assert.equal(waiting.closed, true, "the one still sending its header was closed");
  assert.equal(budget.used, 0, "both descriptors are back once their handlers ended");
});
