/**
 * File transfer over a private link, the way the authors' client did it:
 * HTTP/1.0. The initiator A sends `GET <path> HTTP/1.0\r\n\r\n`; B answers
 * with a status line, `Content-Type` and `Content-Length`, then the bytes,
 * and closes. Both sides stream: a file is never held whole in memory.
 *
 * B serves only what share.ts allows (regular, non-hidden files inside its
 * shared folder; 403 or 404 otherwise), and only once `approve` said yes
 * with the file's name and size in front of the user (403 Declined if not).
 * The server relaying the link never looks at these bytes.
 */

import * as path from "node:path";
import { writeAll } from "../lib/async.ts";
import { concatBytes } from "../lib/bytes.ts";
import { contentTypeFor, resolveShared } from "./share.ts";

/** What the transfer needs from a link end; `PrivateEnd` provides it. */
export interface LinkStream {
  read(): Promise<Uint8Array | null>;
  write(bytes: Uint8Array): Promise<void>;
  closeWrite(): Promise<void>;
  close(): void;
}

const MAX_HEAD = 16 * 1024;
const CHUNK = 64 * 1024;
const DEFAULT_HEAD_TIMEOUT_MS = 30_000;
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();
const encoder = new TextEncoder();

interface Head {
  /** Lines of the head, without the blank line that ends it. */
  lines: string[];
  /** Bytes that followed the head in the same reads (start of the body). */
  rest: Uint8Array;
}

function indexOfHeadEnd(buf: Uint8Array, from: number): { at: number; len: number } | null {
  for (let i = Math.max(0, from); i < buf.length - 1; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return { at: i, len: 2 }; // "\n\n" (lenient)
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { at: i, len: 3 }; // "\n\r\n"
  }
  return null;
}

/**
 * Reads up to the blank line ending an HTTP head. Returns null on EOF before
 * it; throws if the head is over MAX_HEAD. Closes the link if nothing
 * complete arrived within `timeoutMs`.
 */
async function readHead(link: LinkStream, timeoutMs: number): Promise<Head | null> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.close();
  }, timeoutMs);
  try {
    let buf: Uint8Array = new Uint8Array(0);
    while (true) {
      const chunk = await link.read();
      if (timedOut) throw new Error(`no complete HTTP head within ${timeoutMs} ms`);
      if (chunk === null) return null;
      const scanFrom = buf.length - 2;
      buf = concatBytes([buf, chunk]);
      const end = indexOfHeadEnd(buf, scanFrom);
      if (end) {
        const text = latin1.decode(buf.subarray(0, end.at));
        return {
          lines: text.split("\n").map((l) => l.replace(/\r$/, "")),
          rest: buf.slice(end.at + end.len),
        };
      }
      if (buf.length > MAX_HEAD) throw new Error(`HTTP head longer than ${MAX_HEAD} bytes`);
    }
  } finally {
    clearTimeout(timer);
  }
}

function parseHeaders(lines: string[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** The request target for a user-typed path: percent-encodes what would break the request line. */
export function requestTarget(userPath: string): string {
  return encodeURI(userPath).replace(/\?/g, "%3F").replace(/#/g, "%23");
}

export interface ServeOptions {
  /** How long to wait for the request head (default 30 s). */
  headTimeoutMs?: number;
  /** How long to wait, after sending, for the peer to close (default 10 s). */
  lingerMs?: number;
  /** Asked before a file that may be served is sent; false answers 403 Declined. */
  approve?: (file: { name: string; size: number }) => Promise<boolean>;
}

export interface ServeResult {
  /** The status sent, or 0 if no request arrived. */
  status: number;
  /** The request target as received ("" if none). */
  target: string;
  /** Body bytes sent. */
  bytes: number;
  /** The file served, for status 200. */
  file?: string;
  /** Why the request was refused, for the sharing user (not sent to the peer). */
  refusal?: string;
}

function errorResponse(status: number, reason: string): Uint8Array {
  const body = `${status} ${reason}\n`;
  return encoder.encode(
    `HTTP/1.0 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${encoder.encode(body).length}\r\n\r\n${body}`,
  );
}

/**
 * B's side: reads one request from the link, answers it from `shareDir`, and
 * closes the link. Rejects only on transport errors (the link dropped).
 */
export async function serveFile(
  link: LinkStream,
  shareDir: string,
  opts: ServeOptions = {},
): Promise<ServeResult> {
  try {
    const head = await readHead(link, opts.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS);
    if (head === null) return { status: 0, target: "", bytes: 0 };
    const result = await respond(link, head.lines[0], shareDir, opts.approve);
    await linger(link, opts.lingerMs ?? 10_000);
    return result;
  } finally {
    link.close();
  }
}

async function respond(
  link: LinkStream,
  requestLine: string,
  shareDir: string,
  approve: ServeOptions["approve"],
): Promise<ServeResult> {
  const parts = requestLine.split(" ");
  const [method, target, version] = parts;
  if (parts.length !== 3 || !/^HTTP\/\d\.\d$/.test(version ?? "")) {
    await link.write(errorResponse(400, "Bad Request"));
    return { status: 400, target: target ?? "", bytes: 0 };
  }
  if (method !== "GET" && method !== "HEAD") {
    await link.write(errorResponse(405, "Method Not Allowed"));
    return { status: 405, target, bytes: 0 };
  }
  const found = await resolveShared(shareDir, target);
  if (!found.ok) {
    await link.write(errorResponse(found.status, found.reason));
    return { status: found.status, target, bytes: 0, refusal: found.why };
  }
  if (approve && !(await approve({ name: found.name, size: found.size }))) {
    await link.write(errorResponse(403, "Declined"));
    return { status: 403, target, bytes: 0, refusal: "declined" };
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(found.file, { read: true });
  } catch {
    await link.write(errorResponse(404, "Not Found"));
    return { status: 404, target, bytes: 0 };
  }
  let sent = 0;
  try {
    // The size from the open file, so the header matches what is read.
    const size = (await file.stat()).size;
    await link.write(encoder.encode(
      `HTTP/1.0 200 OK\r\nContent-Type: ${contentTypeFor(found.file)}\r\n` +
        `Content-Length: ${size}\r\n\r\n`,
    ));
    if (method === "GET") {
      const buf = new Uint8Array(CHUNK);
      while (sent < size) {
        const n = await file.read(buf.subarray(0, Math.min(CHUNK, size - sent)));
        if (n === null) throw new Error(`${found.file} shrank while being sent`);
        // write() resolves once the socket took the bytes: `buf` can be reused.
        await link.write(buf.subarray(0, n));
        sent += n;
      }
    }
  } finally {
    file.close();
  }
  return { status: 200, target, bytes: sent, file: found.file };
}

/**
 * Half-closes, then waits (bounded) for the peer to close, so the end of the
 * body is not cut off by closing with unread bytes pending.
 */
async function linger(link: LinkStream, ms: number): Promise<void> {
  await link.closeWrite();
  const timer = setTimeout(() => link.close(), ms);
  try {
    while ((await link.read()) !== null) {
      // Discard: the peer has nothing more to say in HTTP/1.0.
    }
  } catch {
    // Reset or closed by the timer: either way we are done.
  } finally {
    clearTimeout(timer);
  }
}

export interface FetchOptions {
  /** How long to wait for the response head (default 30 s). */
  headTimeoutMs?: number;
  /** Called as body bytes arrive. */
  onProgress?: (received: number, total: number | null) => void;
}

export type FetchResult =
  | {
    ok: true;
    status: 200;
    savedTo: string;
    bytes: number;
    contentType: string | null;
  }
  | { ok: false; status: number; reason: string; message: string };

/** The name a download is saved under: the base name of the requested path. */
export function downloadName(userPath: string): string {
  const base = path.basename(userPath.replace(/\\/g, "/"));
  return base === "" || base === "." || base === ".." ? "download" : base;
}

/** Creates `dir/name`, or `dir/name (1)`... if taken: never overwrites a download. */
async function createUnique(dir: string, name: string): Promise<[string, Deno.FsFile]> {
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let i = 0;; i++) {
    const candidate = path.join(dir, i === 0 ? name : `${stem} (${i})${ext}`);
    try {
      return [candidate, await Deno.open(candidate, { write: true, createNew: true })];
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || i >= 1000) throw e;
    }
  }
}

/**
 * A's side: requests `userPath` over the link and saves a 200 body under
 * `downloadsDir` with the file's base name, checking Content-Length.
 * Non-200 answers come back as `{ ok: false }`; a dropped link, a malformed
 * response or a short body reject (and leave no partial file). Closes the link.
 */
export async function fetchFile(
  link: LinkStream,
  userPath: string,
  downloadsDir: string,
  opts: FetchOptions = {},
): Promise<FetchResult> {
  try {
    await link.write(encoder.encode(`GET ${requestTarget(userPath)} HTTP/1.0\r\n\r\n`));
    const head = await readHead(link, opts.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS);
    if (head === null) throw new Error("the link closed before any HTTP response");
    const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(head.lines[0]);
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head.lines[0].slice(0, 80))}`);
    const status = Number(m[1]);
    const reason = m[2] ?? "";
    const headers = parseHeaders(head.lines.slice(1));
    const lengthHeader = headers.get("content-length");
    let length: number | null = null;
    if (lengthHeader !== undefined) {
      if (!/^\d+$/.test(lengthHeader)) throw new Error(`bad Content-Length ${lengthHeader}`);
      length = Number(lengthHeader);
    }
    if (status !== 200) {
      const body = await readBody(link, head.rest, Math.min(length ?? 4096, 4096));
      return { ok: false, status, reason, message: utf8.decode(body).trim() };
    }
    await Deno.mkdir(downloadsDir, { recursive: true });
    const [savedTo, file] = await createUnique(downloadsDir, downloadName(userPath));
    let received = 0;
    let complete = false;
    try {
      const take = async (chunk: Uint8Array) => {
        const part = length === null ? chunk : chunk.subarray(0, length - received);
        await writeAll(file, part);
        received += part.length;
        opts.onProgress?.(received, length);
      };
      if (head.rest.length > 0) await take(head.rest);
      while (length === null || received < length) {
        const chunk = await link.read();
        if (chunk === null) break;
        await take(chunk);
      }
      if (length !== null && received < length) {
        throw new Error(`transfer cut short: got ${received} of ${length} bytes`);
      }
      complete = true;
    } finally {
      file.close();
      if (!complete) await Deno.remove(savedTo).catch(() => {});
    }
    return {
      ok: true,
      status: 200,
      savedTo,
      bytes: received,
      contentType: headers.get("content-type") ?? null,
    };
  } finally {
    link.close();
  }
}

async function readBody(link: LinkStream, first: Uint8Array, limit: number): Promise<Uint8Array> {
  const chunks = [first];
  let size = first.length;
  while (size < limit) {
    const c = await link.read().catch(() => null);
    if (c === null) break;
    chunks.push(c);
    size += c.length;
  }
  return concatBytes(chunks).subarray(0, Math.min(size, limit));
}
