/**
 * The load generator's own minimal ChatOS wire code: frame templates built
 * once, a 12-digit timestamp patched in place, and a scanner that walks
 * frames by length without building strings or objects. The generator must
 * cost far less per message than the server under test, and the same code
 * drives the server and the ceilings, so ratios compare like with like.
 */

export const OP_CR = 1;
export const OP_SPM = 2;
export const OP_SMA = 3;
export const OP_TCPASK = 4;
export const OP_TCPACCEPT = 5;
export const OP_TCPABORT = 6;
export const OP_TCPCONNECT = 7;
export const OP_ERROR = 8;

const te = new TextEncoder();

/** Encodes one frame: the opcode, then STRING fields, then an optional SHORT password. */
export function frame(op: number, strings: string[], password?: number): Uint8Array {
  const parts = strings.map((s) => te.encode(s));
  let size = 1 + (password === undefined ? 0 : 2);
  for (const p of parts) size += 2 + p.length;
  const out = new Uint8Array(size);
  out[0] = op;
  let off = 1;
  for (const p of parts) {
    out[off] = p.length >>> 8;
    out[off + 1] = p.length & 0xff;
    out.set(p, off + 2);
    off += 2 + p.length;
  }
  if (password !== undefined) {
    out[off] = (password >>> 8) & 0xff;
    out[off + 1] = password & 0xff;
  }
  return out;
}

export const OK = Uint8Array.of(OP_ERROR, 1);

/** Digits of the send timestamp at the start of every timed message text. */
export const TS_DIGITS = 12;

/** A message text of exactly `size` ASCII bytes whose first TS_DIGITS are a timestamp slot. */
export function timedText(size: number): string {
  if (size < TS_DIGITS + 1) throw new Error(`message size ${size} < ${TS_DIGITS + 1}`);
  return "0".repeat(TS_DIGITS) + "-" + "x".repeat(size - TS_DIGITS - 1);
}

/** Microseconds on this process's monotonic clock (integral, < 10^12). */
export function nowUs(): number {
  return Math.floor(performance.now() * 1000);
}

/** Writes `us` as TS_DIGITS ASCII digits at buf[off]. */
export function writeTs(buf: Uint8Array, off: number, us: number): void {
  let hi = Math.floor(us / 1e6);
  let lo = us - hi * 1e6;
  for (let i = 5; i >= 0; i--) {
    buf[off + 6 + i] = 48 + (lo % 10);
    lo = (lo / 10) | 0;
    buf[off + i] = 48 + (hi % 10);
    hi = (hi / 10) | 0;
  }
}

/** Reads TS_DIGITS ASCII digits at buf[off] (as written by writeTs). */
export function readTs(buf: Uint8Array, off: number): number {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 6; i++) {
    hi = hi * 10 + buf[off + i] - 48;
    lo = lo * 10 + buf[off + 6 + i] - 48;
  }
  return hi * 1e6 + lo;
}

/** Offset of the last STRING's bytes (the message text of SPM/SMA) inside a frame at `off`. */
export function lastStringOffset(buf: Uint8Array, off: number): number {
  const op = buf[off];
  let p = off + 1;
  const skip = op === OP_SPM ? 2 : 1;
  for (let i = 0; i < skip; i++) p += 2 + ((buf[p] << 8) | buf[p + 1]);
  return p + 2;
}

const STRINGS = [0, 1, 3, 2, 2, 2, 2, 2];

/**
 * Length of the frame starting at buf[off] if it ends before `end`, -1 if
 * more bytes are needed; throws on an opcode that is not ChatOS.
 */
export function frameLength(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  const op = buf[off];
  if (op === OP_ERROR) return end - off >= 2 ? 2 : -1;
  if (op < 1 || op > 7) throw new Error(`not a ChatOS frame: opcode ${op}`);
  let p = off + 1;
  for (let i = STRINGS[op]; i > 0; i--) {
    if (p + 2 > end) return -1;
    p += 2 + ((buf[p] << 8) | buf[p + 1]);
  }
  if (op >= OP_TCPASK) p += 2;
  return p > end ? -1 : p - off;
}

export interface FrameSink {
  /** One whole frame at buf[off, off+len); valid only during the call. */
  onFrame(op: number, buf: Uint8Array, off: number, len: number): void;
}

const MAX_FRAME = 1 + 3 * (2 + 32767) + 2;

/**
 * Splits a byte stream into frames. A frame cut by a read boundary is
 * completed in a small carry buffer; whole frames are handed over in place.
 */
export class FrameScanner {
  #carry = new Uint8Array(0);
  #held = 0;

  feed(chunk: Uint8Array, n: number, sink: FrameSink): void {
    let off = 0;
    if (this.#held > 0) {
      off = this.#completeCarry(chunk, n, sink);
      if (off < 0) return;
    }
    while (off < n) {
      const len = frameLength(chunk, off, n);
      if (len < 0) {
        this.#hold(chunk.subarray(off, n));
        return;
      }
      sink.onFrame(chunk[off], chunk, off, len);
      off += len;
    }
  }

  /** Returns where the chunk's own frames start, or -1 if all of it was carried. */
  #completeCarry(chunk: Uint8Array, n: number, sink: FrameSink): number {
    const take = Math.min(n, MAX_FRAME);
    this.#ensure(this.#held + take);
    this.#carry.set(chunk.subarray(0, take), this.#held);
    const len = frameLength(this.#carry, 0, this.#held + take);
    if (len < 0) {
      if (take < n) throw new Error("frame longer than any ChatOS frame");
      this.#held += take;
      return -1;
    }
    const used = len - this.#held;
    this.#held = 0;
    sink.onFrame(this.#carry[0], this.#carry, 0, len);
    return used;
  }

  #hold(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#carry.set(bytes, 0);
    this.#held = bytes.length;
  }

  #ensure(size: number): void {
    if (this.#carry.length >= size) return;
    const grown = new Uint8Array(Math.max(size, 2 * this.#carry.length, 256));
    grown.set(this.#carry.subarray(0, this.#held));
    this.#carry = grown;
  }
}
