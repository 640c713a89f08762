import { type Frame, Op } from "./frames.ts";
import { MAX_WIRE_STRING } from "./encoder.ts";
import { concatBytes } from "../lib/bytes.ts";

/** Why a byte stream is not ChatOS. Returned as a value, never thrown. */
export type ProtocolError =
  | { kind: "unknown-opcode"; opcode: number }
  | { kind: "negative-length"; length: number }
  | { kind: "string-too-long"; length: number; limit: number }
  | { kind: "invalid-utf8" };

export function describeProtocolError(e: ProtocolError): string {
  switch (e.kind) {
    case "unknown-opcode":
      return `unknown opcode ${e.opcode}`;
    case "negative-length":
      return `negative string length ${e.length}`;
    case "string-too-long":
      return `string length ${e.length} over the limit ${e.limit}`;
    case "invalid-utf8":
      return "string is not valid UTF-8";
  }
}

/**
 * One decoded frame. `raw` is the frame's exact bytes, valid only until the
 * decoder's next `push`: a view of the pushed chunk (the caller's read
 * buffer), or of the decoder's own store for a frame assembled from several
 * chunks, which it reuses. Copy it (`raw.slice()`) to keep it longer.
 */
export interface Decoded {
  ok: true;
  frame: Frame;
  raw: Uint8Array;
}
export interface Malformed {
  ok: false;
  error: ProtocolError;
}
export type DecodeStep = Decoded | Malformed | null;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Number of STRING fields and whether a SHORT password follows, by opcode. */
const LAYOUT: ReadonlyArray<readonly [strings: number, password: boolean] | undefined> = [
  undefined,
  [1, false], // CR
  [3, false], // SPM
  [2, false], // SMA
  [2, true], // TCPAsk
  [2, true], // TCPAccept
  [2, true], // TCPAbort
  [2, true], // TCPConnect
];

const NEED_MORE = -1;

/**
 * Measures the frame starting at `off`: its total length, NEED_MORE if the
 * bytes end first, or a ProtocolError. `at(i)` reads byte i of the logical
 * stream, so the same code measures a frame split across two buffers.
 */
function measure(
  at: (i: number) => number,
  off: number,
  end: number,
  maxString: number,
): number | ProtocolError {
  if (off >= end) return NEED_MORE;
  const opcode = at(off);
  if (opcode === Op.ERROR) return end - off >= 2 ? 2 : NEED_MORE;
  const layout = LAYOUT[opcode];
  if (!layout) return { kind: "unknown-opcode", opcode: (opcode << 24) >> 24 };
  let p = off + 1;
  for (let i = 0; i < layout[0]; i++) {
    if (end - p < 2) return NEED_MORE;
    const len = ((at(p) << 24) >> 16) | at(p + 1); // signed 16-bit
    if (len < 0) return { kind: "negative-length", length: len };
    if (len > maxString) return { kind: "string-too-long", length: len, limit: maxString };
    p += 2 + len;
    if (p > end) return NEED_MORE;
  }
  if (layout[1]) {
    p += 2;
    if (p > end) return NEED_MORE;
  }
  return p - off;
}

/** Short ASCII strings (pseudos, chat lines) are decoded in JS: cheaper than a call into the runtime. */
const ASCII_FAST_MAX = 64;

/** UTF-8 bytes `buf[start, end)` as a string, or null if they are not valid UTF-8. */
function decodeUtf8(buf: Uint8Array, start: number, end: number): string | null {
  if (end - start <= ASCII_FAST_MAX) {
    let i = start;
    while (i < end && buf[i] < 0x80) i++;
    if (i === end) {
      return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
    }
  }
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    return null; // the fatal decoder throws on invalid UTF-8: that is the answer
  }
}

/** True if `buf[start, end)` is valid UTF-8; ASCII is checked without leaving JS. */
function isUtf8(buf: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end && buf[i] < 0x80) i++;
  return i === end || decodeUtf8(buf, i, end) !== null;
}

/**
 * The message text of an SPM or SMA, decoded only if someone reads it. A
 * relaying server checks that the bytes are UTF-8 but never needs the string.
 * Valid only while `buf` is: read it before the decoder's next `push`.
 */
class LazyText {
  #buf: Uint8Array;
  #start: number;
  #end: number;
  #text: string | undefined;
  constructor(buf: Uint8Array, start: number, end: number) {
    this.#buf = buf;
    this.#start = start;
    this.#end = end;
  }
  get message(): string {
    return (this.#text ??= decodeUtf8(this.#buf, this.#start, this.#end)!);
  }
}
class LazySPM extends LazyText {
  readonly op = Op.SPM;
  constructor(
    readonly sender: string,
    readonly recipient: string,
    b: Uint8Array,
    s: number,
    e: number,
  ) {
    super(b, s, e);
  }
}
class LazySMA extends LazyText {
  readonly op = Op.SMA;
  constructor(readonly sender: string, b: Uint8Array, s: number, e: number) {
    super(b, s, e);
  }
}

/**
 * The last sender and recipient a decoder saw, bytes and string. A chat
 * connection names the same few pseudos over and over: comparing a handful of
 * bytes is cheaper than building the string again (measured ~13% of an SPM
 * relay's CPU went to those strings).
 */
class RecentNames {
  bytes: Array<Uint8Array | null> = [null, null];
  names: string[] = ["", ""];

  lookup(slot: number, buf: Uint8Array, start: number, end: number): string | null {
    const known = this.bytes[slot];
    if (known === null || known.length !== end - start) return null;
    for (let i = 0; i < known.length; i++) if (known[i] !== buf[start + i]) return null;
    return this.names[slot];
  }

  remember(slot: number, buf: Uint8Array, start: number, end: number, name: string): void {
    if (end - start > 64) return;
    this.bytes[slot] = buf.slice(start, end);
    this.names[slot] = name;
  }
}

/** Parses a frame already known (by `measure`) to be complete in `buf[off, off+len)`. */
function parse(
  buf: Uint8Array,
  off: number,
  lazyMessage: boolean,
  recent: RecentNames,
): Frame | ProtocolError {
  const opcode = buf[off];
  if (opcode === Op.ERROR) return { op: Op.ERROR, code: (buf[off + 1] << 24) >> 24 };
  const count = LAYOUT[opcode]![0];
  const strings: string[] = [];
  let p = off + 1;
  const hasMessage = opcode === Op.SPM || opcode === Op.SMA;
  for (let i = 0; i < count; i++) {
    const len = (buf[p] << 8) | buf[p + 1];
    if (lazyMessage && hasMessage && i === count - 1) {
      if (!isUtf8(buf, p + 2, p + 2 + len)) return { kind: "invalid-utf8" };
      return opcode === Op.SPM
        ? new LazySPM(strings[0], strings[1], buf, p + 2, p + 2 + len)
        : new LazySMA(strings[0], buf, p + 2, p + 2 + len);
    }
    // Fields 0 and 1 of a frame with two or more are pseudos (sender, recipient).
    const slot = count > 1 && i < 2 ? i : -1;
    let s = slot >= 0 ? recent.lookup(slot, buf, p + 2, p + 2 + len) : null;
    if (s === null) {
      s = decodeUtf8(buf, p + 2, p + 2 + len);
      if (s === null) return { kind: "invalid-utf8" };
      if (slot >= 0) recent.remember(slot, buf, p + 2, p + 2 + len, s);
    }
    strings.push(s);
    p += 2 + len;
  }
  switch (opcode) {
    case Op.CR:
      return { op: Op.CR, pseudo: strings[0] };
    case Op.SPM:
      return { op: Op.SPM, sender: strings[0], recipient: strings[1], message: strings[2] };
    case Op.SMA:
      return { op: Op.SMA, sender: strings[0], message: strings[1] };
  }
  const password = ((buf[p] << 24) >> 16) | buf[p + 1];
  return {
    op: opcode as 4 | 5 | 6 | 7,
    sender: strings[0],
    recipient: strings[1],
    password,
  };
}

function isError(x: Frame | ProtocolError): x is ProtocolError {
  return "kind" in x;
}

const EMPTY = new Uint8Array(0);

/**
 * Incremental ChatOS decoder. Feed it chunks of any size with `push`, then
 * call `next` until it returns null (needs more bytes). Frames that lie
 * wholly inside a pushed chunk are parsed in place, without copying; only a
 * frame split across chunks is assembled, in the decoder's store. After a
 * Malformed step the stream is unrecoverable and the decoder stays failed.
 */
export class FrameDecoder {
  #maxString: number;
  #lazy: boolean;
  #recent = new RecentNames();
  /**
   * Bytes of an incomplete frame carried over from earlier chunks live in
   * `#store[#cs, #ce)`. The store grows by doubling, so a frame that arrives
   * in many tiny chunks costs linear, not quadratic, copying. A frame
   * completed there is handed out as a view of it, and the carry moves to
   * the other store (`#spare`) until the next `push`: the tail of the same
   * chunk must not overwrite a frame the caller still holds. The two stores
   * are reused frame after frame: a new buffer for each 32 KiB frame (every
   * one spans reads) made V8 hold ~64 MiB of dead ones between collections.
   * Both are let go whenever a chunk ends on a frame boundary, so a
   * connection that goes quiet keeps neither.
   */
  #store: Uint8Array = EMPTY;
  #spare: Uint8Array = EMPTY;
  #cs = 0;
  #ce = 0;
  #chunk: Uint8Array = EMPTY;
  #off = 0;
  #failed: Malformed | null = null;

  /**
   * `lazyMessage`: SPM and SMA messages are validated as UTF-8 but decoded to
   * a string only when read, and must then be read before the next `push`
   * (a relay never reads them).
   */
  constructor(maxString = MAX_WIRE_STRING, opts: { lazyMessage?: boolean } = {}) {
    this.#maxString = Math.min(maxString, MAX_WIRE_STRING);
    this.#lazy = opts.lazyMessage ?? false;
  }

  /** Hands the decoder a chunk. It is only read until the next `push`. */
  push(chunk: Uint8Array): void {
    if (this.#off < this.#chunk.length) {
      // Unconsumed bytes of the previous chunk become carry (only happens
      // when the caller pushes before draining `next`).
      this.#carryAppend(this.#chunk.subarray(this.#off));
    }
    this.#chunk = chunk;
    this.#off = 0;
  }

  next(): DecodeStep {
    if (this.#failed) return this.#failed;
    if (this.#ce > this.#cs) return this.#nextAcross();
    const buf = this.#chunk;
    const off = this.#off;
    const len = measure((i) => buf[i], off, buf.length, this.#maxString);
    if (typeof len !== "number") return this.#fail(len);
    if (len === NEED_MORE) {
      if (off < buf.length) this.#carryAppend(buf.subarray(off));
      else this.#release();
      this.#off = buf.length;
      return null;
    }
    const parsed = parse(buf, off, this.#lazy, this.#recent);
    if (isError(parsed)) return this.#fail(parsed);
    this.#off = off + len;
    return { ok: true, frame: parsed, raw: buf.subarray(off, off + len) };
  }

  /** A frame that starts in the carry and may end in the current chunk. */
  #nextAcross(): DecodeStep {
    const store = this.#store;
    const cs = this.#cs;
    const chunk = this.#chunk;
    const off = this.#off;
    const cl = this.#ce - cs;
    const end = cl + chunk.length - off;
    const len = measure(
      (i) => (i < cl ? store[cs + i] : chunk[off + i - cl]),
      0,
      end,
      this.#maxString,
    );
    if (typeof len !== "number") return this.#fail(len);
    if (len === NEED_MORE) {
      this.#carryAppend(chunk.subarray(off));
      this.#off = chunk.length;
      return null;
    }
    if (len <= cl) {
      // The frame lies wholly inside the carry: `push` was called again
      // before `next` drained the previous chunk, so the carry can hold
      // several frames. Take this one and leave the rest carried.
      const frameBytes = store.slice(cs, cs + len);
      const parsed = parse(frameBytes, 0, this.#lazy, this.#recent);
      if (isError(parsed)) return this.#fail(parsed);
      this.#cs = cs + len;
      if (this.#cs === this.#ce) this.#carryClear();
      return { ok: true, frame: parsed, raw: frameBytes };
    }
    // Completes the frame in the store, and hands out a view of it.
    this.#carryAppend(chunk.subarray(off, off + len - cl));
    const start = this.#cs;
    const frameBytes = this.#store.subarray(start, start + len);
    const parsed = parse(this.#store, start, this.#lazy, this.#recent);
    if (isError(parsed)) {
      this.#ce -= len - cl; // those bytes are still the chunk's: carried once, not twice
      return this.#fail(parsed);
    }
    this.#off = off + len - cl;
    // The carry is empty now: it continues in the other store until the next push.
    [this.#store, this.#spare] = [this.#spare, this.#store];
    this.#cs = this.#ce = 0;
    return { ok: true, frame: parsed, raw: frameBytes };
  }

  #carryAppend(bytes: Uint8Array): void {
    const held = this.#ce - this.#cs;
    const need = held + bytes.length;
    if (this.#ce + bytes.length > this.#store.length) {
      if (need <= this.#store.length) {
        this.#store.copyWithin(0, this.#cs, this.#ce);
      } else {
        const grown = new Uint8Array(Math.max(need, 2 * this.#store.length, 64));
        grown.set(this.#store.subarray(this.#cs, this.#ce));
        this.#store = grown;
      }
      this.#cs = 0;
      this.#ce = held;
    }
    this.#store.set(bytes, this.#ce);
    this.#ce += bytes.length;
  }

  /** Empties the carry and lets its storage go (idle connections stay small). */
  #carryClear(): void {
    this.#store = EMPTY;
    this.#cs = this.#ce = 0;
  }

  /** At a frame boundary with nothing carried: lets both stores go (a lent one lives on in its frame). */
  #release(): void {
    if (this.#ce !== this.#cs) return;
    this.#carryClear();
    this.#spare = EMPTY;
  }

  #fail(error: ProtocolError): Malformed {
    this.#failed = { ok: false, error };
    return this.#failed;
  }

  /**
   * Takes every byte pushed but not yet decoded, and empties the decoder.
   * A private link's first frame is ChatOS; what follows it is opaque and is
   * handed over with this. The returned bytes are the caller's own (a copy).
   */
  takeRemainder(): Uint8Array {
    const carried = this.#store.subarray(this.#cs, this.#ce);
    const unread = this.#chunk.subarray(this.#off);
    // The chunk is the caller's read buffer: copy it. The carry is ours and dropped below.
    const rest = carried.length === 0 ? unread.slice() : concatBytes([carried, unread]);
    this.#carryClear();
    this.#spare = EMPTY;
    this.#chunk = EMPTY;
    this.#off = 0;
    return rest;
  }

  /** Bytes held over from earlier chunks (an incomplete frame). */
  get buffered(): number {
    return this.#ce - this.#cs;
  }
}
