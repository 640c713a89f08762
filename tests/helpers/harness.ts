/** Starts an in-process server on a free loopback port and logs clients in. */
import { ChatClient } from "../../src/client/client.ts";
import type { ServerConfig } from "../../src/server/config.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";

/** What an end-to-end case needs: somewhere to connect. */
export interface ChatHarness {
  /** The port for the next new connection (a cluster hands out each node's in turn). */
  readonly port: number;
  /** A connected client (not logged in). Closed by the harness. */
  connect(): Promise<ChatClient>;
  /** A connected client logged in as `pseudo` (asserts ERROR 1). */
  login(pseudo: string): Promise<ChatClient>;
}

/** How a suite of cases is registered and given a server (single node or cluster). */
export interface RunCase {
  t: (name: string, fn: () => Promise<void>) => void;
  withServer: (
    config: Partial<ServerConfig>,
    fn: (h: ChatHarness) => Promise<void>,
  ) => Promise<void>;
}

export interface Harness extends ChatHarness {
  server: RunningServer;
  port: number;
  /** A connected client (not logged in). Closed by the harness. */
  connect(): Promise<ChatClient>;
  /** A connected client logged in as `pseudo` (asserts ERROR 1). */
  login(pseudo: string): Promise<ChatClient>;
}

export async function withServer(
  config: Partial<ServerConfig>,
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const server = await startServer({ host: "127.0.0.1", port: 0, ...config });
  const { clients, connect, login } = clientsOn(() => server.port);
  const h: Harness = { server, port: server.port, connect, login };
  try {
    await fn(h);
  } finally {
    for (const c of clients) c.close();
    await server.close();
  }
}

/** connect/login for a harness; every client made is kept in `clients` for closing. */
export function clientsOn(nextPort: () => number) {
  const clients: ChatClient[] = [];
  const connect = async () => {
    const c = await ChatClient.connect({ port: nextPort() });
    clients.push(c);
    return c;
  };
  const login = async (pseudo: string) => {
    const c = await connect();
    const code = await c.login(pseudo);
    if (code !== 1) throw new Error(`login ${pseudo}: ERROR ${code}`);
    return c;
  };
  return { clients, connect, login };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until true or `ms` passes. */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  ms = 3000,
  what = "condition",
) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
