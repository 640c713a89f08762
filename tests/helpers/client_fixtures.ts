/** Fixtures for the client tests: an in-process server and a linked pair of private ends. */
import assert from "node:assert/strict";
import { ChatClient, PrivateEnd } from "../../src/client/client.ts";
import { Op } from "../../src/protocol/mod.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";

export interface ClientWorld {
  server: RunningServer;
  port: number;
  /** A client logged in as `pseudo` (asserts ERROR 1); closed by `withWorld`. */
  login(pseudo: string): Promise<ChatClient>;
  /** Runs the private-connection handshake a → b; the ends are closed by `withWorld`. */
  link(
    a: ChatClient,
    aName: string,
    b: ChatClient,
    bName: string,
  ): Promise<[PrivateEnd, PrivateEnd]>;
}

export async function withWorld(fn: (w: ClientWorld) => Promise<void>): Promise<void> {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const clients: ChatClient[] = [];
  const ends: PrivateEnd[] = [];
  const w: ClientWorld = {
    server,
    port: server.port,
    async login(pseudo) {
      const c = await ChatClient.connect({ port: server.port });
      clients.push(c);
      assert.equal(await c.login(pseudo), 1, `login ${pseudo}`);
      return c;
    },
    async link(a, aName, b, bName) {
      const password = 4242;
      const key = { sender: aName, recipient: bName, password };
      a.send({ op: Op.TCPAsk, ...key });
      assert.equal(await a.nextError(), 1, "TCPAsk answered OK");
      assert.deepEqual(await b.next(), { op: Op.TCPAsk, ...key });
      const bEnd = await PrivateEnd.open({ port: server.port }, { op: Op.TCPAccept, ...key });
      ends.push(bEnd);
      assert.deepEqual(await a.next(), { op: Op.TCPAccept, ...key });
      const aEnd = await PrivateEnd.open({ port: server.port }, { op: Op.TCPConnect, ...key });
      ends.push(aEnd);
      const ok = [{ op: Op.ERROR, code: 1 }];
      assert.deepEqual(await aEnd.answer(), ok);
      assert.deepEqual(await bEnd.answer(), ok);
      return [aEnd, bEnd];
    },
  };
  try {
    await fn(w);
  } finally {
    for (const e of ends) e.close();
    for (const c of clients) c.close();
    await Promise.all([...clients.map((c) => c.closed), ...ends.map((e) => e.closed)]);
    await server.close();
  }
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}
