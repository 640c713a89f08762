/**
 * Issue 9: memory follows the configured bound. Deliveries that wait in a
 * busy session's mailbox (behind a request waiting on the network) count
 * against the reader's bound; over it the reader is dropped and the bytes it
 * lost are counted. Idle private links end after --link-idle-ms.
 */
import assert from "node:assert/strict";
import { MemoryPresence } from "../src/presence/memory.ts";
import type { Presence, Relay } from "../src/presence/presence.ts";
import { ErrorCode, Op } from "../src/protocol/mod.ts";
import { startServer } from "../src/server/server.ts";
import { clientsOn, eventually, withServer } from "./helpers/harness.ts";
import { openLink } from "./helpers/link.ts";
import { sleep, withDeadline } from "../src/lib/async.ts";

/** A store whose SPM to `slowpoke` waits (a remote send stuck on Redis), holding its sender's mailbox. */
function stuckSend(inner: MemoryPresence, gate: Promise<void>): Presence {
  const { send, broadcast } = inner.relay;
  const relay: Relay = {
    send: (to, f) => to === "slowpoke" ? gate.then(() => send(to, f)) : send(to, f),
    broadcast,
    remoteUsers: 0,
    available: true,
    listen: () => {},
    unlisten: () => {},
  };
  return Object.assign(inner, { relay });
}

Deno.test("deliveries held behind a stuck request count against the reader's bound", async () => {
  const gate = Promise.withResolvers<void>();
  const presence = stuckSend(new MemoryPresence({ nodeId: "n1" }), gate.promise);
  const server = await startServer({ host: "127.0.0.1", port: 0, maxQueuedBytes: 64 * 1024 }, {
    presence: () => presence,
  });
  const { clients, login } = clientsOn(() => server.port);
  try {
    const reader = await login("reader");
    const flooder = await login("flooder");
    // The reader's own requests wait; at 256 in flight its mailbox waits with them.
    for (let i = 0; i < 256; i++) {
      reader.send({ op: Op.SPM, sender: "reader", recipient: "slowpoke", message: "hello?" });
    }
    await eventually(() => server.context.users.get("reader")!.mailbox.busy, 2000, "busy");
    const big = "x".repeat(1024);
    for (let i = 0; i < 200; i++) flooder.send({ op: Op.SMA, sender: "flooder", message: big });
    await withDeadline(reader.closed, 5000, () => new Error("the reader was not dropped"));
    const m = server.context.metrics;
    assert.equal(m.slowConsumerDrops, 1, "the reader whose deliveries piled up was dropped");
    assert.ok(m.slowReaderDiscardedBytes >= 60 * 1024, `${m.slowReaderDiscardedBytes} discarded`);
    for (let i = 0; i < 200; i++) assert.equal(await flooder.nextError(), ErrorCode.OK);
    gate.resolve();
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
});

Deno.test("a private link idle for --link-idle-ms is closed", async () => {
  await withServer({ linkIdleMs: 300 }, async (h) => {
    const alice = await h.login("alice");
    const bob = await h.login("bob");
    const { endA, endB } = await openLink(h, alice, bob);
    try {
      // Traffic keeps it open past the limit...
      for (let i = 0; i < 5; i++) {
        await endA.write(Uint8Array.of(i));
        await sleep(100);
      }
      assert.equal(h.server.context.metrics.linksIdleClosed, 0);
      // ...silence ends it.
      await eventually(() => h.server.context.metrics.linksIdleClosed === 1, 5000, "closed");
      assert.equal((await endB.readAll()).length, 5, "what was sent arrived first");
    } finally {
      endA.close();
      endB.close();
    }
  });
});
