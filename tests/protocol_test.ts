/**
 * ChatOS codec tests: hand-written byte vectors, seeded property tests of the
 * incremental decoder (chunking, garbage, ownership of `raw`), the documented
 * protocol errors, and `takeRemainder` for private links.
 *
 * Randomised tests print their seed on failure; replay with
 * `CHATOS_SEED=<seed> deno test -A tests/protocol_test.ts`.
 */

import assert from "node:assert/strict";
import {
  type Decoded,
  type DecodeStep,
  encode,
  EncodeError,
  encodeError,
  type Frame,
  FrameDecoder,
  handshakeId,
  type Malformed,
  MAX_WIRE_STRING,
  OK_FRAME,
  Op,
  opName,
  type ProtocolError,
  readHandshakeKey,
} from "../src/protocol/mod.ts";
import { Rng, withSeed } from "./helpers/prng.ts";
import { concatBytes } from "../src/lib/bytes.ts";

// ---------------------------------------------------------------------------
// helpers

const te = new TextEncoder();

function bytes(...parts: (number | string | Uint8Array | number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p & 0xff);
    else if (typeof p === "string") out.push(...te.encode(p));
    else out.push(...p);
  }
  return Uint8Array.from(out);
}

/** A STRING field from raw payload bytes: big-endian SHORT length, then the bytes. */
function wireString(payload: Uint8Array | string): Uint8Array {
  const b = typeof payload === "string" ? te.encode(payload) : payload;
  return bytes((b.length >> 8) & 0xff, b.length & 0xff, b);
}

function split(stream: Uint8Array, sizes: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let off = 0;
  for (const n of sizes) {
    chunks.push(stream.subarray(off, off + n));
    off += n;
  }
  assert.equal(off, stream.length);
  return chunks;
}

function hex(b: Uint8Array, max = 48): string {
  const s = Array.from(b.subarray(0, max), (x) => x.toString(16).padStart(2, "0")).join(" ");
  return b.length > max ? `${s} … (${b.length} bytes)` : s;
}

/** Byte equality without handing a 100 KB diff to assert on failure. */
function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.length === expected.length && actual.every((x, i) => x === expected[i])) return;
  assert.fail(`${what}: bytes differ\n  actual:   ${hex(actual)}\n  expected: ${hex(expected)}`);
}

function isDecoded(s: DecodeStep): s is Decoded {
  return s !== null && s.ok;
}
function isMalformed(s: DecodeStep): s is Malformed {
  return s !== null && !s.ok;
}

/** Short description of a frame for assertion messages (no 32 KB strings). */
function brief(f: Frame): string {
  return JSON.stringify(
    f,
    (_k, v) => typeof v === "string" && v.length > 24 ? `${v.slice(0, 24)}…(${v.length})` : v,
  );
}

function assertFrame(actual: Frame, expected: Frame, what: string): void {
  try {
    assert.deepStrictEqual(actual, expected);
  } catch {
    assert.fail(
      `${what}: frame differs\n  actual:   ${brief(actual)}\n  expected: ${brief(expected)}`,
    );
  }
}

/** Pushes `chunk` and drains `next()`; stops at the first Malformed. */
function pushAndDrain(dec: FrameDecoder, chunk: Uint8Array, out: DecodeStep[]): Malformed | null {
  dec.push(chunk);
  for (;;) {
    const step = dec.next();
    if (step === null) return null;
    out.push(step);
    if (!step.ok) return step;
  }
}

/** Decodes a whole byte string in one push. */
function decodeAll(input: Uint8Array, maxString?: number): DecodeStep[] {
  const out: DecodeStep[] = [];
  pushAndDrain(new FrameDecoder(maxString), input, out);
  return out;
}

/** The first Malformed step produced by decoding `input` in one chunk. */
function errorOf(input: Uint8Array, maxString?: number): ProtocolError {
  const steps = decodeAll(input, maxString);
  const last = steps.at(-1);
  assert.ok(
    last && !last.ok,
    `expected a Malformed step for ${hex(input)}, got ${steps.length} frame(s)`,
  );
  return last.error;
}

const ALL_OPS: Op[] = [
  Op.CR,
  Op.SPM,
  Op.SMA,
  Op.TCPAsk,
  Op.TCPAccept,
  Op.TCPAbort,
  Op.TCPConnect,
  Op.ERROR,
];

// ---------------------------------------------------------------------------
// unit: hand-written byte vectors

const VECTORS: { name: string; frame: Frame; wire: Uint8Array }[] = [
  {
    name: "CR",
    frame: { op: Op.CR, pseudo: "bob" },
    wire: bytes(0x01, 0x00, 0x03, "bob"),
  },
  {
    name: "CR with a 258-byte pseudo (length high byte in use)",
    frame: { op: Op.CR, pseudo: "x".repeat(258) },
    wire: bytes(0x01, 0x01, 0x02, "x".repeat(258)),
  },
  {
    name: "SPM with a 2-byte character",
    frame: { op: Op.SPM, sender: "a", recipient: "bc", message: "é" },
    wire: bytes(0x02, 0x00, 0x01, "a", 0x00, 0x02, "bc", 0x00, 0x02, 0xc3, 0xa9),
  },
  {
    name: "SMA with an empty message and an emoji sender",
    frame: { op: Op.SMA, sender: "😀", message: "" },
    wire: bytes(0x03, 0x00, 0x04, 0xf0, 0x9f, 0x98, 0x80, 0x00, 0x00),
  },
  {
    name: "TCPAsk, password -1",
    frame: { op: Op.TCPAsk, sender: "a", recipient: "b", password: -1 },
    wire: bytes(0x04, 0x00, 0x01, "a", 0x00, 0x01, "b", 0xff, 0xff),
  },
  {
    name: "TCPAccept, password 0x1234",
    frame: { op: Op.TCPAccept, sender: "alice", recipient: "bob", password: 0x1234 },
    wire: bytes(0x05, 0x00, 0x05, "alice", 0x00, 0x03, "bob", 0x12, 0x34),
  },
  {
    name: "TCPAbort, password -32768",
    frame: { op: Op.TCPAbort, sender: "a", recipient: "b", password: -32768 },
    wire: bytes(0x06, 0x00, 0x01, "a", 0x00, 0x01, "b", 0x80, 0x00),
  },
  {
    name: "TCPConnect, password 32767",
    frame: { op: Op.TCPConnect, sender: "a", recipient: "€", password: 32767 },
    wire: bytes(0x07, 0x00, 0x01, "a", 0x00, 0x03, 0xe2, 0x82, 0xac, 0x7f, 0xff),
  },
  {
    name: "ERROR 3 (Invalid Pseudonym)",
    frame: { op: Op.ERROR, code: 3 },
    wire: bytes(0x08, 0x03),
  },
  {
    name: "ERROR -1 (signed code byte)",
    frame: { op: Op.ERROR, code: -1 },
    wire: bytes(0x08, 0xff),
  },
  {
    name: "ERROR -128",
    frame: { op: Op.ERROR, code: -128 },
    wire: bytes(0x08, 0x80),
  },
];

for (const v of VECTORS) {
  Deno.test(`encode/decode vector: ${v.name}`, () => {
    assertBytes(encode(v.frame), v.wire, "encode");
    const steps = decodeAll(v.wire);
    assert.equal(steps.length, 1);
    const step = steps[0];
    assert.ok(isDecoded(step), `decode failed: ${JSON.stringify(step)}`);
    assert.deepStrictEqual(step.frame, v.frame);
    assertBytes(step.raw, v.wire, "raw");
  });
}

Deno.test("vectors cover all 8 opcodes", () => {
  assert.deepStrictEqual([...new Set(VECTORS.map((v) => v.frame.op))].sort(), ALL_OPS);
});

Deno.test("encodeError and OK_FRAME", () => {
  assertBytes(OK_FRAME, bytes(0x08, 0x01), "OK_FRAME");
  assertBytes(encodeError(6), bytes(0x08, 0x06), "ERROR 6");
  assertBytes(encodeError(255), bytes(0x08, 0xff), "ERROR 255 wraps to the byte 0xFF");
  assert.equal(encode({ op: Op.ERROR, code: 1 }), OK_FRAME, "ERROR frames are shared, not copied");
});

Deno.test("BOM at the start of a string is kept, not stripped", () => {
  const frame: Frame = { op: Op.SMA, sender: "\uFEFFa", message: "\uFEFF" };
  const wire = encode(frame);
  assertBytes(
    wire,
    bytes(0x03, 0x00, 0x04, 0xef, 0xbb, 0xbf, "a", 0x00, 0x03, 0xef, 0xbb, 0xbf),
    "encode",
  );
  const [step] = decodeAll(wire);
  assert.ok(isDecoded(step));
  assert.deepStrictEqual(step.frame, frame);
});

Deno.test("NUL and other control characters are ordinary string bytes", () => {
  const frame: Frame = { op: Op.CR, pseudo: "\0\n\x7f" };
  const [step] = decodeAll(encode(frame));
  assert.ok(isDecoded(step));
  assert.deepStrictEqual(step.frame, frame);
});

Deno.test("encode replaces a lone surrogate with U+FFFD (the wire is always valid UTF-8)", () => {
  assertBytes(
    encode({ op: Op.CR, pseudo: "\uD800" }),
    bytes(0x01, 0x00, 0x03, 0xef, 0xbf, 0xbd),
    "encode",
  );
});

// ---------------------------------------------------------------------------
// encode limits

Deno.test("encode: 32767-byte strings are allowed in every field", () => {
  const max = "a".repeat(MAX_WIRE_STRING);
  const wire = encode({ op: Op.SPM, sender: max, recipient: max, message: max });
  assert.equal(wire.length, 1 + 3 * (2 + MAX_WIRE_STRING));
  assert.deepStrictEqual([wire[1], wire[2]], [0x7f, 0xff]);
});

Deno.test("encode throws EncodeError for a string over 32767 bytes", () => {
  const over = "a".repeat(MAX_WIRE_STRING + 1);
  // Byte length, not UTF-16 length, is what counts: 10923 × "€" is 32769 bytes.
  const overMultibyte = "€".repeat(10923);
  assert.equal(overMultibyte.length, 10923);
  const cases: Frame[] = [
    { op: Op.CR, pseudo: over },
    { op: Op.CR, pseudo: overMultibyte },
    { op: Op.SPM, sender: "a", recipient: "b", message: over },
    { op: Op.SPM, sender: over, recipient: "b", message: "c" },
    { op: Op.SMA, sender: "a", message: overMultibyte },
    { op: Op.SMA, sender: over, message: "" },
    { op: Op.TCPAsk, sender: "a", recipient: over, password: 1 },
    { op: Op.TCPAccept, sender: over, recipient: "b", password: 1 },
    { op: Op.TCPAbort, sender: "a", recipient: overMultibyte, password: 1 },
    { op: Op.TCPConnect, sender: over, recipient: "b", password: 1 },
  ];
  for (const f of cases) {
    assert.throws(() => encode(f), EncodeError, `no EncodeError for ${brief(f)}`);
  }
});

// ---------------------------------------------------------------------------
// property: round trip through arbitrary chunking

/**
 * Decodes `chunks` with a decoder, draining after each push. If `scratch` is
 * given, every chunk is first copied into that one reused buffer (like a
 * socket read buffer), and each raw that is a view into it is copied at once,
 * as the decoder's contract requires; raws that are not views must stay
 * intact after the buffer is overwritten.
 */
function decodeChunks(
  chunks: Uint8Array[],
  opts: { scratch?: Uint8Array; maxString?: number } = {},
): { steps: DecodeStep[]; raws: Uint8Array[]; owned: boolean[] } {
  const dec = new FrameDecoder(opts.maxString);
  const steps: DecodeStep[] = [];
  const raws: Uint8Array[] = [];
  const owned: boolean[] = [];
  for (const chunk of chunks) {
    let input = chunk;
    if (opts.scratch) {
      opts.scratch.fill(0xa5); // stale garbage from the "previous read"
      opts.scratch.set(chunk);
      input = opts.scratch.subarray(0, chunk.length);
    }
    const before = steps.length;
    const bad = pushAndDrain(dec, input, steps);
    // Checked before the next push, after the rest of this chunk was drained
    // (its tail carried): that is as long as a raw is valid.
    for (const s of steps.slice(before)) {
      if (!isDecoded(s)) continue;
      owned.push(s.raw.buffer !== input.buffer);
      raws.push(s.raw.slice());
    }
    if (bad) break;
  }
  return { steps, raws, owned };
}

function randomFrames(rng: Rng, pHuge: number): Frame[] {
  const n = rng.chance(0.1) ? 1 : rng.int(1, 24);
  return Array.from({ length: n }, () => rng.frame(undefined, pHuge));
}

Deno.test("property: random frames, randomly chunked, decode to the same frames and bytes", async () => {
  await withSeed("roundtrip", (rng) => {
    const ITER = 400;
    let ownedSeen = 0, viewSeen = 0;
    for (let it = 0; it < ITER; it++) {
      const frames = randomFrames(rng, it % 10 === 0 ? 0.15 : 0.003);
      const encoded = frames.map(encode);
      const stream = concatBytes(encoded);
      // Chunking: one whole chunk, 1-byte chunks (up to 64 KiB of stream, to
      // keep the run short), cuts at frame boundaries ±1, or random sizes.
      const mode = it % 4;
      let sizes: number[];
      if (mode === 0) sizes = [stream.length];
      else if (mode === 1 && stream.length <= 65536) sizes = new Array(stream.length).fill(1);
      else if (mode === 2) {
        sizes = [];
        let prev = 0, pos = 0;
        for (const e of encoded) {
          pos += e.length;
          const cut = Math.min(stream.length, Math.max(prev + 1, pos + rng.int(-1, 1)));
          if (cut > prev) sizes.push(cut - prev), prev = cut;
        }
        if (prev < stream.length) sizes.push(stream.length - prev);
      } else sizes = rng.cuts(stream.length);

      const scratch = rng.chance(0.5) ? new Uint8Array(Math.max(...sizes)) : undefined;
      const { steps, raws, owned } = decodeChunks(split(stream, sizes), { scratch });
      const ctx = `iteration ${it}, ${frames.length} frames, ${stream.length} bytes, ` +
        `${sizes.length} chunks${scratch ? ", reused read buffer" : ""}`;
      assert.equal(steps.length, frames.length, `${ctx}: frame count`);
      for (let i = 0; i < frames.length; i++) {
        const s = steps[i];
        assert.ok(isDecoded(s), `${ctx}: frame ${i} is ${JSON.stringify(s)}`);
        assertFrame(s.frame, frames[i], `${ctx}: frame ${i}`);
      }
      // Copied before the next push, after the rest of their chunk was drained.
      for (let i = 0; i < frames.length; i++) {
        assertBytes(
          raws[i],
          encoded[i],
          `${ctx}: raw of frame ${i}${owned[i] ? " (assembled)" : ""}`,
        );
        if (owned[i]) ownedSeen++;
        else viewSeen++;
      }
    }
    assert.ok(ownedSeen > 100 && viewSeen > 100, `coverage: ${ownedSeen} owned, ${viewSeen} views`);
  });
});

Deno.test("property: pushing several chunks before draining decodes the same frames", async () => {
  await withSeed("push-without-drain", (rng) => {
    for (let it = 0; it < 300; it++) {
      const frames = randomFrames(rng, 0.002);
      const encoded = frames.map(encode);
      const stream = concatBytes(encoded);
      const dec = new FrameDecoder();
      const got: DecodeStep[] = [];
      const raws: Uint8Array[] = []; // copied at once: a raw is valid until the next push
      for (const chunk of split(stream, rng.cuts(stream.length))) {
        dec.push(chunk);
        // Drain sometimes, not at all, or only partly.
        const r = rng.float();
        if (r < 0.4) continue;
        let budget = r < 0.7 ? rng.int(1, 3) : Infinity;
        for (let s = dec.next(); s !== null; s = budget > 0 ? dec.next() : null) {
          got.push(s);
          if (s.ok) raws.push(s.raw.slice());
          budget--;
          if (!s.ok) break;
        }
      }
      for (let s = dec.next(); s !== null; s = dec.next()) {
        got.push(s);
        if (s.ok) raws.push(s.raw.slice());
        if (!s.ok) break;
      }
      const ctx = `iteration ${it}, ${frames.length} frames, ${stream.length} bytes`;
      assert.equal(got.length, frames.length, `${ctx}: frame count`);
      for (let i = 0; i < frames.length; i++) {
        const s = got[i];
        assert.ok(isDecoded(s), `${ctx}: frame ${i} is ${JSON.stringify(s)}`);
        assertFrame(s.frame, frames[i], `${ctx}: frame ${i}`);
        assertBytes(raws[i], encoded[i], `${ctx}: raw of frame ${i}`);
      }
      assert.equal(dec.buffered, 0);
      assert.equal(dec.takeRemainder().length, 0);
    }
  });
});

Deno.test("regression: a second push before draining, with whole frames left in the first chunk", () => {
  // push() moves the undrained rest of the previous chunk into the carry, so
  // the carry can hold whole frames. next() used to assume a carried frame
  // always ends in the current chunk and threw a RangeError here.
  const sma = encode({ op: Op.SMA, sender: "a", message: "hello" });
  const dec = new FrameDecoder();
  dec.push(bytes(OK_FRAME, sma, sma.subarray(0, 3)));
  dec.push(bytes(sma.subarray(3), OK_FRAME));
  dec.push(bytes(encodeError(4)));
  const got: DecodeStep[] = [];
  for (let s = dec.next(); s !== null; s = dec.next()) got.push(s);
  assert.deepStrictEqual(
    got.map((s) => isDecoded(s) ? Array.from(s.raw) : s),
    [OK_FRAME, sma, sma, OK_FRAME, encodeError(4)].map((b) => Array.from(b)),
  );
  assert.equal(dec.buffered, 0);
});

Deno.test("a maximum-size frame arriving one byte at a time decodes", () => {
  const max = "€".repeat(10922) + "a"; // 32767 bytes
  const frame: Frame = { op: Op.SPM, sender: max, recipient: max, message: max };
  const wire = encode(frame);
  const dec = new FrameDecoder();
  const steps: DecodeStep[] = [];
  for (let i = 0; i < wire.length; i++) pushAndDrain(dec, wire.subarray(i, i + 1), steps);
  assert.equal(steps.length, 1);
  assert.ok(isDecoded(steps[0]));
  assertFrame(steps[0].frame, frame, "1-byte chunks");
  assertBytes(steps[0].raw, wire, "raw");
});

Deno.test("every frame type round-trips with empty and maximum-length strings", () => {
  const max = "a".repeat(MAX_WIRE_STRING);
  const edge: Frame[] = [
    { op: Op.CR, pseudo: "" },
    { op: Op.CR, pseudo: max },
    { op: Op.SPM, sender: "", recipient: "", message: "" },
    { op: Op.SPM, sender: max, recipient: max, message: max },
    { op: Op.SMA, sender: "", message: max },
    { op: Op.TCPAsk, sender: max, recipient: "", password: -32768 },
    { op: Op.TCPAccept, sender: "", recipient: max, password: 32767 },
    { op: Op.TCPAbort, sender: "", recipient: "", password: 0 },
    { op: Op.TCPConnect, sender: "😀".repeat(8191), recipient: "é", password: -1 }, // 32764 bytes
    { op: Op.ERROR, code: 127 },
  ];
  const encoded = edge.map(encode);
  const steps = decodeAll(concatBytes(encoded));
  assert.equal(steps.length, edge.length);
  steps.forEach((s, i) => {
    assert.ok(isDecoded(s));
    assertFrame(s.frame, edge[i], `frame ${i}`);
    assertBytes(s.raw, encoded[i], `raw ${i}`);
  });
});

// ---------------------------------------------------------------------------
// property: garbage never throws

const ERROR_KINDS = new Set([
  "unknown-opcode",
  "negative-length",
  "string-too-long",
  "invalid-utf8",
]);

function checkError(e: ProtocolError, limit: number, ctx: string): void {
  assert.ok(ERROR_KINDS.has(e.kind), `${ctx}: unexpected error kind ${JSON.stringify(e)}`);
  switch (e.kind) {
    case "unknown-opcode":
      assert.ok(Number.isInteger(e.opcode) && e.opcode >= -128 && e.opcode <= 127, ctx);
      assert.ok(e.opcode < 1 || e.opcode > 8, `${ctx}: valid opcode reported unknown`);
      break;
    case "negative-length":
      assert.ok(Number.isInteger(e.length) && e.length >= -32768 && e.length < 0, ctx);
      break;
    case "string-too-long":
      assert.equal(e.limit, limit, ctx);
      assert.ok(e.length > limit && e.length <= MAX_WIRE_STRING, ctx);
      break;
    case "invalid-utf8":
      assert.deepStrictEqual(Object.keys(e), ["kind"], ctx);
  }
}

/** Random bytes biased so they often start like a frame and go a few fields deep. */
function garbage(rng: Rng): Uint8Array {
  const n = rng.pick([0, 1, 2, 3, 5, 8, 40, 300, 2000]);
  const out = rng.bytes(n);
  if (n > 0 && rng.chance(0.7)) out[0] = rng.int(0, 9);
  // Plausible short lengths, so parsing gets as far as the UTF-8 check.
  if (n > 2 && rng.chance(0.5)) out[1] = 0, out[2] = rng.int(0, Math.min(40, n));
  return out;
}

/** A valid stream with a few bytes overwritten, inserted, removed, or cut short. */
function corrupted(rng: Rng): Uint8Array {
  const good = concatBytes(randomFrames(rng, 0.002).map(encode));
  const b = Array.from(good);
  const edits = rng.int(1, 4);
  for (let i = 0; i < edits && b.length > 0; i++) {
    const at = rng.int(0, b.length - 1);
    const special = rng.pick([0x00, 0x09, 0x80, 0xff, 0xc0, 0xc3, 0xed, 0xf4, 0xf8, 0x7f]);
    switch (rng.int(0, 4)) {
      case 0:
        b[at] = rng.int(0, 255);
        break;
      case 1:
        b[at] = special;
        break;
      case 2:
        b.splice(at, 0, rng.chance(0.5) ? special : rng.int(0, 255));
        break;
      case 3:
        b.splice(at, rng.int(1, 3));
        break;
      case 4:
        b.length = at;
    }
  }
  return Uint8Array.from(b);
}

Deno.test("property: garbage and corrupted streams never throw; errors are values", async () => {
  await withSeed("garbage", (rng) => {
    const counts: Record<string, number> = {};
    for (let it = 0; it < 1500; it++) {
      const input = it % 2 === 0 ? garbage(rng) : corrupted(rng);
      const limit = rng.chance(0.3) ? rng.pick([0, 16, 1024]) : MAX_WIRE_STRING;
      const ctx = `iteration ${it}, limit ${limit}, input ${hex(input)}`;
      const dec = new FrameDecoder(limit);
      const decoded: Uint8Array[] = [];
      let failed: Malformed | null = null;
      let pushed = 0;
      let early = false;
      for (const chunk of split(input, rng.cuts(input.length))) {
        dec.push(chunk);
        pushed += chunk.length;
        for (let s = dec.next(); s !== null; s = dec.next()) {
          if (failed) {
            // Stays failed, returning the very same Malformed value.
            assert.equal(s, failed, `${ctx}: decoder left the failed state`);
            break;
          }
          if (s.ok) {
            // A decoded frame re-encodes to exactly its raw bytes.
            assertBytes(encode(s.frame), s.raw, `${ctx}: re-encode`);
            decoded.push(s.raw.slice());
          } else {
            checkError(s.error, limit, ctx);
            counts[s.error.kind] = (counts[s.error.kind] ?? 0) + 1;
            failed = s;
          }
        }
        if (rng.chance(0.02)) {
          early = true;
          break;
        }
      }
      if (failed) assert.equal(dec.next(), failed, `${ctx}: still failed`);
      const remainder = dec.takeRemainder();
      // Nothing lost or duplicated: decoded frames + remainder = every byte pushed.
      // After a Malformed step the remainder starts at the malformed frame.
      assertBytes(
        concatBytes([...decoded, remainder]),
        input.subarray(0, pushed),
        `${ctx}: accounting`,
      );
      assert.equal(dec.buffered, 0, `${ctx}: takeRemainder empties the carry`);
      if (failed) assert.equal(dec.next(), failed, `${ctx}: takeRemainder does not un-fail`);
      else assert.equal(dec.next(), null, `${ctx}: empty after takeRemainder`);
      if (early) continue;

      // Chunking does not change the outcome: compare with one-push decoding.
      const whole = decodeAll(input, limit);
      const wholeRaws = whole.filter(isDecoded).map((s) => s.raw);
      assert.equal(wholeRaws.length, decoded.length, `${ctx}: chunked vs whole frame count`);
      assert.deepStrictEqual(
        failed?.error,
        whole.find(isMalformed)?.error,
        `${ctx}: chunked vs whole error`,
      );
    }
    for (const kind of ERROR_KINDS) {
      assert.ok((counts[kind] ?? 0) > 10, `coverage: ${kind} seen ${counts[kind] ?? 0} times`);
    }
  });
});

// ---------------------------------------------------------------------------
// specific protocol errors

Deno.test("unknown opcodes 0, 9, 0x7F and 0xFF (-1)", () => {
  for (const [byte, opcode] of [[0x00, 0], [0x09, 9], [0x7f, 127], [0x80, -128], [0xff, -1]]) {
    assert.deepStrictEqual(
      errorOf(bytes(byte)),
      { kind: "unknown-opcode", opcode },
      `opcode byte ${byte}`,
    );
    // Reported as soon as the opcode byte arrives, whatever follows.
    assert.deepStrictEqual(errorOf(bytes(byte, 0, 1, "a")), { kind: "unknown-opcode", opcode });
  }
  // An unknown opcode after valid frames: the frames come out first.
  const steps = decodeAll(bytes(encode({ op: Op.CR, pseudo: "a" }), OK_FRAME, 0x09));
  assert.equal(steps.length, 3);
  assert.ok(isDecoded(steps[0]) && isDecoded(steps[1]));
  assert.deepStrictEqual(steps[2], { ok: false, error: { kind: "unknown-opcode", opcode: 9 } });
});

Deno.test("negative STRING length (0x80 0x00 = -32768, 0xFF 0xFF = -1)", () => {
  assert.deepStrictEqual(errorOf(bytes(0x01, 0x80, 0x00)), {
    kind: "negative-length",
    length: -32768,
  });
  assert.deepStrictEqual(errorOf(bytes(0x01, 0xff, 0xff)), { kind: "negative-length", length: -1 });
  // In the last STRING of an SPM, after two good ones.
  assert.deepStrictEqual(
    errorOf(bytes(0x02, wireString("a"), wireString("b"), 0x80, 0x00, "zzz")),
    { kind: "negative-length", length: -32768 },
  );
  // Reported without waiting for the rest of the frame.
  const dec = new FrameDecoder();
  dec.push(bytes(0x03, 0x00, 0x01));
  assert.equal(dec.next(), null);
  dec.push(bytes("a", 0xc0));
  assert.equal(dec.next(), null);
  dec.push(bytes(0x00));
  assert.deepStrictEqual(dec.next(), {
    ok: false,
    error: { kind: "negative-length", length: -16384 },
  });
});

Deno.test("STRING length over the configured limit", () => {
  const limit = 1024;
  assert.deepStrictEqual(
    errorOf(bytes(0x01, 0x04, 0x01), limit),
    { kind: "string-too-long", length: 1025, limit },
  );
  assert.deepStrictEqual(
    errorOf(bytes(0x05, wireString("a"), 0x7f, 0xff), limit),
    { kind: "string-too-long", length: 32767, limit },
  );
  // Exactly the limit is fine.
  const ok = encode({ op: Op.SMA, sender: "a", message: "m".repeat(limit) });
  const [step] = decodeAll(ok, limit);
  assert.ok(isDecoded(step));
  // The limit is checked on the length field, before the string's bytes arrive.
  const dec = new FrameDecoder(limit);
  dec.push(bytes(0x02, 0x04));
  assert.equal(dec.next(), null);
  dec.push(bytes(0x01));
  assert.deepStrictEqual(dec.next(), {
    ok: false,
    error: { kind: "string-too-long", length: 1025, limit },
  });
});

Deno.test("a 32767-byte STRING decodes with the default decoder; 0x8000 is negative", () => {
  const payload = "😀".repeat(8191) + "abc"; // 32767 bytes, multi-byte
  assert.equal(te.encode(payload).length, 32767);
  for (
    const frame of [
      { op: Op.CR, pseudo: payload },
      { op: Op.SPM, sender: "a", recipient: "b", message: payload },
    ] satisfies Frame[]
  ) {
    const wire = encode(frame);
    const [step] = decodeAll(wire);
    assert.ok(isDecoded(step), JSON.stringify(step));
    assert.deepStrictEqual(step.frame, frame);
  }
  assert.deepStrictEqual(errorOf(bytes(0x01, 0x80, 0x00)), {
    kind: "negative-length",
    length: -32768,
  });
});

Deno.test("invalid UTF-8 in any STRING field", () => {
  const invalid: [string, number[]][] = [
    ["bad continuation C3 28", [0xc3, 0x28]],
    ["encoded lone surrogate ED A0 80", [0xed, 0xa0, 0x80]],
    ["encoded low surrogate ED BF BF", [0xed, 0xbf, 0xbf]],
    ["overlong NUL C0 80", [0xc0, 0x80]],
    ["overlong '/' E0 80 AF", [0xe0, 0x80, 0xaf]],
    ["above U+10FFFF F4 90 80 80", [0xf4, 0x90, 0x80, 0x80]],
    ["lone continuation 80", [0x80]],
    ["FF byte", [0x61, 0xff]],
    ["truncated 3-byte sequence E2 82", [0xe2, 0x82]],
    ["5-byte form F8 88 80 80 80", [0xf8, 0x88, 0x80, 0x80, 0x80]],
  ];
  const good = wireString("ok");
  for (const [name, b] of invalid) {
    const bad = wireString(Uint8Array.from(b));
    const frames = [
      bytes(0x01, bad),
      bytes(0x02, bad, good, good),
      bytes(0x02, good, bad, good),
      bytes(0x02, good, good, bad),
      bytes(0x03, good, bad),
      bytes(0x04, bad, good, 0x00, 0x01),
      bytes(0x07, good, bad, 0xff, 0xff),
    ];
    for (const f of frames) {
      assert.deepStrictEqual(errorOf(f), { kind: "invalid-utf8" }, `${name} in ${hex(f)}`);
      // Same error when the frame arrives one byte at a time.
      const steps: DecodeStep[] = [];
      const dec = new FrameDecoder();
      for (let i = 0; i < f.length; i++) if (pushAndDrain(dec, f.subarray(i, i + 1), steps)) break;
      assert.deepStrictEqual(
        steps,
        [{ ok: false, error: { kind: "invalid-utf8" } }],
        `${name}, 1-byte chunks`,
      );
    }
  }
  // A character split across two STRING fields is invalid in both.
  assert.deepStrictEqual(errorOf(bytes(0x03, wireString(bytes(0xc3)), wireString(bytes(0xa9)))), {
    kind: "invalid-utf8",
  });
});

Deno.test("after Malformed the decoder keeps returning the same Malformed", () => {
  const dec = new FrameDecoder();
  dec.push(bytes(OK_FRAME, 0x09, OK_FRAME));
  const first = dec.next();
  assert.ok(isDecoded(first));
  const bad = dec.next();
  assert.ok(isMalformed(bad));
  for (let i = 0; i < 3; i++) assert.equal(dec.next(), bad);
  dec.push(OK_FRAME);
  assert.equal(dec.next(), bad, "a later valid frame does not un-fail the decoder");
});

// ---------------------------------------------------------------------------
// takeRemainder: the private link's opaque bytes

const ACCEPT: Frame = { op: Op.TCPAccept, sender: "alice", recipient: "bob", password: -2 };

Deno.test("takeRemainder: opaque bytes in the same chunk as TCPAccept", () => {
  const frame = encode(ACCEPT);
  // The opaque bytes would be Malformed as ChatOS ('G' = 0x47 is no opcode).
  const opaque = te.encode("GET /notes.txt HTTP/1.0\r\n\r\n");
  const dec = new FrameDecoder();
  const chunk = bytes(frame, opaque);
  dec.push(chunk);
  const step = dec.next();
  assert.ok(isDecoded(step));
  assert.deepStrictEqual(step.frame, ACCEPT);
  const rest = dec.takeRemainder();
  assertBytes(rest, opaque, "remainder");
  // The remainder is the caller's to keep: later reuse of the read buffer cannot change it.
  chunk.fill(0);
  assertBytes(rest, opaque, "remainder after the read buffer is reused");
  assert.equal(dec.buffered, 0);
  assert.equal(dec.next(), null, "the decoder is empty afterwards");
  assert.equal(dec.takeRemainder().length, 0);
});

Deno.test("takeRemainder: TCPAccept split across chunks, opaque bytes in later chunks too", () => {
  const frame = encode(ACCEPT);
  const opaque = bytes(0x00, 0xff, 0x80, "binary \u{1F600} payload", 0xc0, 0x80);
  const dec = new FrameDecoder();
  dec.push(frame.subarray(0, 4));
  assert.equal(dec.next(), null);
  dec.push(bytes(frame.subarray(4), opaque.subarray(0, 5)));
  const step = dec.next();
  assert.ok(isDecoded(step));
  assert.deepStrictEqual(step.frame, ACCEPT);
  // Bytes keep arriving before the connection is handed over to the link.
  dec.push(opaque.subarray(5, 9));
  dec.push(opaque.subarray(9));
  assertBytes(dec.takeRemainder(), opaque, "remainder");
});

Deno.test("takeRemainder: nothing after the frame gives an empty remainder", () => {
  const dec = new FrameDecoder();
  dec.push(encode(ACCEPT));
  assert.ok(isDecoded(dec.next()));
  assert.equal(dec.takeRemainder().length, 0);
});

Deno.test("takeRemainder: a carried partial frame is handed over and forgotten", () => {
  const frame = encode(ACCEPT);
  const dec = new FrameDecoder();
  dec.push(frame.subarray(0, 6));
  assert.equal(dec.next(), null);
  assert.equal(dec.buffered, 6);
  assertBytes(dec.takeRemainder(), frame.subarray(0, 6), "remainder");
  assert.equal(dec.buffered, 0);
  // The decoder starts from a clean slate: the old partial frame is gone.
  dec.push(OK_FRAME);
  const s = dec.next();
  assert.ok(isDecoded(s));
  assert.deepStrictEqual(s.frame, { op: Op.ERROR, code: 1 });
  assert.equal(dec.next(), null);
});

Deno.test("property: takeRemainder returns exactly the bytes after the first frame", async () => {
  await withSeed("remainder", (rng) => {
    for (let it = 0; it < 300; it++) {
      const first = rng.frame(rng.pick([Op.TCPAccept, Op.TCPConnect]), 0.01);
      const frame = encode(first);
      const opaque = rng.chance(0.3)
        ? concatBytes(randomFrames(rng, 0).map(encode)) // looks like ChatOS, must stay opaque
        : rng.bytes(rng.pick([0, 1, 7, 100, 5000]));
      const stream = concatBytes([frame, opaque]);
      const dec = new FrameDecoder();
      let got: Decoded | null = null;
      for (const chunk of split(stream, rng.cuts(stream.length))) {
        dec.push(chunk);
        if (got) continue; // the link owns the bytes now: no more next()
        const s = dec.next();
        if (s === null) continue;
        assert.ok(isDecoded(s), `iteration ${it}: ${JSON.stringify(s)}`);
        assertFrame(s.frame, first, `iteration ${it}`);
        got = { ...s, raw: s.raw.slice() };
      }
      assert.ok(got, `iteration ${it}: first frame never decoded`);
      assertBytes(got.raw, frame, `iteration ${it}: raw`);
      assertBytes(dec.takeRemainder(), opaque, `iteration ${it}: remainder`);
    }
  });
});

// ---------------------------------------------------------------------------
// ownership of raw

Deno.test("raw: a frame wholly inside a chunk is a view of that chunk (no copy)", () => {
  const a = encode({ op: Op.SMA, sender: "alice", message: "hi" });
  const chunk = bytes(a, OK_FRAME);
  const dec = new FrameDecoder();
  dec.push(chunk);
  const s1 = dec.next(), s2 = dec.next();
  assert.ok(isDecoded(s1) && isDecoded(s2));
  assert.equal(s1.raw.buffer, chunk.buffer);
  assert.equal(s1.raw.byteOffset, 0);
  assert.equal(s2.raw.buffer, chunk.buffer);
  assert.equal(s2.raw.byteOffset, a.length);
  // Which is why the contract says: copy before the buffer is reused.
  chunk[0] = 0x08;
  assert.equal(s1.raw[0], 0x08);
});

Deno.test("raw: a frame split across chunks survives reuse of the read buffer and its tail's carry, until the next push", () => {
  const frame = encode({ op: Op.SPM, sender: "a", recipient: "b", message: "split me" });
  const readBuf = new Uint8Array(64);
  const dec = new FrameDecoder();
  readBuf.set(frame.subarray(0, 7));
  dec.push(readBuf.subarray(0, 7));
  assert.equal(dec.next(), null);
  assert.equal(dec.buffered, 7, "the partial frame was copied out of the read buffer");
  // The next read: the rest of the frame, then the first 7 bytes of the same frame again.
  readBuf.fill(0xee);
  readBuf.set(frame.subarray(7));
  readBuf.set(frame.subarray(0, 7), frame.length - 7);
  dec.push(readBuf.subarray(0, frame.length));
  const s = dec.next();
  assert.ok(isDecoded(s));
  assert.notEqual(s.raw.buffer, readBuf.buffer);
  assert.equal(dec.next(), null);
  assert.equal(dec.buffered, 7, "the tail is carried");
  readBuf.fill(0x11);
  assertBytes(s.raw, frame, "raw after the tail was carried and the read buffer reused");
  assert.equal((s.frame as { message: string }).message, "split me");

  // Frame after frame, the decoder assembles them in the same two stores: no buffer per frame.
  const buffers = new Set<ArrayBufferLike>([s.raw.buffer]);
  for (let i = 0; i < 4; i++) {
    readBuf.set(frame.subarray(7));
    readBuf.set(frame.subarray(0, 7), frame.length - 7);
    dec.push(readBuf.subarray(0, frame.length));
    const t = dec.next();
    assert.ok(isDecoded(t));
    assertBytes(t.raw, frame, `frame ${i + 2}`);
    buffers.add(t.raw.buffer);
    assert.equal(dec.next(), null);
  }
  assert.equal(buffers.size, 2, "two stores, reused");
  // A chunk ending on a frame boundary lets them go: a quiet connection keeps neither.
  readBuf.set(frame.subarray(7));
  dec.push(readBuf.subarray(0, frame.length - 7));
  const last = dec.next();
  assert.ok(isDecoded(last));
  assert.equal(dec.next(), null);
  readBuf.set(frame.subarray(0, 7));
  dec.push(readBuf.subarray(0, 7));
  assert.equal(dec.next(), null);
  readBuf.set(frame.subarray(7));
  dec.push(readBuf.subarray(0, frame.length - 7));
  const fresh = dec.next();
  assert.ok(isDecoded(fresh));
  assert.ok(!buffers.has(fresh.raw.buffer), "a new store after the boundary");
});

Deno.test("lazyMessage: messages decode on first read, invalid UTF-8 is still refused at once", () => {
  const d = new FrameDecoder(32767, { lazyMessage: true });
  const spm = encode({ op: Op.SPM, sender: "a", recipient: "b", message: "héllo 👋" });
  const sma = encode({ op: Op.SMA, sender: "a", message: "plain ascii" });
  d.push(new Uint8Array([...spm, ...sma]));
  const s1 = d.next(), s2 = d.next();
  assert.ok(s1?.ok && s2?.ok);
  if (s1?.ok && s2?.ok) {
    assert.equal(s1.frame.op, Op.SPM);
    assert.equal((s1.frame as { message: string }).message, "héllo 👋");
    assert.equal((s1.frame as { recipient: string }).recipient, "b");
    assert.equal((s2.frame as { message: string }).message, "plain ascii");
  }
  for (const bad of [[0xc3, 0x28], [0xed, 0xa0, 0x80], [0x61, 0xff]]) {
    const lazy = new FrameDecoder(32767, { lazyMessage: true });
    lazy.push(Uint8Array.of(Op.SMA, 0, 1, 0x61, 0, bad.length, ...bad));
    const step = lazy.next();
    assert.ok(step && !step.ok && step.error.kind === "invalid-utf8", JSON.stringify(bad));
  }
});

Deno.test("repeated pseudos decode to the right strings as they change", () => {
  const d = new FrameDecoder();
  const names = ["al", "bo", "al", "al", "bö", "bo", "", "al", "alé"];
  const frames = names.map((n, i) => ({
    op: Op.SPM,
    sender: n,
    recipient: names[(i + 1) % names.length],
    message: `m${i}`,
  } as const));
  d.push(concatBytes(frames.map((f) => encode(f))));
  for (const f of frames) {
    const step = d.next();
    assert.ok(step?.ok);
    if (step?.ok) assert.deepEqual(step.frame, f);
  }
  assert.equal(d.next(), null);
});

// ---------------------------------------------------------------------------
// readHandshakeKey: the (A, B, password) of a relayed TCP frame, without a decoder

Deno.test("readHandshakeKey: every TCP frame, any password, any script", () => {
  for (const op of [Op.TCPAsk, Op.TCPAccept, Op.TCPAbort, Op.TCPConnect] as const) {
    for (const password of [0, 1, -1, 32767, -32768]) {
      for (const [a, b] of [["alice", "bob"], ["Ωμέγα", "日本"], ["", "x"]]) {
        const key = readHandshakeKey(encode({ op, sender: a, recipient: b, password }));
        assert.deepEqual(key, { a, b, password }, `${opName[op]} ${a}/${b}/${password}`);
      }
    }
  }
});

Deno.test("readHandshakeKey: other frames and truncated bytes give null", () => {
  assert.equal(readHandshakeKey(encode({ op: Op.CR, pseudo: "alice" })), null);
  assert.equal(readHandshakeKey(encode({ op: Op.SMA, sender: "a", message: "hi" })), null);
  assert.equal(readHandshakeKey(OK_FRAME), null);
  const full = encode({ op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 3 });
  for (let n = 0; n < full.length; n++) {
    assert.equal(readHandshakeKey(full.subarray(0, n)), null, `first ${n} bytes`);
  }
});

Deno.test("handshakeId: one id per (a, b, password), however the strings split", () => {
  const keys = [
    { a: "ab", b: "c", password: 1 },
    { a: "a", b: "bc", password: 1 },
    { a: "a", b: "b1", password: 2 },
    { a: "a", b: "b", password: 12 },
    { a: "1:a", b: "", password: 1 },
    { a: "", b: "1:a", password: 1 },
    { a: "a", b: "b", password: -1 },
    { a: "a:b", b: "c", password: 1 },
    { a: "a", b: "b:c", password: 1 },
  ];
  const ids = keys.map(handshakeId);
  assert.equal(new Set(ids).size, keys.length, ids.join(" "));
  assert.equal(handshakeId({ a: "ab", b: "c", password: 1 }), ids[0], "the same key, the same id");
});
