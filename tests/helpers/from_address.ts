/**
 * Raw ChatOS connections from a chosen loopback source address (any
 * 127.x.y.z can be bound locally). Deno.connect cannot pick a source
 * address; node:net's `localAddress` can.
 */
import net from "node:net";
import { encode, Op } from "../../src/protocol/mod.ts";

/** A TCP connection to 127.0.0.1:`port` from `localAddress`; rejects if it fails. */
export function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

export class RawConn {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #bytes: number[] = [];
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("data", (d: Uint8Array) => {
      this.#bytes.push(...d);
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("close", () => {
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on("error", () => {}); // a reset shows as `closed`; the test looks at that
  }

  /** Connects from `localAddress`; rejects if the connection fails. */
  static async open(port: number, localAddress: string): Promise<RawConn> {
    return new RawConn(await connectFrom(port, localAddress));
  }

  send(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The ERROR code of the answer to a CR, or null if the server closed first. */
  async login(pseudo: string, timeoutMs = 5000): Promise<number | null> {
    this.send(encode({ op: Op.CR, pseudo }));
    const deadline = Date.now() + timeoutMs;
    while (this.#bytes.length < 2) {
      if (this.socket.destroyed || this.socket.readyState !== "open") return null;
      if (Date.now() > deadline) throw new Error(`no answer to CR ${pseudo}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    const [op, code] = this.#bytes.splice(0, 2);
    if (op !== Op.ERROR) throw new Error(`expected ERROR, got opcode ${op}`);
    return code;
  }

  close(): void {
    this.socket.destroy();
  }
}
