/**
 * Codec micro-benchmarks. Run with `deno bench bench/codec_bench.ts`.
 *
 * - encode / decode of each frame type with ~32-byte strings, plus 1 KiB
 *   messages for SPM and SMA;
 * - decoding a 64 KiB read of back-to-back 40-byte SMA frames (the shape of
 *   a busy broadcast stream), in one chunk and as a stream of 64 KiB chunks
 *   where frames straddle chunk boundaries;
 * - frames split into small chunks (the carry path).
 */

import { encode, type Frame, FrameDecoder, Op } from "../src/protocol/mod.ts";

const te = new TextEncoder();
const SMALL = "Hello! How is it going? 32 bytes"; // 32 bytes of ASCII
const KIB = "lorem ipsum dolor sit amet, é€😀 ".repeat(29).slice(0, 1000);
if (te.encode(SMALL).length !== 32) throw new Error("SMALL is not 32 bytes");

const small: [string, Frame][] = [
  ["CR", { op: Op.CR, pseudo: "alice" }],
  ["SPM", { op: Op.SPM, sender: "alice", recipient: "bob", message: SMALL }],
  ["SMA", { op: Op.SMA, sender: "alice", message: SMALL }],
  ["TCPAsk", { op: Op.TCPAsk, sender: "alice", recipient: "bob", password: 1234 }],
  ["TCPAccept", { op: Op.TCPAccept, sender: "alice", recipient: "bob", password: -1 }],
  ["TCPAbort", { op: Op.TCPAbort, sender: "alice", recipient: "bob", password: 7 }],
  ["TCPConnect", { op: Op.TCPConnect, sender: "alice", recipient: "bob", password: 32767 }],
  ["ERROR", { op: Op.ERROR, code: 4 }],
];
const large: [string, Frame][] = [
  ["SPM 1 KiB", { op: Op.SPM, sender: "alice", recipient: "bob", message: KIB }],
  ["SMA 1 KiB", { op: Op.SMA, sender: "alice", message: KIB }],
];

// Keeps results alive so the work cannot be optimised away.
let sink = 0;

for (const [name, frame] of [...small, ...large]) {
  Deno.bench({
    name: `encode ${name}`,
    group: "encode",
    baseline: name === "CR",
    fn() {
      sink ^= encode(frame).length;
    },
  });
}

for (const [name, frame] of [...small, ...large]) {
  const wire = encode(frame);
  const dec = new FrameDecoder();
  Deno.bench({
    name: `decode ${name} (${wire.length} B)`,
    group: "decode",
    baseline: name === "CR",
    fn() {
      dec.push(wire);
      const step = dec.next();
      if (step === null || !step.ok) throw new Error("decode failed");
      sink ^= step.raw.length;
    },
  });
}

// 40-byte SMA frames: 1 + (2 + 5) + (2 + 30).
const sma40 = encode({ op: Op.SMA, sender: "alice", message: "x".repeat(30) });
if (sma40.length !== 40) throw new Error(`SMA frame is ${sma40.length} bytes, not 40`);

function repeatFrame(frame: Uint8Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let off = 0; off < bytes; off += frame.length) {
    out.set(frame.subarray(0, Math.min(frame.length, bytes - off)), off);
  }
  return out;
}

// One 64 KiB read holding 1638 whole frames (65520 bytes).
const wholeChunk = repeatFrame(sma40, 1638 * 40);
{
  const dec = new FrameDecoder();
  Deno.bench({
    name: "decode 64 KiB chunk of 40-byte SMA frames (1638 frames, all in place)",
    group: "stream",
    baseline: true,
    fn() {
      dec.push(wholeChunk);
      let n = 0;
      for (let s = dec.next(); s !== null; s = dec.next()) n++;
      if (n !== 1638) throw new Error(`decoded ${n}`);
      sink ^= n;
    },
  });
}

// Five full 64 KiB reads of the same stream: 8192 frames, 4 straddling reads.
const stream = repeatFrame(sma40, 5 * 65536);
const reads = Array.from({ length: 5 }, (_, i) => stream.subarray(i * 65536, (i + 1) * 65536));
{
  const dec = new FrameDecoder();
  Deno.bench({
    name: "decode 5 × 64 KiB reads of 40-byte SMA frames (8192 frames, 4 split)",
    group: "stream",
    fn() {
      let n = 0;
      for (const r of reads) {
        dec.push(r);
        for (let s = dec.next(); s !== null; s = dec.next()) n++;
      }
      if (n !== 8192) throw new Error(`decoded ${n}`);
      sink ^= n;
    },
  });
}

// The carry path: frames arriving in small pieces.
function chunked(frame: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < frame.length; i += size) out.push(frame.subarray(i, i + size));
  return out;
}
const max = "a".repeat(32767);
const splitCases: [string, Uint8Array[]][] = [
  ["SMA 1 KiB in 1-byte chunks", chunked(encode(large[1][1]), 1)],
  [
    "max SPM (96 KiB) in 1460-byte chunks",
    chunked(encode({ op: Op.SPM, sender: max, recipient: max, message: max }), 1460),
  ],
  [
    "max SPM (96 KiB) in 16-byte chunks",
    chunked(encode({ op: Op.SPM, sender: max, recipient: max, message: max }), 16),
  ],
];
for (const [name, chunks] of splitCases) {
  const dec = new FrameDecoder();
  Deno.bench({
    name: `decode ${name}`,
    group: "split",
    fn() {
      let n = 0;
      for (const c of chunks) {
        dec.push(c);
        for (let s = dec.next(); s !== null; s = dec.next()) n++;
      }
      if (n !== 1) throw new Error(`decoded ${n}`);
      sink ^= n;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // never true; reads the sink
});
