/**
 * A throwaway redis-server for tests: its own free port on 127.0.0.1, no
 * persistence, its own temp dir. It never touches a Redis already running on
 * 6379. Every server started here is also killed when the test process
 * unloads, so none outlives the run.
 */

export interface TestRedis {
  url: string;
  port: number;
  /** SIGTERM and wait. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait, as a crash would. Idempotent. */
  kill(): Promise<void>;
  /** Stops it and starts a new one on the same port; it comes back empty. */
  restart(): Promise<void>;
  /** Starts it again on the same port after stop()/kill() (empty). */
  start(): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open (a stalled Redis). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

const live = new Set<Deno.ChildProcess>();
const dirs = new Set<string>();
let unloadHooked = false;

function hookUnload(): void {
  if (unloadHooked) return;
  unloadHooked = true;
  globalThis.addEventListener("unload", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // best effort
      }
    }
  });
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
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
    try {
      conn?.close();
    } catch {
      // closed by the timer
    }
  }
}

export async function startRedis(): Promise<TestRedis> {
  hookUnload();
  const dir = await Deno.makeTempDir({ prefix: "chatos-redis-" });
  dirs.add(dir);
  let port = 0;
  let child: Deno.ChildProcess | null = null;

  const spawn = async (attempts: number): Promise<void> => {
    for (let attempt = 1;; attempt++) {
      if (port === 0 || attempt > 1 && attempts > 1) port = freePort();
      const proc = new Deno.Command("redis-server", {
        args: [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
          "--daemonize",
          "no",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      live.add(proc);
      let exited = false;
      proc.status.then(() => {
        exited = true;
        live.delete(proc);
      });
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !exited) {
        if (await pingRedis(port)) {
          child = proc;
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      try {
        proc.kill("SIGKILL");
      } catch {
        // exited on its own (port taken?)
      }
      await proc.status;
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
    } catch {
      // already exited
    }
    await proc.status;
  };

  // A fresh port may be grabbed between probing and binding: try a few. Restarts reuse the port.
  await spawn(5);
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    port,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    start: () => child ? Promise.resolve() : spawn(1),
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    async restart() {
      await halt("SIGTERM");
      await spawn(1);
    },
  };
}
