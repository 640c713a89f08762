import { setImmediate } from "node:timers";
import { concatBytes } from "../../lib/bytes.ts";
import { type ByteWriter, writeAll } from "../../lib/async.ts";
import { pinsLargerBuffer } from "./arena.ts";

/**
 * A connection's outbound queue. Frames are queued, never written one by one:
 * everything queued during one turn of the event loop leaves in a single
 * `write` (measured ~20x faster for fan-out than a write per frame). The
 * bytes queued or in flight are bounded; past the bound the owner is told and
 * drops the connection instead of growing memory for a client that never reads.
 */

export class OutboundQueue {
  #w: ByteWriter;
  #max: number;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  /** A write is waiting for the socket. */
  #writing = false;
  #closed = false;
  #onOverflow: () => void;
  #onError: (e: unknown) => void;
  #idle: Array<() => void> = [];

  constructor(
    writer: ByteWriter,
    maxBytes: number,
    onOverflow: () => void,
    onError: (e: unknown) => void,
  ) {
    this.#w = writer;
    this.#max = maxBytes;
    this.#onOverflow = onOverflow;
    this.#onError = onError;
  }

  /** Bytes queued or being written. */
  get pending(): number {
    return this.#bytes;
  }

  /**
   * Queues `bytes` (kept by reference: never mutate them afterwards). False if
   * the queue is closed or the bound was crossed (then `onOverflow` ran).
   */
  push(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    // A reader that has not taken the last write yet may hold this for long:
    // keep a copy of just these bytes, not the shared block they are carved from.
    if (this.#writing && pinsLargerBuffer(bytes)) bytes = bytes.slice();
    if (this.#bytes + bytes.length > this.#max) {
      this.close();
      this.#onOverflow();
      return false;
    }
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      // After the current turn of the event loop, so every frame produced
      // while handling the current reads (and the microtasks they spawned)
      // joins the same write. Not setTimeout(0): measured here it waits ~2 ms,
      // setImmediate ~6 µs.
      setImmediate(this.#flush);
    }
    return true;
  }

  #flush = async (): Promise<void> => {
    try {
      while (this.#chunks.length > 0 && !this.#closed) {
        const chunks = this.#chunks;
        this.#chunks = [];
        let buf = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
        if (buf === chunks[0] && pinsLargerBuffer(buf)) buf = buf.slice();
        this.#writing = true;
        await writeAll(this.#w, buf);
        this.#writing = false;
        this.#bytes -= buf.length;
      }
    } catch (e) {
      this.close();
      this.#onError(e);
    } finally {
      this.#scheduled = false;
      if (this.#chunks.length === 0 || this.#closed) {
        for (const resolve of this.#idle.splice(0)) resolve();
      }
    }
  };

  /** Resolves when everything queued so far has been written (or the queue closed). */
  drained(): Promise<void> {
    if (!this.#scheduled || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops writing; queued bytes are dropped. */
  close(): void {
    this.#closed = true;
    this.#chunks = [];
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
