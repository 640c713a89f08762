/**
 * Child processes for `deno task cluster`, the tests and the benchmark: free
 * ports, waiting for a listener, and a throwaway redis-server (no persistence,
 * its own temp dir, never the Redis that may already run on 6379). Every child
 * is killed when the process that started it unloads, so none outlives a
 * failed run.
 */
import { sleep } from "../lib/async.ts";
import { closeQuietly } from "../lib/errors.ts";

const children = new Set<Deno.ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function hookUnload(): void {
  if (hooked) return;
  hooked = true;
  globalThis.addEventListener("unload", () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
    for (const d of dirs) {
      try {
        Deno.removeSync(d, { recursive: true });
      } catch { /* best effort */ }
    }
  });
}

export interface SpawnOptions {
  /** Working directory (default: this process's). */
  cwd?: string;
  /** "piped" lets the caller write to the child (e.g. control lines); default "null". */
  stdin?: "piped" | "null";
}

/**
 * Spawns `cmd` under `setsid`, in its own process group: a Ctrl-C in the
 * terminal reaches only the harness, which then stops children in order (a
 * node that got the signal twice would skip its graceful drain). setsid execs
 * `cmd` in place, so the child's pid is the command's own (for /proc).
 */
export function spawnChild(
  cmd: string,
  args: string[],
  output: "inherit" | "null" | "piped" = "null",
  options: SpawnOptions = {},
): Deno.ChildProcess {
  hookUnload();
  const child = new Deno.Command("setsid", {
    args: [cmd, ...args],
    cwd: options.cwd,
    stdout: output,
    stderr: output,
    stdin: options.stdin ?? "null",
  }).spawn();
  children.add(child);
  void child.status.then(() => children.delete(child));
  return child;
}

const handedOut = new Set<number>();

/**
 * A port free now, for a child to bind. Picked below Linux's ephemeral range
 * (32768+), so the outgoing connections of a busy test run cannot take it
 * between this check and the child's bind, and never the same one twice.
 */
export function freePort(): number {
  for (let tries = 0; tries < 1000; tries++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue;
    }
    handedOut.add(port);
    return port;
  }
  throw new Error("no free port found in 20000-31999");
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, ms = 15000, alive: () => boolean = () => true) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process for port ${port} exited before listening`);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

/** True if something at 127.0.0.1:port answers PING with +PONG. */
export async function pingRedis(port: number, timeoutMs = 500): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), timeoutMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    closeQuietly(conn); // the timer may have closed it
  }
}

/**
 * Spawns a Redis-protocol server (redis-server, redis-sentinel) meant to listen on `port` and
 * waits up to 5 s for it to answer PING; null (and the process killed) if it never did.
 */
export async function spawnAnswering(
  cmd: string,
  port: number,
  args: string[],
): Promise<Deno.ChildProcess | null> {
  const proc = spawnChild(cmd, args);
  let exited = false;
  void proc.status.then(() => (exited = true));
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !exited) {
    if (await pingRedis(port)) return proc;
    await sleep(20);
  }
  try {
    proc.kill("SIGKILL");
  } catch { /* exited on its own (port taken?) */ }
  await proc.status;
  return null;
}

export interface RedisProcess {
  readonly url: string;
  readonly port: number;
  /** The server's pid while it runs (for CPU and RSS figures); null when stopped. */
  readonly pid: number | null;
  /** SIGTERM and wait. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait, as a crash would. Idempotent. */
  kill(): Promise<void>;
  /** Starts it again on the same port after stop()/kill(); it comes back empty. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open (a stalled Redis). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export async function startRedis(): Promise<RedisProcess> {
  const dir = await Deno.makeTempDir({ prefix: "chatos-redis-" });
  dirs.add(dir);
  let port = 0;
  let child: Deno.ChildProcess | null = null;

  const spawn = async (attempts: number): Promise<void> => {
    for (let attempt = 1;; attempt++) {
      if (port === 0 || (attempt > 1 && attempts > 1)) port = freePort();
      child = await spawnAnswering("redis-server", port, [
        ...["--port", String(port), "--bind", "127.0.0.1"],
        ...["--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"],
      ]);
      if (child) return;
      if (attempt >= attempts) throw new Error(`redis-server did not start on port ${port}`);
    }
  };

  const halt = async (signal: Deno.Signal): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc) return;
    try {
      proc.kill("SIGCONT"); // a paused server would not act on SIGTERM
      proc.kill(signal);
    } catch { /* already exited */ }
    await proc.status;
  };

  // A fresh port may be taken between probing and binding: try a few. Restarts reuse the port.
  await spawn(5);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? null;
    },
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    start: () => (child ? Promise.resolve() : spawn(1)),
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    async restart() {
      await halt("SIGTERM");
      await spawn(1);
    },
  };
}
