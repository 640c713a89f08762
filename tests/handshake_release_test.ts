/**
 * Issue 13: the TCPAborts of a user's pending handshakes, sent when the user
 * leaves, must never reach the next holder of the same pseudo. A store whose
 * cancel answers slowly (the seam below) widens the window in which a new
 * holder can log in; the new holder must hear nothing of the old handshakes.
 */
import assert from "node:assert/strict";
import { MemoryHandshakeRegistry, MemoryPresence } from "../src/presence/memory.ts";
import type { HandshakeKey } from "../src/protocol/mod.ts";
import { describeFrame } from "../src/client/client.ts";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { startServer } from "../src/server/server.ts";
import { clientsOn } from "./helpers/harness.ts";
import { sleep } from "../src/lib/async.ts";

/** A store whose handshake cancel takes 150 ms, like a slow network hop in the abort path. */
class SlowCancel extends MemoryHandshakeRegistry {
  override async cancel(k: HandshakeKey): Promise<boolean> {
    await sleep(150);
    return super.cancel(k);
  }
}

for (const role of ["asker", "invited"] as const) {
  Deno.test(`a leaving ${role}'s aborts reach the other side, not the pseudo's next holder`, async () => {
    const presence = Object.assign(new MemoryPresence({ nodeId: "n1" }), {
      handshakes: new SlowCancel(),
    });
    const server = await startServer({ host: "127.0.0.1", port: 0 }, { presence: () => presence });
    const { clients, connect, login } = clientsOn(() => server.port);
    try {
      const alice = await login("alice");
      const bob = await login("bob");
      const [a, b] = role === "asker" ? ["alice", "bob"] : ["bob", "alice"];
      const asker = role === "asker" ? alice : bob;
      const invited = role === "asker" ? bob : alice;
      asker.send({ op: Op.TCPAsk, sender: a, recipient: b, password: 1 });
      assert.equal(await asker.nextError(), ErrorCode.OK);
      assert.equal((await invited.next()).op, Op.TCPAsk);

      alice.close();
      const bobHearsAbort = bob.next(5000);
      // Take the pseudo back as soon as the node lets go of it.
      let next = null;
      for (const deadline = Date.now() + 5000; next === null && Date.now() < deadline;) {
        const c = await connect();
        const code = await c.login("alice");
        if (code === ErrorCode.OK) next = c;
        else {
          assert.equal(code, ErrorCode.PseudoUnavailable);
          c.close();
          // Not a tight loop: a fast machine made the 1,000 connections of the per-address
          // burst within the 150 ms, and the next was refused (closed) by admission.
          await sleep(2);
        }
      }
      assert.ok(next, "the pseudo became free again");
      const f = await bobHearsAbort;
      assert.equal(f.op, Op.TCPAbort, `bob hears of the abort, got ${describeFrame(f)}`);
      // Bob's TCPAbort is out, so any for alice was sent too: the new alice must have none.
      next.send({ op: Op.SMA, sender: "alice", message: "hello" });
      const reply = await next.next();
      assert.equal(reply.op, Op.ERROR, `the new alice got ${describeFrame(reply)}`);
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  });
}
