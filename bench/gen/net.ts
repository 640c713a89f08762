/** Connections as the generator makes them: dial, log in, pair with a ceiling, read in a loop. */
import { readExactly, writeAll } from "../../src/lib/async.ts";
import { errorMessage } from "../../src/lib/errors.ts";
import { frame, OP_CR, OP_ERROR } from "../wire.ts";

export async function dial(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port, transport: "tcp" });
  conn.setNoDelay(true);
  return conn;
}

/** CR then ERROR 1, the ChatOS login (the broadcaster speaks it too). */
export async function login(conn: Deno.Conn, pseudo: string): Promise<void> {
  await writeAll(conn, frame(OP_CR, [pseudo]));
  await expectOk(conn, `login ${pseudo}`);
}

/** The forwarder pairs two sockets that send the same 4-byte key first. */
export async function preamble(conn: Deno.Conn, key: number): Promise<void> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, key);
  await writeAll(conn, b);
}

/** Runs a read loop until EOF; `onRead(buf, n)` sees each read. */
export function readLoop(
  conn: Deno.Conn,
  size: number,
  onRead: (buf: Uint8Array, n: number) => void,
  onEnd: (why: string) => void,
): void {
  const buf = new Uint8Array(size);
  (async () => {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return onEnd("eof");
      onRead(buf, n);
    }
  })().catch((e) => onEnd(errorMessage(e)));
}

/** Reads one whole frame and checks its opcode (link handshake steps; one frame per read). */
export async function expectFrame(conn: Deno.Conn, op: number, what: string): Promise<void> {
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  if (n === null) throw new Error(`${what}: connection closed`);
  if (buf[0] !== op) throw new Error(`${what}: opcode ${buf[0]}/${buf[1]}, expected ${op}`);
  if (op === OP_ERROR && buf[1] !== 1) throw new Error(`${what}: ERROR ${buf[1]}`);
}

export async function expectOk(conn: Deno.Conn, what: string): Promise<void> {
  const b = await readExactly(conn, 2).catch((e) => {
    throw new Error(`${what}: ${errorMessage(e)}`);
  });
  if (b[0] !== OP_ERROR || b[1] !== 1) throw new Error(`${what}: ${b[0]}/${b[1]}, not ERROR 1`);
}
