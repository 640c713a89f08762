/** Fixtures for the client tests: an in-process server and a linked pair of private ends. */
import type { ChatClient, PrivateEnd } from "../../src/client/client.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { withServer } from "./harness.ts";
import { openLink } from "./link.ts";

export { randomBytes } from "./link.ts";

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

export async function withWorld<T>(fn: (w: ClientWorld) => Promise<T>): Promise<T> {
  let result!: T;
  await withServer({}, async (h) => {
    const ends: PrivateEnd[] = [];
    try {
      result = await fn({
        server: h.server,
        port: h.port,
        login: h.login,
        async link(a, aName, b, bName) {
          const { endA, endB } = await openLink(h, a, b, 4242, { a: aName, b: bName });
          ends.push(endA, endB);
          return [endA, endB];
        },
      });
    } finally {
      for (const e of ends) e.close();
      await Promise.all(ends.map((e) => e.closed));
    }
  });
  return result;
}
