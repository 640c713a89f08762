/** One end of a private link: held bytes up to a bound, announce, relay, half-close. */
import assert from "node:assert/strict";
import { type LinkConn, LinkEnd } from "../src/server/links/end.ts";
import { OK_FRAME } from "../src/protocol/mod.ts";

/** A socket double: the test feeds what it reads and sees what was written to it. */
class FakeConn implements LinkConn {
  readCalls = 0;
  written: number[] = [];
  closedWrite = false;
  closed = false;
  #incoming: Array<Uint8Array | null> = [];
  #waiting: (() => void) | null = null;

  feed(b: Uint8Array | null): void {
    this.#incoming.push(b);
    this.#waiting?.();
  }
  get unread(): number {
    return this.#incoming.length;
  }
  async read(p: Uint8Array): Promise<number | null> {
    this.readCalls++;
    while (this.#incoming.length === 0) {
      if (this.closed) throw new Deno.errors.BadResource("closed");
      await new Promise<void>((r) => (this.#waiting = r));
      this.#waiting = null;
    }
    const b = this.#incoming.shift()!;
    if (b === null) return null;
    p.set(b);
    return b.length;
  }
  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    this.written.push(...p);
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    this.closedWrite = true;
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    this.#waiting?.();
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function end(conn: FakeConn, limit = 1 << 16, announce = true, initial = new Uint8Array(0)) {
  return new LinkEnd(conn, initial, limit, announce, () => {});
}

async function pair(x: LinkEnd, y: LinkEnd): Promise<void> {
  await Promise.all([x.announceLinked(), y.announceLinked()]);
  await Promise.all([x.attach(y), y.attach(x)]);
}

Deno.test("link end: announce writes ERROR 1 to a client end only", async () => {
  const client = new FakeConn(), bridge = new FakeConn();
  await end(client, 1024, true).announceLinked();
  await end(bridge, 1024, false).announceLinked();
  assert.deepEqual(client.written, [...OK_FRAME]);
  assert.deepEqual(bridge.written, []);
});

Deno.test("link end: before pairing it holds up to the bound, then stops reading", async () => {
  const cx = new FakeConn(), cy = new FakeConn();
  const x = end(cx, 10, true, Uint8Array.of(1));
  x.start();
  cx.feed(new Uint8Array(6).fill(2));
  cx.feed(new Uint8Array(6).fill(3));
  cx.feed(Uint8Array.of(4));
  await until(() => cx.unread === 1, "two chunks read");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(cx.unread, 1, "13 bytes held >= 10: the third chunk is not read");
  assert.equal(cx.readCalls, 2);
  const y = end(cy, 10, true);
  y.start();
  await pair(x, y);
  await until(() => cy.written.length === 2 + 1 + 12 + 1, "held and then live bytes");
  assert.deepEqual(cy.written, [8, 1, 1, ...new Array(6).fill(2), ...new Array(6).fill(3), 4]);
  x.close();
  await until(() => cx.closed && cy.closed, "both closed");
});

Deno.test("link end: one side's EOF half-closes the other; the other way still flows", async () => {
  const ca = new FakeConn(), cb = new FakeConn();
  const a = end(ca), b = end(cb);
  a.start();
  b.start();
  await pair(a, b);
  ca.feed(Uint8Array.of(9, 9));
  await until(() => cb.written.length === 4, "a's bytes reach b");
  ca.feed(null); // A is done sending
  await until(() => cb.closedWrite, "b's socket half-closed");
  assert.equal(ca.closed || cb.closed, false, "nothing closed at the first EOF");
  cb.feed(Uint8Array.of(7));
  await until(() => ca.written.length === 3, "b's bytes still reach a");
  assert.deepEqual(ca.written, [8, 1, 7]);
  cb.feed(null);
  await until(() => ca.closed && cb.closed, "both closed once both are done");
  await Promise.all([a.closed, b.closed]);
});

Deno.test("link end: an unpaired end that reaches EOF says so once", async () => {
  const c = new FakeConn();
  const e = end(c);
  let calls = 0;
  e.start(() => calls++);
  c.feed(null);
  await until(() => calls === 1, "onEndUnpaired");
  e.close();
  assert.equal(calls, 1);
});
