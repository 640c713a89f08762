import assert from "node:assert/strict";
import { ChatClient, PrivateEnd } from "../src/client/client.ts";
import { encode, Op } from "../src/protocol/mod.ts";
import { withWorld } from "./helpers/client_fixtures.ts";
import { handshake } from "./helpers/link.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("client: login, and a taken pseudo gets ERROR 2", async () => {
  await withWorld(async (w) => {
    await w.login("alice");
    const again = await ChatClient.connect({ port: w.port });
    try {
      assert.equal(await again.login("alice"), 2);
    } finally {
      again.close();
      await again.closed;
    }
  });
});

Deno.test("client: SPM is relayed to the recipient only, unknown recipient is ERROR 4", async () => {
  await withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    const carol = await w.login("carol");
    const spm = { op: Op.SPM, sender: "alice", recipient: "bob", message: "salut 🎉" } as const;
    alice.send(spm);
    assert.equal(await alice.nextError(), 1);
    assert.deepEqual(await bob.next(), spm);
    alice.send({ op: Op.SPM, sender: "alice", recipient: "zed", message: "hi" });
    assert.equal(await alice.nextError(), 4);
    await carol.expectSilence(100);
  });
});

Deno.test("client: SMA reaches every other user, not the sender", async () => {
  await withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    const carol = await w.login("carol");
    const sma = { op: Op.SMA, sender: "alice", message: "hello all" } as const;
    alice.send(sma);
    assert.equal(await alice.nextError(), 1);
    assert.deepEqual(await bob.next(), sma);
    assert.deepEqual(await carol.next(), sma);
    await alice.expectSilence(100);
  });
});

Deno.test("client: sends are coalesced in order; nextError names an unexpected frame", async () => {
  await withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    for (let i = 0; i < 50; i++) alice.send({ op: Op.SMA, sender: "alice", message: `m${i}` });
    for (let i = 0; i < 50; i++) assert.equal(await alice.nextError(), 1);
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(await bob.next(), { op: Op.SMA, sender: "alice", message: `m${i}` });
    }
    alice.send({ op: Op.SMA, sender: "alice", message: "x" });
    await assert.rejects(bob.nextError(), /expected an ERROR frame, got SMA "alice"/);
    assert.equal(await alice.nextError(), 1);
  });
});

Deno.test("client: a private link carries bytes both ways, and close reaches the peer", async () => {
  await withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    const [a, b] = await w.link(alice, "alice", bob, "bob");
    await a.write(enc.encode("ping"));
    assert.equal(dec.decode((await b.read())!), "ping");
    await b.write(enc.encode("pong"));
    await b.closeWrite();
    assert.equal(dec.decode(await a.readAll()), "pong");
    await a.closed;
  });
});

Deno.test("client: bytes that arrive with the linking ERROR 1 are kept for read()", async () => {
  await withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    const key = { sender: "alice", recipient: "bob", password: -7 };
    const b = await handshake(w, alice, bob, key.password);
    const a = await PrivateEnd.open({ port: w.port }, { op: Op.TCPConnect, ...key });
    try {
      // B writes at once; A reads its answer only afterwards, so ERROR 1 and
      // the payload are likely to share one read.
      assert.deepEqual(await b.answer(), [{ op: Op.ERROR, code: 1 }]);
      await b.write(enc.encode("right after"));
      await b.closeWrite();
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await a.answer(), [{ op: Op.ERROR, code: 1 }]);
      assert.equal(dec.decode(await a.readAll()), "right after");
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("client: TCPConnect with no handshake is refused with ERROR 6", async () => {
  await withWorld(async (w) => {
    await w.login("alice");
    const a = await PrivateEnd.open({ port: w.port }, {
      op: Op.TCPConnect,
      sender: "alice",
      recipient: "bob",
      password: 1,
    });
    try {
      const frames = await a.answer();
      assert.deepEqual(frames.at(-1), { op: Op.ERROR, code: 6 });
    } finally {
      a.close();
    }
  });
});

// Behaviour of the library itself, against a tiny fake server.
async function withFake(
  serve: (conn: Deno.Conn) => Promise<void>,
  fn: (c: ChatClient) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
  const c = await ChatClient.connect({ port: listener.addr.port });
  try {
    await fn(c);
  } finally {
    c.close();
    await c.closed;
    await served.catch(() => {});
    listener.close();
  }
}

Deno.test("client: frames split across reads or packed in one are decoded in order", async () => {
  const frames = [
    encode({ op: Op.SMA, sender: "bob", message: "one" }),
    encode({ op: Op.ERROR, code: 1 }),
    encode({ op: Op.SPM, sender: "bob", recipient: "alice", message: "two" }),
  ];
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) {
    all.set(f, off);
    off += f.length;
  }
  await withFake(async (conn) => {
    await conn.write(all.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    await conn.write(all.subarray(3));
    await new Promise((r) => setTimeout(r, 200));
  }, async (c) => {
    assert.deepEqual(await c.next(), { op: Op.SMA, sender: "bob", message: "one" });
    assert.equal(await c.nextError(), 1);
    assert.equal((await c.next()).op, Op.SPM);
  });
});

Deno.test("client: next() times out clearly, then reports the server closing", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await withFake(async (conn) => {
    await conn.write(encode({ op: Op.ERROR, code: 4 }));
    await released;
  }, async (c) => {
    assert.equal(await c.nextError(), 4);
    await assert.rejects(c.next(50), /no frame received within 50 ms/);
    const pending = c.next(5000);
    release();
    await assert.rejects(pending, /server closed the connection/);
    await c.closed;
    await assert.rejects(c.next(), /server closed the connection/);
  });
});

Deno.test("client: expectSilence rejects when a frame arrives and leaves it buffered", async () => {
  await withFake(async (conn) => {
    await new Promise((r) => setTimeout(r, 60));
    await conn.write(encode({ op: Op.SMA, sender: "bob", message: "noise" }));
    await new Promise((r) => setTimeout(r, 100));
  }, async (c) => {
    await assert.rejects(c.expectSilence(1000), /received SMA "bob": "noise"/);
    assert.deepEqual(await c.next(), { op: Op.SMA, sender: "bob", message: "noise" });
  });
});

Deno.test("client: malformed input ends the connection with a clear reason", async () => {
  await withFake(async (conn) => {
    await conn.write(Uint8Array.of(99, 0, 0));
    await new Promise((r) => setTimeout(r, 100));
  }, async (c) => {
    await assert.rejects(c.next(), /malformed data from the server: unknown opcode 99/);
  });
});
