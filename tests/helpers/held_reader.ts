/**
 * A logged-in chat connection that does not read until told to: the server's
 * output for it piles up in the socket buffers and then in the server's queue,
 * which is how tests hold a node's drain open.
 */
import assert from "node:assert/strict";
import { withDeadline, writeAll } from "../../src/lib/async.ts";
import { closeQuietly } from "../../src/lib/errors.ts";
import type { ChatClient } from "../../src/client/client.ts";
import { encode, ErrorCode, type Frame, FrameDecoder, Op } from "../../src/protocol/mod.ts";
import { scrape } from "./metrics.ts";

export class HeldReader {
  readonly conn: Deno.TcpConn;
  #decoder = new FrameDecoder();
  #buf = new Uint8Array(256 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects, logs in as `pseudo` (asserts ERROR 1), then reads nothing more. */
  static async login(port: number, pseudo: string): Promise<HeldReader> {
    const r = new HeldReader(await Deno.connect({ hostname: "127.0.0.1", port }));
    await writeAll(r.conn, encode({ op: Op.CR, pseudo }));
    const [answer] = await r.#read(1, 5000, `${pseudo}'s login answer`);
    assert.deepEqual(answer, { op: Op.ERROR, code: ErrorCode.OK }, `login ${pseudo}`);
    return r;
  }

  /** Reads every frame until the server closes the connection (or `ms` passes: rejects). */
  readToEnd(ms: number): Promise<Frame[]> {
    return this.#read(Infinity, ms, "the server closing the held reader");
  }

  close(): void {
    closeQuietly(this.conn);
  }

  #read(count: number, ms: number, what: string): Promise<Frame[]> {
    const frames: Frame[] = [];
    const reading = (async () => {
      while (frames.length < count) {
        for (let s = this.#decoder.next(); s !== null; s = this.#decoder.next()) {
          if (!s.ok) throw new Error(`malformed data from the server: ${s.error.kind}`);
          frames.push(s.frame);
          if (frames.length === count) return frames;
        }
        const n = await this.conn.read(this.#buf);
        if (n === null) return frames;
        this.#decoder.push(this.#buf.slice(0, n));
      }
      return frames;
    })();
    return withDeadline(reading, ms, () => {
      this.close();
      return new Error(`${what}: not done within ${ms} ms (${frames.length} frames)`);
    });
  }
}

export const FILL_MESSAGE = "f".repeat(32_000);

/**
 * Sends 32 kB SPMs to `to`, a reader that does not read, 100 at a time until
 * the node's own queue holds some (the socket buffers between are full,
 * however large this machine makes them): a drain must then wait. Returns how
 * many were sent, all acknowledged.
 */
export async function holdOutput(
  from: ChatClient,
  sender: string,
  to: string,
  queued: () => Promise<number>,
): Promise<number> {
  let sent = 0;
  while ((await queued()) === 0) {
    assert.ok(sent < 1500, `${sent} SPMs to ${to} and still nothing queued on the node`);
    for (let i = 0; i < 100; i++) {
      from.send({ op: Op.SPM, sender, recipient: to, message: FILL_MESSAGE });
    }
    for (let i = 0; i < 100; i++) {
      assert.equal(await from.nextError(10_000), ErrorCode.OK, "fill");
    }
    sent += 100;
  }
  return sent;
}

/** The bytes queued on the node at `adminPort`, for `holdOutput`. */
export const queuedOn = (adminPort: number) => async () =>
  (await scrape(adminPort)).get("chatos_outbound_queued_bytes") ?? 0;
