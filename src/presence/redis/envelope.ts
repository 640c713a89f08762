/**
 * The pub/sub envelope: the one definition of what travels on the two channels
 * (docs/REDIS.md, "Keys and channels"). `u16`/`u32`/`f64` are big-endian.
 *
 * - a node's channel (`chatos:to:{<node>}`) carries
 *   - a batch: [0xFF 0xFF] then entries [u32 n][u16 p][pseudo UTF-8: p][frame: n-2-p]
 *     (built here per entry; the `sendBatch` and `nodePublish` scripts join entries under
 *     the header `luaConstants.BATCH_HEADER`, so the Lua side comes from these constants), or
 *   - the node's own liveness ping: [0x00 0x00][f64 sent-at, performance.now()], or
 *   - on Redis Cluster, a broadcast (below): its first u16 is a node id's length, 1 to 64,
 *     so it cannot be taken for a batch or a ping;
 * - the broadcast channel (`chatos:all`, single Redis and Sentinel) carries a broadcast:
 *   [u16 o][origin node id: o][u16 e][except pseudo UTF-8: e][frame].
 *
 * Decoders never throw: bad input is a `Malformed` value. Decoded frames are
 * views into the message (no copy); the message must not be reused.
 */
import { Buffer } from "node:buffer";

/** The two bytes that open a batch on a node's channel. */
export const BATCH_MARK = 0xffff;
/** The two bytes that open a liveness ping. */
export const PING_MARK = 0x0000;
const PING_BYTES = 10;
const ENTRY_HEAD = 6; // u32 length, u16 pseudo length
const U16_MAX = 0xffff;

/** Values the Lua scripts splice in (see scripts.ts), derived from the constants above. */
export const luaConstants = {
  BATCH_HEADER: luaBytes([BATCH_MARK >> 8, BATCH_MARK & 0xff]),
} as const;

export interface Malformed {
  kind: "malformed";
  reason: string;
}
export interface BatchEntry {
  pseudo: string;
  frame: Uint8Array;
}
export interface Broadcast {
  kind: "broadcast";
  origin: string;
  except: string;
  frame: Uint8Array;
}
export type NodeMessage =
  | { kind: "batch"; entries: BatchEntry[] }
  | { kind: "ping"; sentAt: number }
  | Broadcast
  | Malformed;
export type BroadcastMessage = Broadcast | Malformed;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function malformed(reason: string): Malformed {
  return { kind: "malformed", reason };
}

/** One entry of a batch, for `pseudo`'s node; `sendBatch` concatenates them. */
export function encodeEntry(pseudo: string, frame: Uint8Array): Buffer {
  const p = Buffer.byteLength(pseudo);
  if (p > U16_MAX) throw new RangeError("pseudo too long for the envelope");
  const entry = Buffer.allocUnsafe(ENTRY_HEAD + p + frame.length);
  entry.writeUInt32BE(2 + p + frame.length, 0);
  entry.writeUInt16BE(p, 4);
  entry.write(pseudo, ENTRY_HEAD);
  entry.set(frame, ENTRY_HEAD + p);
  return entry;
}

/** A whole batch as `sendBatch` publishes it (the script does this join in Lua). */
export function encodeBatch(entries: readonly Uint8Array[]): Buffer {
  return Buffer.concat([Buffer.from([BATCH_MARK >> 8, BATCH_MARK & 0xff]), ...entries]);
}

export function encodePing(sentAt: number): Buffer {
  const buf = Buffer.allocUnsafe(PING_BYTES);
  buf.writeUInt16BE(PING_MARK, 0);
  buf.writeDoubleBE(sentAt, 2);
  return buf;
}

/** Throws RangeError only for an origin or except longer than a u16 can say (never from Redis). */
export function encodeBroadcast(origin: Uint8Array, except: string, frame: Uint8Array): Buffer {
  if (origin.length > U16_MAX) throw new RangeError("node id too long for the envelope");
  const payload = Buffer.allocUnsafe(4 + origin.length + except.length * 3 + frame.length);
  payload.writeUInt16BE(origin.length, 0);
  payload.set(origin, 2);
  const at = 4 + origin.length;
  const { written } = encoder.encodeInto(except, payload.subarray(at, at + except.length * 3));
  if (written > U16_MAX) throw new RangeError("pseudo too long for the envelope");
  payload.writeUInt16BE(written, 2 + origin.length);
  payload.set(frame, at + written);
  return payload.subarray(0, at + written + frame.length);
}

/** A message from a node's own channel (a broadcast too, as Redis Cluster sends them). */
export function decodeNodeMessage(msg: Uint8Array): NodeMessage {
  if (msg.length < 2) return malformed("shorter than its mark");
  const mark = (msg[0] << 8) | msg[1];
  if (mark === PING_MARK) {
    if (msg.length !== PING_BYTES) return malformed("ping of the wrong size");
    const sentAt = new DataView(msg.buffer, msg.byteOffset + 2, 8).getFloat64(0);
    return { kind: "ping", sentAt };
  }
  if (mark !== BATCH_MARK) return decodeBroadcast(msg);
  const entries: BatchEntry[] = [];
  const view = new DataView(msg.buffer, msg.byteOffset, msg.length);
  let at = 2;
  while (at < msg.length) {
    if (at + ENTRY_HEAD > msg.length) return malformed("truncated entry header");
    const end = at + 4 + view.getUint32(at);
    const pseudoEnd = at + ENTRY_HEAD + view.getUint16(at + 4);
    if (end > msg.length || pseudoEnd > end) return malformed("entry longer than the message");
    const pseudo = utf8(msg.subarray(at + ENTRY_HEAD, pseudoEnd));
    if (pseudo === null) return malformed("pseudo is not UTF-8");
    entries.push({ pseudo, frame: plain(msg, pseudoEnd, end) });
    at = end;
  }
  if (entries.length === 0) return malformed("empty batch");
  return { kind: "batch", entries };
}

/** A message from the broadcast channel. */
export function decodeBroadcast(msg: Uint8Array): BroadcastMessage {
  if (msg.length < 2) return malformed("no origin length");
  const o = (msg[0] << 8) | msg[1];
  if (2 + o + 2 > msg.length) return malformed("origin longer than the message");
  const e = (msg[2 + o] << 8) | msg[3 + o];
  const start = 4 + o + e;
  if (start > msg.length) return malformed("except longer than the message");
  const origin = utf8(msg.subarray(2, 2 + o));
  const except = utf8(msg.subarray(4 + o, start));
  if (origin === null || except === null) return malformed("origin or except is not UTF-8");
  return { kind: "broadcast", origin, except, frame: plain(msg, start, msg.length) };
}

/** A plain Uint8Array over the same bytes (a Buffer would not deep-equal a Uint8Array). */
function plain(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset + start, end - start);
}

function utf8(b: Uint8Array): string | null {
  try {
    return decoder.decode(b);
  } catch {
    return null; // invalid UTF-8: the caller reports it as malformed
  }
}

/** A Lua string literal holding exactly these bytes. */
function luaBytes(bytes: number[]): string {
  return `'${bytes.map((b) => `\\${b}`).join("")}'`;
}
