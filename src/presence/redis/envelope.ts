/**
 * The pub/sub envelope: the one definition of what travels between nodes (docs/REDIS.md, "Keys and
 * channels"). Relay protocol 2 (RELAY_PROTOCOL, written in each node's lease). `u16`/`u32`/`f64`
 * are big-endian; a deadline is milliseconds since the epoch, on the sending node's clock.
 *
 * A user's channel on a node (`chatos:to:{<node>}:u:<pseudo>`) carries frames for that user, one
 * per message: [0xFF 0xFE][u16 o][origin node id][u32 seq][f64 deadline][u16 p][pseudo: p][frame].
 * A node's channel (`chatos:to:{<node>}`) carries
 * - answers about frames it sent that arrived late: [0xFF 0xFD][u16 o][origin node id][answers],
 *   each answer [u32 seq][u8 status] (ANSWER);
 * - its own liveness ping: [0x00 0x00][f64 sent-at, performance.now()];
 * - on Redis Cluster, broadcasts (below): their first u16 is a node id's length, 1 to 64, so they
 *   cannot be taken for anything above.
 * The broadcast channel (`chatos:all`, one Redis and Sentinel) carries broadcasts:
 *   [u16 o][origin node id: o][f64 deadline][u16 e][except pseudo UTF-8: e][frame].
 * [0xFF 0xFF] opened a batch in relay protocol 1 (the previous release): recognised, to say so.
 *
 * Decoders never throw: bad input is a `Malformed` value. Decoded frames are views into the
 * message (no copy); the message must not be reused.
 */
import { Buffer } from "node:buffer";

/** The version of this envelope; nodes of another version cannot exchange frames. */
export const RELAY_PROTOCOL = "2";

const FRAMES_MARK = 0xfffe;
const ANSWERS_MARK = 0xfffd;
/** Relay protocol 1's batch mark. */
const V1_BATCH_MARK = 0xffff;
/** The two bytes that open a liveness ping. */
const PING_MARK = 0x0000;
const PING_BYTES = 10;
const ANSWER_BYTES = 5;
const U16_MAX = 0xffff;

/** What the receiving node did with a frame that came late (its sender waits to know). */
export const ANSWER = {
  /** Handed to the user (or held for the user until this node may vouch for it again). */
  delivered: 1,
  /** Nobody of that name is logged in there any more. */
  notHere: 2,
  /** It arrived past its deadline: dropped, and its sender told it failed. */
  expired: 3,
} as const;
export type Answer = (typeof ANSWER)[keyof typeof ANSWER];

export interface Malformed {
  kind: "malformed";
  reason: string;
}
export interface Entry {
  kind: "frame";
  origin: string;
  seq: number;
  deadline: number;
  pseudo: string;
  frame: Uint8Array;
}
export interface Broadcast {
  kind: "broadcast";
  origin: string;
  deadline: number;
  except: string;
  frame: Uint8Array;
}
export type NodeMessage =
  | Entry
  | { kind: "answers"; origin: string; seqs: number[]; statuses: number[] }
  | { kind: "ping"; sentAt: number }
  | { kind: "older-release" }
  | Broadcast
  | Malformed;
export type BroadcastMessage = Broadcast | Malformed;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function malformed(reason: string): Malformed {
  return { kind: "malformed", reason };
}

/** One frame for one user (seq and deadline: for the answer, if it comes late). */
export function encodeFrame(
  origin: Uint8Array,
  seq: number,
  deadline: number,
  pseudo: string,
  frame: Uint8Array,
): Buffer {
  const at = 4 + origin.length;
  const buf = Buffer.allocUnsafe(at + 14 + pseudo.length * 3 + frame.length);
  buf.writeUInt16BE(FRAMES_MARK, 0);
  buf.writeUInt16BE(origin.length, 2);
  buf.set(origin, 4);
  buf.writeUInt32BE(seq >>> 0, at);
  buf.writeDoubleBE(deadline, at + 4);
  const { written } = encoder.encodeInto(
    pseudo,
    buf.subarray(at + 14, at + 14 + pseudo.length * 3),
  );
  if (written > U16_MAX) throw new RangeError("pseudo too long for the envelope");
  buf.writeUInt16BE(written, at + 12);
  buf.set(frame, at + 14 + written);
  return buf.subarray(0, at + 14 + written + frame.length);
}

/** One message of answers for the node that sent the frames. */
export function encodeAnswers(origin: Uint8Array, seqs: number[], statuses: number[]): Buffer {
  const buf = Buffer.allocUnsafe(4 + origin.length + seqs.length * ANSWER_BYTES);
  buf.writeUInt16BE(ANSWERS_MARK, 0);
  buf.writeUInt16BE(origin.length, 2);
  buf.set(origin, 4);
  let at = 4 + origin.length;
  for (let i = 0; i < seqs.length; i++) {
    buf.writeUInt32BE(seqs[i] >>> 0, at);
    buf[at + 4] = statuses[i];
    at += ANSWER_BYTES;
  }
  return buf;
}

export function encodePing(sentAt: number): Buffer {
  const buf = Buffer.allocUnsafe(PING_BYTES);
  buf.writeUInt16BE(PING_MARK, 0);
  buf.writeDoubleBE(sentAt, 2);
  return buf;
}

/** Throws RangeError only for an origin or except longer than a u16 can say (never from Redis). */
export function encodeBroadcast(
  origin: Uint8Array,
  deadline: number,
  except: string,
  frame: Uint8Array,
): Buffer {
  if (origin.length > U16_MAX) throw new RangeError("node id too long for the envelope");
  const payload = Buffer.allocUnsafe(12 + origin.length + except.length * 3 + frame.length);
  payload.writeUInt16BE(origin.length, 0);
  payload.set(origin, 2);
  payload.writeDoubleBE(deadline, 2 + origin.length);
  const at = 12 + origin.length;
  const { written } = encoder.encodeInto(except, payload.subarray(at, at + except.length * 3));
  if (written > U16_MAX) throw new RangeError("pseudo too long for the envelope");
  payload.writeUInt16BE(written, 10 + origin.length);
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
  if (mark === V1_BATCH_MARK) return { kind: "older-release" };
  if (mark !== FRAMES_MARK && mark !== ANSWERS_MARK) return decodeBroadcast(msg);
  const view = new DataView(msg.buffer, msg.byteOffset, msg.length);
  if (msg.length < 4) return malformed("no origin length");
  const o = view.getUint16(2);
  if (4 + o > msg.length) return malformed("origin longer than the message");
  const origin = utf8(msg.subarray(4, 4 + o));
  if (origin === null) return malformed("origin is not UTF-8");
  let at = 4 + o;
  if (mark === ANSWERS_MARK) {
    if ((msg.length - at) % ANSWER_BYTES !== 0) return malformed("answers of the wrong size");
    const seqs: number[] = [], statuses: number[] = [];
    for (; at < msg.length; at += ANSWER_BYTES) {
      seqs.push(view.getUint32(at));
      statuses.push(msg[at + 4]);
    }
    return { kind: "answers", origin, seqs, statuses };
  }
  if (at + 14 > msg.length) return malformed("truncated frame header");
  const seq = view.getUint32(at);
  const deadline = view.getFloat64(at + 4);
  const pseudoEnd = at + 14 + view.getUint16(at + 12);
  if (pseudoEnd > msg.length) return malformed("pseudo longer than the message");
  const pseudo = utf8(msg.subarray(at + 14, pseudoEnd));
  if (pseudo === null) return malformed("pseudo is not UTF-8");
  return { kind: "frame", origin, seq, deadline, pseudo, frame: plain(msg, pseudoEnd, msg.length) };
}

/** A message from the broadcast channel. */
export function decodeBroadcast(msg: Uint8Array): BroadcastMessage {
  if (msg.length < 2) return malformed("no origin length");
  const o = (msg[0] << 8) | msg[1];
  if (o === 0 || 12 + o > msg.length) return malformed("origin longer than the message");
  const deadline = new DataView(msg.buffer, msg.byteOffset + 2 + o, 8).getFloat64(0);
  const e = (msg[10 + o] << 8) | msg[11 + o];
  const start = 12 + o + e;
  if (start > msg.length) return malformed("except longer than the message");
  const origin = utf8(msg.subarray(2, 2 + o));
  const except = utf8(msg.subarray(12 + o, start));
  if (origin === null || except === null) return malformed("origin or except is not UTF-8");
  return { kind: "broadcast", origin, deadline, except, frame: plain(msg, start, msg.length) };
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
