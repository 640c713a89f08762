/**
 * Interoperability at the byte level. The authors' Java client is not in
 * this repository (nor in /work/shared), so a raw-socket client stands in
 * for it: it builds and checks every frame by hand from the byte layouts in
 * PROTOCOL-NOTES (opcode BYTE; STRING = SHORT big-endian length + UTF-8;
 * SHORT password) and speaks HTTP/1.0 over the private link as theirs did.
 * Our CLI, a real process, is on the other side of the server.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { concatBytes } from "../src/lib/bytes.ts";
import { writeAll } from "../src/lib/async.ts";
import { randomBytes, withCliWorld } from "./helpers/client_fixtures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function str(s: string): Uint8Array {
  const b = enc.encode(s);
  return concatBytes([Uint8Array.of(b.length >> 8, b.length & 0xff), b]);
}
function short(n: number): Uint8Array {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}
const frame = (op: number, ...parts: Uint8Array[]) => concatBytes([Uint8Array.of(op), ...parts]);

/** A socket read as exact byte counts. */
class Raw {
  #buf: Uint8Array = new Uint8Array(0);
  constructor(readonly conn: Deno.TcpConn) {}

  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  send(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  async take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error(`EOF after ${this.#buf.length} of ${n} bytes`);
      this.#buf = concatBytes([this.#buf, chunk.subarray(0, got)]);
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Expects exactly `bytes` next. */
  async expect(bytes: Uint8Array, what: string): Promise<void> {
    assert.deepEqual([...await this.take(bytes.length)], [...bytes], what);
  }

  /** Reads until EOF. */
  async rest(): Promise<Uint8Array> {
    const chunks = [this.#buf];
    const buf = new Uint8Array(65536);
    for (let n = await this.conn.read(buf); n !== null; n = await this.conn.read(buf)) {
      chunks.push(buf.slice(0, n));
    }
    this.#buf = new Uint8Array(0);
    return concatBytes(chunks);
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

const OK = frame(8, Uint8Array.of(1));

Deno.test("interop: a client built from the byte layouts chats and swaps files with our CLI", async () => {
  await withCliWorld(async ({ port, dir, spawn }) => {
    await Deno.mkdir(path.join(dir, "share"));
    const notes = randomBytes(100_000);
    await Deno.writeFile(path.join(dir, "share", "notes.bin"), notes);
    const raws: Raw[] = [];
    const open = async () => {
      const r = await Raw.open(port);
      raws.push(r);
      return r;
    };
    try {
      const java = await open();
      await java.send(frame(1, str("java")));
      await java.expect(OK, "CR answered ERROR 1");
      const alice = spawn("alice", ["--share", "share", "--downloads", "dl"]);
      await alice.waitFor(/^connected/);

      // Chat both ways.
      await java.send(frame(3, str("java"), str("hello from java ☕")));
      await java.expect(OK, "SMA answered ERROR 1");
      await alice.waitFor(/^\[java\] hello from java ☕$/);
      await alice.type("@java hi back");
      await java.expect(frame(2, str("alice"), str("java"), str("hi back")), "SPM relayed as is");
      await alice.type("hello all");
      await java.expect(frame(3, str("alice"), str("hello all")), "SMA relayed as is");

      // java fetches from alice: TCPAsk, alice accepts on a new socket, TCPConnect, GET.
      const pw = -12345;
      await java.send(frame(4, str("java"), str("alice"), short(pw)));
      await java.expect(OK, "TCPAsk answered ERROR 1");
      await java.expect(frame(5, str("java"), str("alice"), short(pw)), "TCPAccept relayed");
      const linkA = await open();
      await linkA.send(frame(7, str("java"), str("alice"), short(pw)));
      await linkA.expect(OK, "linked");
      await linkA.send(enc.encode("GET notes.bin HTTP/1.0\r\n\r\n"));
      await alice.waitFor(/^java wants notes\.bin \(97\.7 KiB\): send\? \[y\/n\]$/);
      await alice.type("y");
      const response = await linkA.rest();
      linkA.close(); // as an HTTP/1.0 client does once the body is read
      const headEnd = dec.decode(response.subarray(0, 200)).indexOf("\r\n\r\n");
      const head = dec.decode(response.subarray(0, headEnd));
      assert.match(head, /^HTTP\/1\.0 200 OK\r\n/);
      assert.match(head, /\r\nContent-Length: 100000(\r\n|$)/);
      const body = response.subarray(headEnd + 4);
      assert.equal(body.length, notes.length);
      assert.ok(body.every((b, i) => b === notes[i]), "byte-identical");
      await alice.waitFor(/^sent notes\.bin to java \(97\.7 KiB\)$/);

      // alice fetches from java: java sees TCPAsk, accepts, answers the GET.
      await alice.type("/get java report.txt");
      const askHead = await java.take(1 + 2 + 5 + 2 + 4);
      assert.deepEqual([...askHead], [...frame(4, str("alice"), str("java"))], "TCPAsk from alice");
      const pwBytes = await java.take(2);
      const linkB = await open();
      await linkB.send(frame(5, str("alice"), str("java"), pwBytes));
      await linkB.expect(OK, "linked");
      const get = dec.decode(await linkB.take("GET report.txt HTTP/1.0\r\n\r\n".length));
      assert.equal(get, "GET report.txt HTTP/1.0\r\n\r\n");
      const report = "a report from the Java side\n";
      await linkB.send(enc.encode(
        `HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${report.length}\r\n\r\n${report}`,
      ));
      linkB.close();
      await alice.waitFor(/^saved report\.txt from java to .* \(28 B\)$/);
      assert.equal(await Deno.readTextFile(path.join(dir, "dl", "report.txt")), report);
      assert.equal((await alice.end()).code, 0);
    } finally {
      for (const r of raws) r.close();
    }
  });
});
