/**
 * Node-to-node bridges for private links whose two ends landed on different
 * nodes. The dialing node (A's end) connects to the bridge port of the node
 * holding B's parked end and sends the end's token with an HMAC of it under
 * the cluster secret; the secret itself never crosses the wire, and a token
 * is single-use, so a replayed greeting finds nothing. Clients cannot use the
 * bridge port: without the secret they cannot produce the HMAC.
 *
 *   greeting: u16 token length | token (UTF-8) | 32-byte HMAC-SHA256(secret, token)
 *   answer:   1 byte, 1 = joined (opaque bytes follow), 0 = no such end
 */
import type { LinkEndpoint } from "../presence/presence.ts";
import { writeAll } from "./link_end.ts";
import { concatBytes } from "../lib/bytes.ts";

const utf8 = new TextEncoder();
const GREETING_TIMEOUT_MS = 5000;

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

async function readExactly(conn: Deno.Conn, n: number, buf: Uint8Array[]): Promise<Uint8Array> {
  // Reads at least n bytes; returns all that were read (the surplus is opaque data).
  let got = 0;
  for (const b of buf) got += b.length;
  const chunk = new Uint8Array(Math.max(n, 4096));
  while (got < n) {
    const r = await conn.read(chunk);
    if (r === null) throw new Error("bridge closed during greeting");
    buf.push(chunk.slice(0, r));
    got += r;
  }
  return concatBytes(buf);
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error("bridge greeting timed out"));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function dialBridge(
  endpoint: LinkEndpoint,
  secret: string,
): Promise<{ conn: Deno.Conn; initial: Uint8Array }> {
  const conn = await Deno.connect(splitHostPort(endpoint.bridge));
  try {
    const token = utf8.encode(endpoint.token);
    const mac = await hmac(secret, endpoint.token);
    const greeting = new Uint8Array(2 + token.length + mac.length);
    greeting[0] = token.length >> 8;
    greeting[1] = token.length & 0xff;
    greeting.set(token, 2);
    greeting.set(mac, 2 + token.length);
    await writeAll(conn, greeting);
    const answer = await withTimeout(
      readExactly(conn, 1, []),
      GREETING_TIMEOUT_MS,
      () => conn.close(),
    );
    if (answer[0] !== 1) throw new Error("remote node has no such parked end");
    return { conn, initial: answer.subarray(1) };
  } catch (e) {
    try {
      conn.close();
    } catch { /* already closed */ }
    throw e;
  }
}

/**
 * Reads and checks a greeting. Returns the token and any bytes that followed
 * it, or null (bad MAC, malformed) after which the caller closes the socket.
 */
export async function readGreeting(
  conn: Deno.Conn,
  secret: string,
): Promise<{ token: string; initial: Uint8Array } | null> {
  const head = await withTimeout(readExactly(conn, 2, []), GREETING_TIMEOUT_MS, () => conn.close());
  const len = (head[0] << 8) | head[1];
  if (len === 0 || len > 256) return null;
  const all = await withTimeout(
    readExactly(conn, 2 + len + 32, [head]),
    GREETING_TIMEOUT_MS,
    () => conn.close(),
  );
  const token = new TextDecoder().decode(all.subarray(2, 2 + len));
  const mac = all.subarray(2 + len, 2 + len + 32);
  const expected = await hmac(secret, token);
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= mac[i] ^ expected[i];
  if (diff !== 0) return null;
  return { token, initial: all.subarray(2 + len + 32) };
}
