import { ErrorCode, type Frame, Op } from "./frames.ts";

const utf8 = new TextEncoder();

/** Largest byte length a STRING may have on the wire (signed 16-bit length). */
export const MAX_WIRE_STRING = 32767;

export class EncodeError extends Error {}

function encodeString(s: string): Uint8Array {
  const bytes = utf8.encode(s);
  if (bytes.length > MAX_WIRE_STRING) {
    throw new EncodeError(`string of ${bytes.length} bytes exceeds ${MAX_WIRE_STRING}`);
  }
  return bytes;
}

function assemble(op: number, strings: Uint8Array[], password?: number): Uint8Array {
  let size = 1 + (password === undefined ? 0 : 2);
  for (const s of strings) size += 2 + s.length;
  const out = new Uint8Array(size);
  out[0] = op;
  let off = 1;
  for (const s of strings) {
    out[off] = s.length >>> 8;
    out[off + 1] = s.length & 0xff;
    out.set(s, off + 2);
    off += 2 + s.length;
  }
  if (password !== undefined) {
    out[off] = (password >>> 8) & 0xff;
    out[off + 1] = password & 0xff;
  }
  return out;
}

// ERROR frames are tiny and constant: encode each code once and share the bytes.
// Callers must never mutate a returned frame.
const errorFrames = new Map<number, Uint8Array>();

export function encodeError(code: number): Uint8Array {
  let bytes = errorFrames.get(code);
  if (!bytes) {
    bytes = Uint8Array.of(Op.ERROR, code & 0xff);
    errorFrames.set(code, bytes);
  }
  return bytes;
}

export const OK_FRAME: Uint8Array = encodeError(ErrorCode.OK);

/** Encode one frame. Throws EncodeError for a string longer than the wire allows. */
export function encode(frame: Frame): Uint8Array {
  switch (frame.op) {
    case Op.CR:
      return assemble(Op.CR, [encodeString(frame.pseudo)]);
    case Op.SPM:
      return assemble(Op.SPM, [
        encodeString(frame.sender),
        encodeString(frame.recipient),
        encodeString(frame.message),
      ]);
    case Op.SMA:
      return assemble(Op.SMA, [encodeString(frame.sender), encodeString(frame.message)]);
    case Op.TCPAsk:
    case Op.TCPAccept:
    case Op.TCPAbort:
    case Op.TCPConnect:
      return assemble(
        frame.op,
        [encodeString(frame.sender), encodeString(frame.recipient)],
        frame.password,
      );
    case Op.ERROR:
      return encodeError(frame.code);
  }
}
