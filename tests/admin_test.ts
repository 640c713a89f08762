/** The admin responder: one request per connection, bounded in time both ways. */
import assert from "node:assert/strict";
import { type AdminView, serveRequest } from "../src/server/admin.ts";
import { Metrics } from "../src/server/metrics.ts";

const view: AdminView = {
  metrics: new Metrics(),
  draining: () => false,
  health: () => undefined,
  mailboxDepths: () => [],
  queuedBytes: () => 0,
};

/** A socket double: sends `request` (or nothing, ever), and takes writes only if `reads`. */
class FakeConn {
  closed = false;
  written = "";
  #request: Uint8Array | null;
  #reads: boolean;
  #pending: Array<() => void> = [];
  constructor(request: string | null, reads: boolean) {
    this.#request = request === null ? null : new TextEncoder().encode(request);
    this.#reads = reads;
  }
  read(p: Uint8Array): Promise<number | null> {
    if (this.#request === null) return new Promise((r) => this.#pending.push(() => r(null)));
    const n = this.#request.length;
    p.set(this.#request);
    this.#request = new Uint8Array(0);
    return Promise.resolve(n === 0 ? null : n);
  }
  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    if (!this.#reads) return new Promise((r) => this.#pending.push(() => r(0)));
    this.written += new TextDecoder().decode(p);
    return Promise.resolve(p.length);
  }
  close(): void {
    this.closed = true;
    for (const r of this.#pending.splice(0)) r();
  }
}

const conn = (c: FakeConn) => c as unknown as Deno.Conn;

Deno.test("admin: a request is answered with its status and a closing reply", async () => {
  const c = new FakeConn("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", true);
  await serveRequest(conn(c), view, 1000);
  assert.match(c.written, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(c.written, /connection: close\r\n\r\nok\n$/);
});

Deno.test("admin: a client that never reads its reply is closed at the deadline", async () => {
  const c = new FakeConn("GET /metrics HTTP/1.1\r\n\r\n", false);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    serveRequest(conn(c), view, 100).then(() => "answered", (e) => String(e)),
    new Promise<string>((r) => timer = setTimeout(() => r("still held after 2 s"), 2000)),
  ]);
  clearTimeout(timer);
  assert.match(outcome, /admin request timed out/);
  assert.equal(c.closed, true, "its descriptor is given back");
  c.close(); // a mutated server would still be writing: end it
});

Deno.test("admin: a client that never sends its request is closed at the deadline", async () => {
  const c = new FakeConn(null, true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    serveRequest(conn(c), view, 100).then(() => "answered", (e) => String(e)),
    new Promise<string>((r) => timer = setTimeout(() => r("still held after 2 s"), 2000)),
  ]);
  clearTimeout(timer);
  c.close();
  assert.match(outcome, /admin request timed out/);
  assert.equal(c.written, "");
});
