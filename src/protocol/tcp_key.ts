import type { HandshakeKey } from "./frames.ts";
import { Op } from "./frames.ts";

const utf8 = new TextDecoder();

/**
 * The (A, B, password) of an encoded TCPAsk/TCPAccept/TCPAbort/TCPConnect,
 * read straight from its bytes: a relayed frame is already known to be well
 * formed, so this checks only what it must to stay in bounds. Null for
 * anything else (another opcode, or too few bytes).
 */
export function readHandshakeKey(bytes: Uint8Array): HandshakeKey | null {
  const op = bytes[0];
  if (op !== Op.TCPAsk && op !== Op.TCPAccept && op !== Op.TCPAbort && op !== Op.TCPConnect) {
    return null;
  }
  let p = 1;
  const names: string[] = [];
  for (let i = 0; i < 2; i++) {
    if (p + 2 > bytes.length) return null;
    const len = (bytes[p] << 8) | bytes[p + 1];
    if (len > 0x7fff || p + 2 + len > bytes.length) return null;
    names.push(utf8.decode(bytes.subarray(p + 2, p + 2 + len)));
    p += 2 + len;
  }
  if (p + 2 > bytes.length) return null;
  const password = ((bytes[p] << 24) >> 16) | bytes[p + 1];
  return { a: names[0], b: names[1], password };
}
