/**
 * ChatOS client library: the chat connection (`ChatClient`) and one end of a
 * private link (`PrivateEnd`). The CLI and the end-to-end tests both use it.
 *
 * Neither class ever produces an unhandled rejection: background reads and
 * writes catch their own errors, and every timer is cleared when the promise
 * it guards settles or the connection ends.
 */

import {
  describeProtocolError,
  encode,
  type Frame,
  FrameDecoder,
  Op,
  type TCPAccept,
  type TCPConnect,
} from "../protocol/mod.ts";
import { describeFrame } from "./describe.ts";
import { concatBytes } from "../lib/bytes.ts";
import { writeAll } from "../lib/async.ts";
import { closeQuietly, errorMessage } from "../lib/errors.ts";
import { LinkAnswerError } from "./link_answer.ts";

export { describeFrame };

export interface ClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
}

const DEFAULT_TIMEOUT_MS = 2000;
const READ_SIZE = 64 * 1024;

async function connectTcp(opts: ClientOptions): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({
    hostname: opts.host ?? "127.0.0.1",
    port: opts.port,
    transport: "tcp",
  });
  try {
    conn.setNoDelay(true);
  } catch {
    // Not essential: only latency.
  }
  return conn;
}

/** Closed here, closed by the server, bytes that are not ChatOS, or a socket error. */
export type EndKind = "local" | "closed" | "malformed" | "error";

interface Waiter {
  resolve(f: Frame): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The chat connection of one user. */
export class ChatClient {
  readonly conn: Deno.TcpConn;
  /** Resolves (never rejects) when the connection ends: EOF, error, malformed input or close(). */
  readonly closed: Promise<void>;

  #resolveClosed!: () => void;
  /** Why the connection ended, once it has. */
  #ended: string | null = null;
  #endKind: EndKind | null = null;
  #frames: Frame[] = [];
  #waiters: Waiter[] = [];
  #watchers = new Set<(f: Frame) => void>();
  #outbox: Uint8Array[] = [];
  #writing = false;
  #writeFailed = false;
  #flushWaiters: Array<() => void> = [];

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    void this.#readLoop();
  }

  static async connect(opts: ClientOptions): Promise<ChatClient> {
    return new ChatClient(await connectTcp(opts));
  }

  /** Why the connection ended, or null while it is open. */
  get endReason(): string | null {
    return this.#ended;
  }

  /** How the connection ended, or null while it is open. */
  get endKind(): EndKind | null {
    return this.#endKind;
  }

  /**
   * Encodes and queues a frame. Writes are serialized and coalesced, never
   * interleaved. Throws EncodeError synchronously for an over-long string.
   * After the connection ended, frames are dropped silently (the next
   * `next()` reports why).
   */
  send(frame: Frame): void {
    this.#enqueue(encode(frame));
  }

  /** Queues arbitrary bytes (copied), in order with `send`. */
  sendRaw(bytes: Uint8Array): void {
    this.#enqueue(bytes.slice());
  }

  /** Resolves once every queued byte was handed to the socket (or writing failed). */
  flush(): Promise<void> {
    if (!this.#writing && this.#outbox.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  /** Sends CR and resolves with the code of the ERROR reply. */
  login(pseudo: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    this.send({ op: Op.CR, pseudo });
    return this.nextError(timeoutMs);
  }

  /**
   * The next received frame, in order. Rejects on timeout, or (once the
   * buffered frames are used up) when the connection has ended.
   */
  next(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame> {
    const buffered = this.#frames.shift();
    if (buffered) return Promise.resolve(buffered);
    if (this.#ended !== null) return Promise.reject(new Error(`next(): ${this.#ended}`));
    return new Promise<Frame>((resolve, reject) => {
      const w: Waiter = {
        resolve: (f) => {
          clearTimeout(w.timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(w.timer);
          reject(e);
        },
        timer: undefined,
      };
      w.timer = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`next(): no frame received within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** The next frame must be an ERROR: resolves with its code, rejects naming any other frame. */
  async nextError(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    const f = await this.next(timeoutMs);
    if (f.op !== Op.ERROR) {
      throw new Error(`nextError(): expected an ERROR frame, got ${describeFrame(f)}`);
    }
    return f.code;
  }

  /**
   * Resolves after `ms` if no frame arrived meanwhile; rejects as soon as one
   * does (or at once if one is already buffered). The frame stays buffered
   * for `next()`. The connection ending is not a frame: watch `closed` for it.
   */
  expectSilence(ms: number): Promise<void> {
    if (this.#frames.length > 0) {
      return Promise.reject(
        new Error(
          `expectSilence(): a frame was already waiting: ${describeFrame(this.#frames[0])}`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const watcher = (f: Frame) => {
        clearTimeout(timer);
        this.#watchers.delete(watcher);
        reject(new Error(`expectSilence(): received ${describeFrame(f)} within ${ms} ms`));
      };
      const timer = setTimeout(() => {
        this.#watchers.delete(watcher);
        resolve();
      }, ms);
      this.#watchers.add(watcher);
    });
  }

  /** Closes the connection now; bytes still queued are dropped (await `flush()` first to keep them). */
  close(): void {
    this.#end("local", "the connection was closed locally");
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#ended !== null || this.#writeFailed) return;
    this.#outbox.push(bytes);
    if (!this.#writing) void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#outbox.length > 0 && this.#ended === null) {
        const data = concatBytes(this.#outbox);
        this.#outbox = [];
        await writeAll(this.conn, data);
      }
    } catch {
      // The peer is gone or we closed. Do not close here: the read loop
      // still has to collect whatever the server sent before closing.
      this.#writeFailed = true;
      this.#outbox = [];
    } finally {
      this.#writing = false;
      const waiters = this.#flushWaiters;
      this.#flushWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_SIZE);
    const decoder = new FrameDecoder();
    try {
      while (this.#ended === null) {
        const n = await this.conn.read(buf);
        if (n === null) {
          this.#end("closed", "the server closed the connection");
          return;
        }
        decoder.push(buf.subarray(0, n));
        for (let step = decoder.next(); step !== null; step = decoder.next()) {
          if (!step.ok) {
            const why = describeProtocolError(step.error);
            this.#end("malformed", `malformed data from the server: ${why}`);
            return;
          }
          this.#deliver(step.frame);
        }
      }
    } catch (e) {
      this.#end("error", `connection error: ${errorMessage(e)}`);
    }
  }

  #deliver(frame: Frame): void {
    for (const w of [...this.#watchers]) w(frame);
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(frame);
    else this.#frames.push(frame);
  }

  #end(kind: EndKind, reason: string): void {
    if (this.#ended !== null) return;
    this.#ended = reason;
    this.#endKind = kind;
    closeQuietly(this.conn);
    this.#outbox = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new Error(`next(): ${reason}`));
    this.#resolveClosed();
  }
}

type ReadResult = { bytes: Uint8Array } | { eof: true } | { error: Error };

/** One end of a private link: a NEW connection whose first frame is TCPAccept or TCPConnect. */
export class PrivateEnd {
  readonly conn: Deno.TcpConn;
  /**
   * Resolves (never rejects) when the connection ends: close(), or a read
   * seeing EOF or an error. A remote close is only noticed by reading.
   */
  readonly closed: Promise<void>;

  #resolveClosed!: () => void;
  #localClose = false;
  #eof = false;
  /** Opaque bytes already received, handed out by read() before reading more. */
  #pending: Uint8Array[] = [];
  /** At most one socket read is in flight; a timed-out answer() leaves it for the next reader. */
  #inflight: Promise<ReadResult> | null = null;
  #decoder = new FrameDecoder();
  /** Frames of an answer not yet complete (kept across a timed-out answer()). */
  #answerFrames: Frame[] = [];
  #writeChain: Promise<unknown> = Promise.resolve();

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Connects and sends `first` (TCPAccept for B, TCPConnect for A). */
  static async open(opts: ClientOptions, first: TCPAccept | TCPConnect): Promise<PrivateEnd> {
    const end = new PrivateEnd(await connectTcp(opts));
    try {
      await end.write(encode(first));
    } catch (e) {
      end.close();
      throw e;
    }
    return end;
  }

  /**
   * Waits for the server's ChatOS answer: the frames received up to and
   * including the first ERROR frame (ERROR 1 = linked; ERROR 6 = refused, the
   * TCPAbort that may follow is left unread). Bytes after that ERROR frame
   * are kept for read(). Rejects on timeout, EOF or malformed data.
   */
  async answer(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Frame[]> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      while (true) {
        const r = await Promise.race([this.#readChunk(), timeout]);
        const seen = this.#answerFrames;
        if (r === "timeout") {
          const why = `no ERROR frame within ${timeoutMs} ms`;
          throw new LinkAnswerError("timeout", `answer(): ${why}${this.#soFar()}`, seen);
        }
        if ("eof" in r) {
          const why = "connection closed before an ERROR frame";
          throw new LinkAnswerError("closed", `answer(): ${why}${this.#soFar()}`, seen);
        }
        if ("error" in r) {
          const why = r.error.message;
          throw new LinkAnswerError("socket", `answer(): ${why}${this.#soFar()}`, seen, why);
        }
        this.#decoder.push(r.bytes);
        for (let step = this.#decoder.next(); step !== null; step = this.#decoder.next()) {
          if (!step.ok) {
            const why = describeProtocolError(step.error);
            throw new LinkAnswerError("malformed", `answer(): malformed data: ${why}`, seen, why);
          }
          this.#answerFrames.push(step.frame);
          if (step.frame.op === Op.ERROR) {
            const rest = this.#decoder.takeRemainder();
            if (rest.length > 0) this.#pending.push(rest);
            const frames = this.#answerFrames;
            this.#answerFrames = [];
            return frames;
          }
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opaque bytes (after linking); null at EOF. Rejects on a socket error. */
  async read(): Promise<Uint8Array | null> {
    const held = this.#pending.shift();
    if (held) return held;
    const r = await this.#readChunk();
    if ("bytes" in r) return r.bytes;
    if ("eof" in r) return null;
    throw r.error;
  }

  /** Writes all of `bytes`; concurrent writes are serialized, never interleaved. */
  write(bytes: Uint8Array): Promise<void> {
    const p = this.#writeChain.then(() => writeAll(this.conn, bytes));
    this.#writeChain = p.catch(() => {});
    return p;
  }

  /** Reads until EOF; rejects if more than `limit` bytes arrive. */
  async readAll(limit = 256 * 1024 * 1024): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (let c = await this.read(); c !== null; c = await this.read()) {
      size += c.length;
      if (size > limit) throw new Error(`readAll(): more than ${limit} bytes`);
      chunks.push(c);
    }
    return chunks.length === 0 ? new Uint8Array(0) : concatBytes(chunks);
  }

  /** Half-closes after the writes already queued: the peer sees EOF, reading still works. */
  async closeWrite(): Promise<void> {
    await this.#writeChain;
    try {
      await this.conn.closeWrite();
    } catch (e) {
      if (e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.BadResource) return;
      throw e;
    }
  }

  close(): void {
    if (this.#localClose) return;
    this.#localClose = true;
    closeQuietly(this.conn);
    this.#markEof();
  }

  #soFar(): string {
    return this.#answerFrames.length === 0
      ? ""
      : ` (received so far: ${this.#answerFrames.map(describeFrame).join(", ")})`;
  }

  #markEof(): void {
    this.#eof = true;
    this.#resolveClosed();
  }

  /** Never rejects: errors come back as values so an abandoned read cannot go unhandled. */
  #readChunk(): Promise<ReadResult> {
    if (this.#eof) return Promise.resolve({ eof: true });
    this.#inflight ??= (async (): Promise<ReadResult> => {
      const buf = new Uint8Array(READ_SIZE);
      try {
        const n = await this.conn.read(buf);
        if (n === null) {
          this.#markEof();
          return { eof: true };
        }
        return { bytes: buf.subarray(0, n) };
      } catch (e) {
        this.#markEof();
        if (this.#localClose) return { eof: true };
        return { error: e instanceof Error ? e : new Error(String(e)) };
      } finally {
        this.#inflight = null;
      }
    })();
    return this.#inflight;
  }
}
