/**
 * The benchmark's own process logic: children that talk in JSON lines (the
 * load generators, the ceilings) tracked by a registry that stops them when a
 * scenario or the run ends, however it ends; and CPU time and RSS read from
 * /proc. Spawning, ports and Redis come from src/ops/processes.ts.
 */
import { sleep } from "../src/lib/async.ts";
import { errorMessage } from "../src/lib/errors.ts";
import { spawnChild, waitForPort } from "../src/ops/processes.ts";

export const ROOT = new URL("..", import.meta.url).pathname;
const CLK_TCK = 100; // Linux USER_HZ; getconf CLK_TCK is 100 on every mainstream kernel

export type Event = Record<string, unknown> & { ev?: string };

export interface ChildOptions {
  name: string;
  cmd: string;
  args: string[];
  /** Working directory; the repository root by default. */
  cwd?: string;
  /** Pipe stdin (for control lines); otherwise it is /dev/null. */
  stdin?: boolean;
}

/**
 * Every child of one run. `stop` ends the ones a scenario left behind; on
 * SIGINT/SIGTERM all are killed before exiting (src/ops/processes.ts kills
 * them again on unload, should anything slip through).
 */
export class Children {
  readonly #live = new Set<Child>();

  constructor() {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => {
        for (const c of this.#live) c.kill("SIGKILL");
        Deno.exit(130);
      });
    }
  }

  spawn(o: ChildOptions): Child {
    const c = new Child(o);
    this.#live.add(c);
    void c.proc.status.then(() => this.#live.delete(c));
    return c;
  }

  /** Stops every child still alive but `keep` (closing stdin, SIGTERM, SIGKILL after `graceMs`). */
  async stop(graceMs = 2000, keep: ReadonlySet<Child> = new Set()): Promise<void> {
    await Promise.all([...this.#live].filter((c) => !keep.has(c)).map((c) => c.stop(graceMs)));
  }
}

/** A child whose stdout is JSON lines (events) and whose stderr is kept (its tail) for errors. */
export class Child {
  readonly name: string;
  readonly proc: Deno.ChildProcess;
  readonly pid: number;
  exited = false;
  exitCode: number | null = null;
  #events: Event[] = [];
  #waiters: Array<() => void> = [];
  #stderr = "";
  #stdout = "";
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;

  constructor(o: ChildOptions) {
    this.name = o.name;
    this.proc = spawnChild(o.cmd, o.args, "piped", {
      cwd: o.cwd ?? ROOT,
      stdin: o.stdin ? "piped" : "null",
    });
    this.pid = this.proc.pid;
    if (o.stdin) this.#writer = this.proc.stdin.getWriter();
    void this.#pumpStdout();
    void this.#pumpStderr();
    void this.proc.status.then((s) => {
      this.exited = true;
      this.exitCode = s.code;
      this.#wake();
    });
  }

  async #pumpStdout(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.proc.stdout) {
        this.#stdout += dec.decode(chunk, { stream: true });
        let i;
        while ((i = this.#stdout.indexOf("\n")) >= 0) {
          const line = this.#stdout.slice(0, i).trim();
          this.#stdout = this.#stdout.slice(i + 1);
          if (!line) continue;
          try {
            this.#events.push(JSON.parse(line));
          } catch {
            this.#stderr = (this.#stderr + line + "\n").slice(-8192);
          }
          this.#wake();
        }
      }
    } catch { /* closed */ }
  }

  async #pumpStderr(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.proc.stderr) {
        this.#stderr = (this.#stderr + dec.decode(chunk, { stream: true })).slice(-8192);
      }
    } catch { /* closed */ }
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** What the child wrote on stderr lately (for error messages). */
  get stderrTail(): string {
    return this.#stderr.trim();
  }

  /**
   * The next event named `ev` (earlier other events are dropped). Rejects if
   * the child reports {"ev":"error"}, exits, or `timeoutMs` passes.
   */
  async next(ev: string, timeoutMs: number): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      while (this.#events.length > 0) {
        const e = this.#events.shift()!;
        if (e.ev === ev) return e;
        if (e.ev === "error") throw new Error(`${this.name}: ${e.message}`);
      }
      if (this.exited) {
        throw new Error(
          `${this.name} exited (code ${this.exitCode}) before "${ev}"${this.#tail()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`${this.name}: no "${ev}" within ${timeoutMs} ms${this.#tail()}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves once the child accepts TCP on 127.0.0.1:port; rejects with its stderr if it exits. */
  async listening(port: number, timeoutMs: number): Promise<void> {
    try {
      await waitForPort(port, timeoutMs, () => !this.exited);
    } catch (e) {
      throw new Error(
        `${this.name}: ${errorMessage(e)} (exit code ${this.exitCode})${this.#tail()}`,
      );
    }
  }

  #tail(): string {
    const t = this.stderrTail;
    return t ? `\n--- ${this.name} stderr ---\n${t.split("\n").slice(-15).join("\n")}` : "";
  }

  async send(line: string): Promise<void> {
    if (!this.#writer || this.exited) return;
    try {
      await this.#writer.write(new TextEncoder().encode(line + "\n"));
    } catch { /* it exited */ }
  }

  kill(sig: Deno.Signal): void {
    if (this.exited) return;
    try {
      this.proc.kill(sig);
    } catch { /* gone */ }
  }

  /** Closes stdin (a polite "quit"), then SIGTERM, then SIGKILL; resolves once it exited. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.#writer) {
      try {
        await this.#writer.close();
      } catch { /* closed */ }
      this.#writer = null;
    }
    const done = this.proc.status.then(() => true);
    const timeout = (ms: number) => sleep(ms).then(() => false);
    if (this.exited || await Promise.race([done, timeout(Math.min(500, graceMs))])) return;
    this.kill("SIGTERM");
    if (await Promise.race([done, timeout(graceMs)])) return;
    this.kill("SIGKILL");
    await done;
  }
}

/** CPU seconds a process has used so far: [user, system]; NaN if it is gone. */
export function cpuSplitOf(pid: number): [number, number] {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [Number(f[11]) / CLK_TCK, Number(f[12]) / CLK_TCK];
  } catch {
    return [NaN, NaN];
  }
}

/** CPU seconds (user + system) a process has used so far; NaN if it is gone. */
export function cpuOf(pid: number): number {
  const [u, s] = cpuSplitOf(pid);
  return u + s;
}

/**
 * CPU seconds the whole machine has spent in user and system mode (all CPUs,
 * since boot; interrupt time excluded, as it is from per-process figures).
 */
export function machineCpu(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n", 1)[0].trim().split(/\s+/);
  return (Number(f[1]) + Number(f[2]) + Number(f[3])) / CLK_TCK;
}

/** Resident set size in KiB; NaN if the process is gone. */
export function rssKbOf(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)/m);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
