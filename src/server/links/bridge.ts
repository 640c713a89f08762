/**
 * The node-to-node bridge wire, for private links whose two ends landed on
 * different nodes. The dialing node (A's end) connects to the bridge port of
 * the node holding B's parked end and sends the end's token with an HMAC of it
 * under the cluster secret; the secret itself never crosses the wire, and a
 * token is single-use, so a replayed greeting finds nothing. Clients cannot
 * use the bridge port: without the secret they cannot produce the HMAC.
 *
 *   greeting: u16 token length | token (UTF-8) | 32-byte HMAC-SHA256(secret, token)
 *   answer:   1 byte, 1 = joined (opaque bytes follow), 0 = no such end
 *
 * A refused greeting is closed without an answer, so each side logs what it
 * can know: the receiving node why it refused (a bad HMAC most often means the
 * nodes' secrets differ), the dialing node that the other closed unanswered.
 */
import type { LinkEndpoint } from "../../presence/presence.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { withDeadline, writeAll } from "../../lib/async.ts";
import { closeQuietly } from "../../lib/errors.ts";

const utf8 = new TextEncoder();
/** How long either side waits for the other's part of the greeting. */
export const GREETING_TIMEOUT_MS = 5000;
const MAC_BYTES = 32;
const MAX_TOKEN_BYTES = 256;

/** A socket as the greeting needs it (a Deno.Conn, or a test double). */
export interface BridgeConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

async function hmac(secret: string, token: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    utf8.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(token)));
}

function splitHostPort(address: string): { hostname: string; port: number } {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  return { hostname: host, port: Number(address.slice(i + 1)) };
}

/** The greeting a dialing node sends for `token`. */
export async function encodeGreeting(token: string, secret: string): Promise<Uint8Array> {
  const t = utf8.encode(token);
  const mac = await hmac(secret, token);
  const greeting = new Uint8Array(2 + t.length + mac.length);
  greeting[0] = t.length >> 8;
  greeting[1] = t.length & 0xff;
  greeting.set(t, 2);
  greeting.set(mac, 2 + t.length);
  return greeting;
}

/**
 * Reads until at least `n` bytes are held (counting those already in `held`)
 * and returns them all: bytes past `n` are the link's opaque data, not lost.
 */
/** The peer closed the bridge before its part of the greeting was whole. */
class GreetingCut extends Error {
  override name = "GreetingCut";
}

async function readAtLeast(conn: BridgeConn, n: number, held: Uint8Array[]): Promise<Uint8Array> {
  let got = 0;
  for (const b of held) got += b.length;
  const chunk = new Uint8Array(Math.max(n, 4096));
  while (got < n) {
    const r = await conn.read(chunk);
    if (r === null) throw new GreetingCut("bridge closed during greeting");
    held.push(chunk.slice(0, r));
    got += r;
  }
  return concatBytes(held);
}

/** `readAtLeast` that gives up after `ms`, closing the socket so the read ends too. */
function readAtLeastBy(
  conn: BridgeConn,
  n: number,
  held: Uint8Array[],
  ms: number,
): Promise<Uint8Array> {
  return withDeadline(readAtLeast(conn, n, held), ms, () => {
    closeQuietly(conn);
    return new Error("bridge greeting timed out");
  });
}

/** Dials the node holding the parked end of `endpoint`; the socket and any bytes that came with the answer. */
export async function dialBridge(
  endpoint: LinkEndpoint,
  secret: string,
  timeoutMs = GREETING_TIMEOUT_MS,
): Promise<{ conn: Deno.Conn; initial: Uint8Array }> {
  const conn = await Deno.connect(splitHostPort(endpoint.bridge));
  try {
    await writeAll(conn, await encodeGreeting(endpoint.token, secret));
    const answer = await readAtLeastBy(conn, 1, [], timeoutMs).catch((e) => {
      if (!(e instanceof GreetingCut)) throw e;
      throw new Error(
        `${endpoint.node} closed the bridge without answering: it refused the greeting ` +
          "(cluster secret mismatch?)",
      );
    });
    if (answer[0] !== 1) throw new Error(`${endpoint.node} has no such parked end`);
    return { conn, initial: answer.subarray(1) };
  } catch (e) {
    closeQuietly(conn);
    throw e;
  }
}

/** A greeting read: the token and the bytes after it, or why it was refused. */
export type Greeting = { token: string; initial: Uint8Array } | { refused: string };

/** What a receiving node logs for a greeting whose HMAC does not check. */
export const BAD_HMAC = "bad HMAC: cluster secret mismatch?";

/**
 * Reads and checks a greeting within `timeoutMs`. Returns the token and any
 * bytes that followed it, or why it is refused (bad MAC, malformed), after
 * which the caller closes the socket. Rejects if the peer closes or the
 * deadline passes.
 */
export async function readGreeting(
  conn: BridgeConn,
  secret: string,
  timeoutMs = GREETING_TIMEOUT_MS,
): Promise<Greeting> {
  const deadline = Date.now() + timeoutMs;
  const head = await readAtLeastBy(conn, 2, [], timeoutMs);
  const len = (head[0] << 8) | head[1];
  if (len === 0 || len > MAX_TOKEN_BYTES) {
    return { refused: `malformed greeting: a token of ${len} bytes (not a ChatOS node?)` };
  }
  const all = await readAtLeastBy(conn, 2 + len + MAC_BYTES, [head], deadline - Date.now());
  const token = new TextDecoder().decode(all.subarray(2, 2 + len));
  const mac = all.subarray(2 + len, 2 + len + MAC_BYTES);
  const expected = await hmac(secret, token);
  let diff = 0; // constant time: a timing side channel must not reveal a valid MAC's prefix
  for (let i = 0; i < MAC_BYTES; i++) diff |= mac[i] ^ expected[i];
  if (diff !== 0) return { refused: BAD_HMAC };
  return { token, initial: all.subarray(2 + len + MAC_BYTES) };
}
