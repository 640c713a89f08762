/**
 * A ChatOS connection from a chosen loopback source address (127.0.0.7, say),
 * speaking frames both ways (from_address.ts's RawConn speaks bytes), for
 * tests where who a client is matters.
 */
import type net from "node:net";
import { connectFrom } from "./from_address.ts";
import { encode, type Frame, FrameDecoder } from "../../src/protocol/mod.ts";
import { withDeadline } from "../../src/lib/async.ts";

export class SourcedClient {
  readonly #socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #frames: Frame[] = [];
  #waiters = new Set<() => void>();
  #ended = false;
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#decoder.push(new Uint8Array(chunk));
      for (let step = this.#decoder.next(); step !== null; step = this.#decoder.next()) {
        if (!step.ok) throw new Error("malformed frame from the server");
        this.#frames.push(step.frame);
      }
      this.#wake();
    });
    this.closed = new Promise((resolve) => {
      const end = () => {
        this.#ended = true;
        this.#wake();
        resolve();
      };
      socket.on("close", end);
      socket.on("error", end);
    });
  }

  /** Connects to 127.0.0.1:`port` from `localAddress`. */
  static async connect(port: number, localAddress: string): Promise<SourcedClient> {
    return new SourcedClient(await connectFrom(port, localAddress));
  }

  #wake(): void {
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  send(frame: Frame): void {
    this.#socket.write(encode(frame));
  }

  /** Writes bytes as they are (not a frame). */
  writeRaw(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.#socket.write(bytes, (e) => (e ? reject(e) : resolve()))
    );
  }

  /** The next frame from the server; rejects once the connection ended with none left. */
  next(ms = 5000): Promise<Frame> {
    return withDeadline(
      (async () => {
        for (;;) {
          const f = this.#frames.shift();
          if (f) return f;
          if (this.#ended) throw new Error("connection ended");
          await new Promise<void>((r) => this.#waiters.add(r));
        }
      })(),
      ms,
      () => new Error(`no frame within ${ms} ms`),
    );
  }

  /** Every frame until the server closes the connection. */
  async rest(ms = 5000): Promise<Frame[]> {
    await withDeadline(this.closed, ms, () => new Error(`not closed within ${ms} ms`));
    return this.#frames.splice(0);
  }

  close(): void {
    this.#socket.destroy();
  }
}
