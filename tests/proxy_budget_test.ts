/**
 * With --proxy-protocol, a trusted peer's connection that has not finished
 * its PROXY header yet holds a descriptor like any other: it counts in the
 * node's budget, and once the budget is spent the next one is refused.
 */
import assert from "node:assert/strict";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { startServer } from "../src/server/server.ts";
import { eventually } from "./helpers/harness.ts";
import { SourcedClient } from "./helpers/sourced_client.ts";

Deno.test({
  name: "PROXY header pending: counted in the descriptor budget, refused past it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const maxFds = 8;
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      proxyProtocol: true,
      proxyTrusted: "127.0.0.1/32",
      proxyHeaderTimeoutMs: 30_000,
      maxFds,
    });
    const m = server.context.metrics;
    const clients: SourcedClient[] = [];
    try {
      // The trusted balancer's connections, each waiting for its header.
      for (let i = 0; i < maxFds; i++) {
        clients.push(await SourcedClient.connect(server.port, "127.0.0.1"));
      }
      await eventually(
        () => m.gauges.fd_budget_used() === maxFds,
        3000,
        "pending headers hold the budget",
      );
      const over = await SourcedClient.connect(server.port, "127.0.0.1");
      clients.push(over);
      await over.closed;
      assert.equal(m.refused.fd_budget, 1, "the one past the budget is refused as such");

      // The budget comes back when they go; then a header-ful connection logs in.
      for (const c of clients.splice(0)) c.close();
      await eventually(() => m.gauges.fd_budget_used() === 0, 3000, "leases given back");
      const c = await SourcedClient.connect(server.port, "127.0.0.1");
      clients.push(c);
      await c.writeRaw(new TextEncoder().encode("PROXY TCP4 127.0.0.9 127.0.0.1 5555 7777\r\n"));
      c.send({ op: Op.CR, pseudo: "alice" });
      assert.deepEqual(await c.next(), { op: Op.ERROR, code: ErrorCode.OK });
      assert.equal(m.gauges.fd_budget_used(), 1, "one lease, not two, once admitted");
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  },
});
