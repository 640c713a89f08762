/**
 * One end of a private link: a socket whose bytes are copied, unchanged, to
 * its peer. Before the peer joins, what the end sends is held up to a bound
 * and then reading pauses, so TCP itself pushes back. After pairing, each
 * direction is a read → await write loop: a slow reader slows the fast writer
 * instead of growing memory.
 */
import { OK_FRAME } from "../../protocol/mod.ts";
import { writeAll } from "../../lib/async.ts";
import { closeQuietly } from "../../lib/errors.ts";

export interface LinkConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

const COPY_BUFFER = 64 * 1024;

export class LinkEnd {
  readonly conn: LinkConn;
  /** A client's end hears ERROR 1 when linked; a node-to-node bridge does not. */
  readonly announce: boolean;
  #limit: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #peer: LinkEnd | null = null;
  #resume: (() => void) | null = null;
  #readDone = false;
  #closed = false;
  #onBytes: (n: number) => void;
  #whenClosed = Promise.withResolvers<void>();
  #onEndUnpaired: (() => void) | null = null;
  /** When this end last read a byte (performance.now()): a link's idleness. */
  lastActive = performance.now();

  constructor(
    conn: LinkConn,
    initial: Uint8Array,
    limit: number,
    announce: boolean,
    onBytes: (n: number) => void,
  ) {
    this.conn = conn;
    this.announce = announce;
    this.#limit = limit;
    this.#onBytes = onBytes;
    if (initial.length > 0) {
      this.#pending.push(initial);
      this.#pendingBytes = initial.length;
    }
  }

  get closed(): Promise<void> {
    return this.#whenClosed.promise;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Starts reading. `onEndUnpaired` is called once if the socket ends (EOF or
   * error) before this end has a peer (a parked end whose owner went away).
   */
  start(onEndUnpaired?: () => void): void {
    this.#onEndUnpaired = onEndUnpaired ?? null;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(COPY_BUFFER);
    try {
      while (!this.#closed) {
        if (!this.#peer && this.#pendingBytes >= this.#limit) {
          await new Promise<void>((resolve) => (this.#resume = resolve));
          continue;
        }
        const n = await this.conn.read(buf);
        if (n === null) break;
        this.lastActive = performance.now();
        const peer = this.#peer;
        if (peer) {
          await writeAll(peer.conn, buf.subarray(0, n));
          this.#onBytes(n);
        } else {
          this.#pending.push(buf.slice(0, n));
          this.#pendingBytes += n;
        }
      }
    } catch {
      // A reset or a write to a closed peer: the link is over either way.
      return this.#closeBoth();
    }
    this.#readDone = true;
    const peer = this.#peer;
    if (peer) return this.#propagateEof(peer);
    const unpaired = this.#onEndUnpaired;
    this.#onEndUnpaired = null;
    if (unpaired && !this.#closed) unpaired();
  }

  /** This side finished sending: let the peer's reader see EOF; close when both sides are done. */
  async #propagateEof(peer: LinkEnd): Promise<void> {
    if (peer.#readDone) return this.#closeBoth();
    try {
      await peer.conn.closeWrite();
    } catch {
      this.#closeBoth(); // the peer's socket is gone: nothing left to half-close
    }
  }

  /**
   * Joins this end to `peer` in one direction: the bytes held so far go
   * first, then live bytes. Call `announceLinked` on both ends before
   * `attach` on either, so ERROR 1 precedes any relayed byte.
   */
  async attach(peer: LinkEnd): Promise<void> {
    this.#onEndUnpaired = null;
    try {
      while (this.#pending.length > 0) {
        const chunks = this.#pending;
        this.#pending = [];
        for (const c of chunks) {
          await writeAll(peer.conn, c);
          this.#onBytes(c.length);
        }
      }
    } catch {
      return this.#closeBoth(peer); // the peer stopped taking bytes: the link is over
    }
    this.#pendingBytes = 0;
    this.#peer = peer;
    this.#resume?.();
    this.#resume = null;
    if (this.#readDone) await this.#propagateEof(peer);
  }

  async announceLinked(): Promise<void> {
    if (this.announce) await writeAll(this.conn, OK_FRAME);
  }

  /** Writes a last frame (best effort) and closes, e.g. a TCPAbort to a parked end. */
  async refuse(frames: Uint8Array[]): Promise<void> {
    try {
      for (const f of frames) await writeAll(this.conn, f);
    } catch {
      // the peer is gone: it will not read the last word, and we close anyway
    }
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onEndUnpaired = null;
    this.#resume?.();
    closeQuietly(this.conn);
    this.#whenClosed.resolve();
  }

  #closeBoth(peer: LinkEnd | null = this.#peer): void {
    this.close();
    peer?.close();
  }
}
