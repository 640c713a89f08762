/**
 * One ChatOS node as a real process (`src/server/main.ts`) whose stderr is
 * captured: for signals, drains and what the node logs. Cluster tests that
 * need no log use src/ops/cluster.ts instead.
 */
import { NODE_MAIN, nodeRunArgs } from "../../src/ops/node_command.ts";
import { freePort, waitForPort } from "../../src/ops/processes.ts";

export interface NodeProcess {
  readonly port: number;
  readonly adminPort: number;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  readonly running: boolean;
  /** Sends a signal without waiting. */
  signal(sig: Deno.Signal): void;
  /** Everything the node wrote to stderr so far. */
  stderr(): string;
  /** Resolves when a stderr line matches `re`; rejects after `ms` or if the node exits first. */
  waitForLine(re: RegExp, ms?: number): Promise<string>;
}

/** Starts a node on loopback with an admin port; resolves once the admin endpoint listens. */
export async function startNode(args: string[]): Promise<NodeProcess> {
  const port = freePort(), adminPort = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...nodeRunArgs(NODE_MAIN),
      "--host=127.0.0.1",
      `--port=${port}`,
      `--admin-port=${adminPort}`,
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  let exited = false;
  const watchers = new Set<() => void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of watchers) w();
    }
  })();
  const status = child.status.then(async (s) => {
    exited = true;
    await reading;
    for (const w of watchers) w();
    return s;
  });
  // Never outlive a failed test run (as src/ops/processes.ts does for its children).
  globalThis.addEventListener("unload", () => {
    if (!exited) child.kill("SIGKILL");
  });
  const node: NodeProcess = {
    port,
    adminPort,
    status,
    get running() {
      return !exited;
    },
    signal: (sig) => {
      if (!exited) child.kill(sig);
    },
    stderr: () => text,
    waitForLine(re, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = text.split("\n").find((l) => re.test(l));
          if (line !== undefined) done(() => resolve(line));
          else if (exited) done(() => reject(new Error(`node exited before logging ${re}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no log line ${re} within ${ms} ms`))),
          ms,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          watchers.delete(check);
          settle();
        };
        watchers.add(check);
        check();
      });
    },
  };
  try {
    await waitForPort(adminPort, 20_000, () => !exited);
  } catch (e) {
    node.signal("SIGKILL");
    await status;
    throw new Error(`${(e as Error).message}\n${text}`);
  }
  return node;
}

/** The flags of a node `id` in redis mode on `redisUrl`, its bridge on a free loopback port. */
export function redisNodeArgs(redisUrl: string, id: string, secret: string): string[] {
  return [
    "--presence=redis",
    `--redis-url=${redisUrl}`,
    `--node-id=${id}`,
    "--bridge-host=127.0.0.1",
    `--bridge-port=${freePort()}`,
    "--advertise-host=127.0.0.1",
    `--cluster-secret=${secret}`,
  ];
}
