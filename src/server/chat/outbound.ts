import { setImmediate } from "node:timers";
import { concatBytes } from "../../lib/bytes.ts";
import { type ByteWriter, writeAll } from "../../lib/async.ts";
import { ownsItsBuffer, pinsLargerBuffer, recycleFrame } from "./arena.ts";

/**
 * A connection's outbound queue. Frames are queued, never written one by one:
 * everything queued during one turn of the event loop leaves in a single
 * `write` (measured ~20x faster for fan-out than a write per frame). What is
 * queued or in flight is bounded, per connection and node-wide; past a bound
 * the owner is told and drops the connection instead of growing memory for a
 * client that never reads.
 *
 * The bound counts what queued frames cost, not only their bytes. While a
 * write waits on the socket (the reader is slow, or never reads), small frames
 * carved from a shared block, and past PACK_AFTER any small frame, are copied
 * into blocks the queue owns instead of being kept one object (and often one
 * buffer) each: a 22-byte SPM kept on its own costs ~400 bytes of
 * heap and allocator overhead, packed into a block it costs 22. A block is
 * charged its whole capacity; any other chunk its bytes plus CHUNK_OVERHEAD
 * (the whole buffer it views, unless that is a shared block it will be copied
 * out of before it waits).
 *
 * Frames over JOIN_MAX are written on their own, never copied into a join:
 * the buffer of a large relayed frame then goes straight back to its pool
 * once written (arena.ts), and relaying 32 KiB SPMs makes no garbage buffer
 * per message.
 *
 * Deliveries held in the session's mailbox (behind a request waiting on the
 * network) are charged here too, with `hold`.
 */

/** What one queued chunk costs beyond its bytes (typed-array view, backing store). */
export const CHUNK_OVERHEAD = 128;

/** The node-wide bound on queued output, shared by every queue. */
export class QueueBudget {
  readonly max: number;
  used = 0;
  constructor(max: number) {
    this.max = max;
  }
}

/** Frames up to this size are packed into the queue's blocks while a write waits. */
const PACK_MAX = 1024;
/**
 * A frame of its own (a broadcast, encoded once for every recipient) is kept
 * by reference, charged its bytes plus CHUNK_OVERHEAD, until the queue holds
 * this much: copying it for every recipient of an SMA whose write was still
 * in flight cost ~5% of `sma` throughput (A/B in docs/PERFORMANCE.md), and a
 * reader that keeps up never holds this much.
 */
const PACK_AFTER = 16 * 1024;
/** A queue's first block; each one it fills doubles the next, up to PACK_BLOCK_MAX. */
const PACK_BLOCK_MIN = 1024;
const PACK_BLOCK_MAX = 16 * 1024;
/** Larger chunks are written alone, smaller ones joined with their neighbours. */
const JOIN_MAX = 4 * 1024;

/** Over the node-wide bound, a queue holding less than this share of its own bound is spared. */
const NODE_BOUND_FLOOR_SHARE = 1 / 16;

export class OutboundQueue {
  #w: ByteWriter;
  #max: number;
  #shared: QueueBudget;
  #chunks: Uint8Array[] = [];
  /** What the chunks in #chunks are charged (a packed block: its capacity). */
  #chunksCharge = 0;
  /** The block small frames are being packed into, charged its capacity plus CHUNK_OVERHEAD. */
  #block: Uint8Array | null = null;
  #blockUsed = 0;
  #blockSize = PACK_BLOCK_MIN;
  #bytes = 0;
  /** Bytes plus overhead of everything queued, in flight or held. */
  #cost = 0;
  #scheduled = false;
  /** A write is waiting for the socket. */
  #writing = false;
  #closed = false;
  #onOverflow: (discarded: number) => void;
  #onError: (e: unknown) => void;
  #idle: Array<() => void> = [];

  constructor(
    writer: ByteWriter,
    maxBytes: number,
    onOverflow: (discarded: number) => void,
    onError: (e: unknown) => void,
    shared: QueueBudget = new QueueBudget(Infinity),
  ) {
    this.#w = writer;
    this.#max = maxBytes;
    this.#onOverflow = onOverflow;
    this.#onError = onError;
    this.#shared = shared;
  }

  /** Bytes queued or being written. */
  get pending(): number {
    return this.#bytes;
  }

  /** What the queue is charged for: bytes and overhead of queued, in-flight and held frames. */
  get cost(): number {
    return this.#cost;
  }

  #charge(delta: number): void {
    if (this.#closed) return;
    this.#cost += delta;
    this.#shared.used += delta;
  }

  /** Charges `add` more, or closes the queue and reports the overflow. */
  #fits(add: number): boolean {
    const cost = this.#cost + add;
    const overNode = this.#shared.used + add > this.#shared.max &&
      cost > this.#max * NODE_BOUND_FLOOR_SHARE;
    if (cost <= this.#max && !overNode) {
      this.#charge(add);
      return true;
    }
    const discarded = this.#cost;
    this.close();
    this.#onOverflow(discarded);
    return false;
  }

  /**
   * Queues `bytes` (kept by reference unless packed: never mutate them
   * afterwards). False if the queue is closed or a bound was crossed (then
   * `onOverflow` ran).
   */
  push(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    const large = bytes.length > JOIN_MAX;
    if (large) {
      // Written on its own, as it is: one that views a buffer shared with others (the frames of
      // one Redis relay batch) is copied first, so it pins nothing and is charged its own buffer,
      // exactly; charging the shared one per frame dropped readers that read.
      if (!ownsItsBuffer(bytes)) bytes = bytes.slice();
    } else if (this.#writing) {
      // The reader has not taken the last write yet and may hold these for long: a frame carved
      // from a shared block is copied out (packed, or alone), and past PACK_AFTER any small one
      // is packed.
      const pins = pinsLargerBuffer(bytes);
      if (bytes.length <= PACK_MAX && (pins || this.#cost >= PACK_AFTER)) return this.#pack(bytes);
      if (pins) bytes = bytes.slice();
    }
    const charge = (large ? bytes.buffer.byteLength : bytes.length) + CHUNK_OVERHEAD;
    if (!this.#fits(charge)) return false;
    this.#seal(); // frames packed so far go first
    this.#chunks.push(bytes);
    this.#chunksCharge += charge;
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

  /** Copies a small frame into the current block (a write is in flight, so a flush will follow). */
  #pack(bytes: Uint8Array): boolean {
    const n = bytes.length;
    if (this.#block === null || this.#blockUsed + n > this.#block.length) {
      if (this.#block !== null) {
        this.#seal();
        this.#blockSize = Math.min(PACK_BLOCK_MAX, this.#blockSize * 2);
      }
      // Near the bound, a smaller block rather than an early overflow.
      const room = this.#max - this.#cost - CHUNK_OVERHEAD;
      const size = Math.max(n, Math.min(this.#blockSize, room));
      if (!this.#fits(size + CHUNK_OVERHEAD)) return false;
      this.#block = new Uint8Array(size);
      this.#blockUsed = 0;
    }
    this.#block.set(bytes, this.#blockUsed);
    this.#blockUsed += n;
    this.#bytes += n;
    return true;
  }

  /** Ends the current block: what was packed joins the chunks, with the block's charge. */
  #seal(): void {
    const block = this.#block;
    if (block === null) return;
    this.#block = null;
    const charge = block.length + CHUNK_OVERHEAD;
    if (this.#blockUsed === 0) return this.#charge(-charge);
    this.#chunks.push(block.subarray(0, this.#blockUsed));
    this.#chunksCharge += charge;
  }

  /** Charges `n` bytes about to be queued (held elsewhere meanwhile); false if over a bound. */
  hold(n: number): boolean {
    if (this.#closed) return false;
    return this.#fits(n + CHUNK_OVERHEAD);
  }

  /** Gives back a `hold` (the frame is being pushed, or dropped). */
  unhold(n: number): void {
    this.#charge(-(n + CHUNK_OVERHEAD));
  }

  #flush = async (): Promise<void> => {
    try {
      while (!this.#closed) {
        this.#seal();
        if (this.#chunks.length === 0) break;
        const writes = writeRuns(this.#chunks);
        const charged = this.#chunksCharge;
        this.#chunks = [];
        this.#chunksCharge = 0;
        await this.#writeEach(writes, charged);
      }
    } catch (e) {
      this.close();
      this.#onError(e);
    } finally {
      this.#scheduled = false;
      this.#blockSize = PACK_BLOCK_MIN;
      // The loop only ends with nothing queued, or closed: either way, drained.
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  };

  /**
   * One flush's writes, in order (usually one: everything joined), each charged the buffer it
   * holds; a large frame's buffer goes back to its pool once written.
   */
  async #writeEach(writes: Uint8Array[], charged: number): Promise<void> {
    let inFlight = 0;
    for (const buf of writes) inFlight += buf.buffer.byteLength + CHUNK_OVERHEAD;
    this.#charge(inFlight - charged);
    this.#writing = true;
    for (const buf of writes) {
      if (this.#closed) break;
      await writeAll(this.#w, buf);
      this.#bytes -= buf.length;
      if (buf.length > JOIN_MAX) recycleFrame(buf);
    }
    this.#writing = false;
    this.#charge(-inFlight);
  }

  /** Resolves when everything queued so far has been written (or the queue closed). */
  drained(): Promise<void> {
    if (!this.#scheduled || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops writing; queued bytes are dropped and their charge given back. */
  close(): void {
    if (!this.#closed) this.#shared.used -= this.#cost;
    this.#cost = 0;
    this.#closed = true;
    this.#chunks = [];
    this.#chunksCharge = 0;
    this.#block = null;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/**
 * What one flush writes: runs of small chunks joined into one buffer each,
 * chunks over JOIN_MAX as they are. A chunk viewing a much larger buffer (a
 * carved frame) is copied, so the write does not pin that buffer.
 */
function writeRuns(chunks: Uint8Array[]): Uint8Array[] {
  const writes: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= chunks.length; i++) {
    if (i < chunks.length && chunks[i].length <= JOIN_MAX) continue;
    if (i > start) {
      const run = concatBytes(chunks, start, i);
      writes.push(run === chunks[start] && pinsLargerBuffer(run) ? run.slice() : run);
    }
    if (i < chunks.length) writes.push(chunks[i]);
    start = i + 1;
  }
  return writes;
}
