/**
 * Fixtures for the client tests: an in-process server, a linked pair of
 * private ends, and CLI processes driven through a pipe or a pseudo-terminal.
 */
import type { ChatClient, PrivateEnd } from "../../src/client/client.ts";
import type { ServerConfig } from "../../src/server/config.ts";
import { type RunningServer, startServer } from "../../src/server/server.ts";
import { withServer } from "./harness.ts";
import { openLink } from "./link.ts";
import { Wakeup } from "./wakeup.ts";

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

const CLI = new URL("../../src/client/cli/main.ts", import.meta.url).pathname;
const enc = new TextEncoder();

/** Our own terminal control (cursor moves, clears, colours): removed before matching lines. */
// deno-lint-ignore no-control-regex
const OWN_CONTROL = /\x1b\[[0-9;?]*[A-Za-z]/g;

export interface CliSpawn {
  /** Run under a pseudo-terminal (`script`), as a user's terminal would. */
  pty?: boolean;
  cwd: string;
  env?: Record<string, string>;
}

/**
 * One `deno task client` process driven as a user would: lines typed into
 * stdin (a pipe, or a pseudo-terminal through `script -qfc`), stdout read
 * as lines to wait for. `raw` keeps every byte the terminal would get.
 */
export class CliProcess {
  readonly name: string;
  readonly pty: boolean;
  #proc: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #raw = "";
  #lines: string[] = [];
  #seen = 0;
  #wakeup = new Wakeup();
  #stdout: Promise<void>;
  readonly stderr: Promise<string>;
  #status: Promise<Deno.CommandStatus> | null = null;

  constructor(name: string, args: string[], opts: CliSpawn) {
    this.name = name;
    this.pty = opts.pty ?? false;
    const deno = [
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      CLI,
      ...args,
    ];
    const quoted = deno.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
    const [cmd, ...cmdArgs] = this.pty
      ? ["script", "-qfec", `stty cols 120 rows 40; exec ${quoted}`, "/dev/null"]
      : deno;
    const proc = new Deno.Command(cmd, {
      args: cmdArgs,
      cwd: opts.cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // INIT_CWD as `deno task client` sets it (and not the one of a `deno task test` run).
      env: { INIT_CWD: opts.cwd, ...(opts.env ?? { NO_COLOR: "1" }) },
    }).spawn();
    this.#proc = proc;
    this.#stdin = proc.stdin.getWriter();
    this.#stdout = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout) {
        const text = decoder.decode(chunk, { stream: true });
        this.#raw += text;
        buf += text;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        this.#lines.push(...parts.map((l) => this.#clean(l)));
        this.#wakeup.wake();
      }
      if (buf) this.#lines.push(this.#clean(buf));
      this.#wakeup.wake();
    })();
    this.stderr = new Response(proc.stderr).text();
  }

  /** A terminal line as the user reads it: our control sequences and the timestamp removed. */
  #clean(line: string): string {
    if (!this.pty) return line;
    const segments = line.replace(/\r+$/, "").split("\r");
    const last = segments.filter((s) => s.replace(OWN_CONTROL, "") !== "").pop() ?? "";
    return last.replace(OWN_CONTROL, "").replace(/^(> )?\d\d:\d\d /, "");
  }

  /** Types `line` and Enter. */
  async type(line: string): Promise<void> {
    await this.write(line + (this.pty ? "\r" : "\n"));
  }

  async write(text: string): Promise<void> {
    await this.#stdin.write(enc.encode(text));
  }

  /** Waits for a line (after the last one matched) that matches `re`. */
  waitFor(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    return this.#until(
      () => {
        for (let i = this.#seen; i < this.#lines.length; i++) {
          const m = re.exec(this.#lines[i]);
          if (m) {
            this.#seen = i + 1;
            return m;
          }
        }
        return null;
      },
      `a line matching ${re}`,
      ms,
    );
  }

  /** Waits until what the terminal shows (our own control sequences removed) matches `re`. */
  waitForRaw(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    return this.#until(() => re.exec(this.#raw.replace(OWN_CONTROL, "")), `${re} on screen`, ms);
  }

  async #until<T>(found: () => T | null, what: string, ms: number): Promise<T> {
    const deadline = Date.now() + ms;
    while (true) {
      const m = found();
      if (m !== null) return m;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.name}: no ${what} within ${ms} ms; output so far:\n${this.#lines.join("\n")}`,
        );
      }
      await this.#wakeup.wait(left);
    }
  }

  /** Every line so far, as read. */
  get output(): string {
    return this.#lines.join("\n");
  }

  /** Every byte written to the terminal so far. */
  get raw(): string {
    return this.#raw;
  }

  /** Closes stdin (EOF; under a pty, /quit) and waits for the exit status. */
  async end(): Promise<Deno.CommandStatus> {
    if (this.pty) await this.type("/quit");
    await this.#stdin.close().catch(() => {});
    return await this.exited();
  }

  async exited(): Promise<Deno.CommandStatus> {
    this.#status ??= this.#proc.status;
    const status = await this.#status;
    await this.#stdout;
    await this.stderr;
    return status;
  }

  /** Last-resort cleanup: kill if still running, release every stream. */
  async dispose(): Promise<void> {
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#stdin.close().catch(() => {});
    await this.exited();
  }
}

export interface CliWorld {
  port: number;
  /** A temporary folder, removed afterwards; the clients run in it. */
  dir: string;
  /** `deno task client name 127.0.0.1 PORT ...extra`. */
  spawn(name: string, extra?: string[], opts?: Omit<CliSpawn, "cwd">): CliProcess;
  /** Stops the server (clients see the connection drop). */
  stopServer(): Promise<void>;
  /** Starts a server again on the same port. */
  startServer(): Promise<void>;
}

/** A server on a free port, a temp folder, and CLI processes that are killed afterwards. */
export async function withCliWorld(
  fn: (w: CliWorld) => Promise<void>,
  config: Partial<ServerConfig> = {},
): Promise<void> {
  let server: RunningServer = await startServer({ host: "127.0.0.1", port: 0, ...config });
  const port = server.port;
  const dir = await Deno.makeTempDir({ prefix: "chatos-cli-" });
  const procs: CliProcess[] = [];
  try {
    await fn({
      port,
      dir,
      spawn(name, extra = [], opts = {}) {
        const cli = new CliProcess(name, [name, "127.0.0.1", String(port), ...extra], {
          ...opts,
          cwd: dir,
        });
        procs.push(cli);
        return cli;
      },
      stopServer: () => server.close(),
      async startServer() {
        server = await startServer({ host: "127.0.0.1", port, ...config });
      },
    });
  } finally {
    await Promise.all(procs.map((p) => p.dispose()));
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}
