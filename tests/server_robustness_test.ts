/**
 * Bad input never crashes the server or disturbs other users: each case is
 * followed by a check that fresh clients can still log in and chat.
 */
import assert from "node:assert/strict";
import { ChatClient } from "../src/client/client.ts";
import { encode, ErrorCode, Op } from "../src/protocol/mod.ts";
import { eventually, type Harness, withServer } from "./helpers/harness.ts";
import { HeldReader } from "./helpers/held_reader.ts";

const t = (name: string, fn: () => Promise<void>) => Deno.test({ name, fn });

let n = 0;
/** Two fresh users can log in and exchange an SPM and an SMA. */
async function stillServes(h: Harness): Promise<void> {
  const a = `ok${++n}`, b = `ok${++n}`;
  const ca = await h.login(a);
  const cb = await h.login(b);
  ca.send({ op: Op.SPM, sender: a, recipient: b, message: "still alive" });
  assert.equal(await ca.nextError(), ErrorCode.OK);
  assert.equal(((await cb.next()) as { message: string }).message, "still alive");
  cb.send({ op: Op.SMA, sender: b, message: "all" });
  assert.equal(await cb.nextError(), ErrorCode.OK);
}

/** Sends `bytes` raw and expects the server to close the connection without answering. */
async function expectClosedBy(h: Harness, bytes: Uint8Array, login = true): Promise<ChatClient> {
  const c = await h.connect();
  if (login) assert.equal(await c.login(`bad${++n}`), ErrorCode.OK);
  c.sendRaw(bytes);
  await c.closed;
  return c;
}

t("unknown opcodes close that connection only", () =>
  withServer({}, async (h) => {
    const bystander = await h.login("bystander");
    for (const op of [0, 9, 42, 0x7f, 0x80, 0xff]) await expectClosedBy(h, Uint8Array.of(op, 0, 1));
    assert.equal(h.server.context.metrics.malformedFrames, 6);
    bystander.send({ op: Op.SMA, sender: "bystander", message: "unaffected" });
    assert.equal(await bystander.nextError(), ErrorCode.OK);
    await stillServes(h);
  }));

t(
  "a negative string length closes the connection; before login too",
  () =>
    withServer({}, async (h) => {
      await expectClosedBy(h, Uint8Array.of(Op.SPM, 0x80, 0x00), true);
      await expectClosedBy(h, Uint8Array.of(Op.CR, 0xff, 0xff), false);
      await stillServes(h);
    }),
);

t(
  "a string over the configured limit closes the connection",
  () =>
    withServer({ maxStringBytes: 1024 }, async (h) => {
      const a = await h.login("alice");
      a.send({ op: Op.SMA, sender: "alice", message: "x".repeat(1024) });
      assert.equal(await a.nextError(), ErrorCode.OK, "exactly the limit is fine");
      a.send({ op: Op.SMA, sender: "alice", message: "x".repeat(1025) });
      await a.closed;
      await stillServes(h);
    }),
);

t("invalid UTF-8 closes the connection and releases its pseudo", () =>
  withServer({}, async (h) => {
    const c = await h.connect();
    assert.equal(await c.login("broken"), ErrorCode.OK);
    c.sendRaw(Uint8Array.of(Op.SMA, 0, 6, ...new TextEncoder().encode("broken"), 0, 2, 0xc3, 0x28));
    await c.closed;
    const again = await h.connect();
    await eventually(async () => (await again.login("broken")) === ErrorCode.OK);
    await stillServes(h);
  }));

t(
  "frames before a malformed one are handled; nothing after it is",
  () =>
    withServer({}, async (h) => {
      const watcher = await h.login("watcher");
      const c = await h.connect();
      const good = encode({ op: Op.CR, pseudo: "mixed" });
      const sma = encode({ op: Op.SMA, sender: "mixed", message: "before" });
      const after = encode({ op: Op.SMA, sender: "mixed", message: "after" });
      c.sendRaw(new Uint8Array([...good, ...sma, 0x55, ...after]));
      assert.deepEqual(await watcher.next(), { op: Op.SMA, sender: "mixed", message: "before" });
      await c.closed;
      await watcher.expectSilence(150);
    }),
);

t("a truncated frame then close: the server forgets it quietly", () =>
  withServer({}, async (h) => {
    const c = await h.connect();
    assert.equal(await c.login("trunc"), ErrorCode.OK);
    const whole = encode({ op: Op.SPM, sender: "trunc", recipient: "x", message: "cut here" });
    // An SMA and the cut frame in one write: the SMA's answer shows the server read that write.
    const sma = encode({ op: Op.SMA, sender: "trunc", message: "before the cut" });
    c.sendRaw(new Uint8Array([...sma, ...whole.subarray(0, whole.length - 3)]));
    assert.equal(await c.nextError(), ErrorCode.OK);
    c.close();
    const again = await h.connect();
    await eventually(async () => (await again.login("trunc")) === ErrorCode.OK);
    await stillServes(h);
  }));

t("1 MiB of random bytes: closed, and the server keeps serving", () =>
  withServer({}, async (h) => {
    for (const login of [false, true]) {
      const junk = new Uint8Array(1 << 20);
      for (let i = 0; i < junk.length; i += 65536) {
        crypto.getRandomValues(junk.subarray(i, i + 65536));
      }
      const c = await h.connect();
      if (login) await c.login("junk");
      c.sendRaw(junk);
      await c.closed;
    }
    await stillServes(h);
  }));

t("hundreds of connections opened and closed quickly", () =>
  withServer({}, async (h) => {
    const batch = async (i: number) => {
      const c = await ChatClient.connect({ port: h.port });
      if (i % 2 === 0) await c.login(`churn${i}`);
      if (i % 3 === 0) c.sendRaw(Uint8Array.of(Op.SMA, 0)); // half a frame
      c.close();
    };
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => batch(round * 100 + i)));
    }
    await eventually(() => h.server.connections === 0, 5000, "all connections closed");
    assert.equal(h.server.context.users.size, 0);
    await stillServes(h);
  }));

t(
  "a client that never reads is dropped; queued bytes stay under the bound",
  () =>
    withServer({ maxQueuedBytes: 256 * 1024 }, async (h) => {
      // A socket that logs in and never reads: its socket buffers fill, then the server's queue.
      const sink = await HeldReader.login(h.port, "sink");
      const flooder = await h.login("flooder");
      const msg = "y".repeat(16 * 1024);
      let maxQueued = 0;
      for (let i = 0; i < 2000 && h.server.context.metrics.slowConsumerDrops === 0; i++) {
        flooder.send({ op: Op.SPM, sender: "flooder", recipient: "sink", message: msg });
        const code = await flooder.nextError();
        // The OK is sent in the turn that queued the SPM for sink: every push is seen here.
        for (const q of h.server.context.outbound) maxQueued = Math.max(maxQueued, q.pending);
        if (code !== ErrorCode.OK) break;
      }
      assert.equal(h.server.context.metrics.slowConsumerDrops, 1, "the non-reader was dropped");
      assert.ok(maxQueued <= 256 * 1024, `queued ${maxQueued} bytes`);
      sink.close();
      // its pseudo is released, and the flooder is told further SPMs are undeliverable
      await eventually(async () => {
        flooder.send({ op: Op.SPM, sender: "flooder", recipient: "sink", message: "?" });
        return (await flooder.nextError()) === ErrorCode.UnreachableUser;
      });
      await stillServes(h);
    }),
);

t(
  "a connection that never logs in is closed after the login timeout",
  () =>
    withServer({ loginTimeoutMs: 300 }, async (h) => {
      // Logged in first: its login timer runs out before the other two's.
      const loggedIn = await h.login("stays");
      const idle = await h.connect();
      const spoke = await h.connect();
      spoke.send({ op: Op.SMA, sender: "x", message: "y" });
      assert.equal(await spoke.nextError(), ErrorCode.NotConnected);
      await idle.closed;
      await spoke.closed;
      assert.equal(h.server.context.metrics.loginTimeouts, 2);
      loggedIn.send({ op: Op.SMA, sender: "stays", message: "still here" });
      assert.equal(await loggedIn.nextError(), ErrorCode.OK);
    }),
);

t(
  "connections over --max-connections are closed at once; others are unaffected",
  () =>
    withServer({ maxConnections: 3 }, async (h) => {
      const a = await h.login("a");
      const b = await h.login("b");
      await h.login("c");
      const extra = await h.connect();
      await extra.closed;
      assert.equal(h.server.context.metrics.connectionsRejected, 1);
      a.send({ op: Op.SPM, sender: "a", recipient: "b", message: "fine" });
      assert.equal(await a.nextError(), ErrorCode.OK);
      assert.equal(((await b.next()) as { message: string }).message, "fine");
    }),
);

t(
  "connections reset before the server accepts them never stop the accept loop",
  () =>
    withServer({}, async (h) => {
      for (let round = 0; round < 5; round++) {
        const conns = await Promise.all(
          Array.from({ length: 100 }, () => Deno.connect({ hostname: "127.0.0.1", port: h.port })),
        );
        for (const c of conns) c.close();
      }
      await stillServes(h);
    }),
);
