/**
 * An interactive bash on a pseudo-terminal (`script`), typed into as a user
 * would: commands run as foreground jobs with job control, so Ctrl-C (a ^C
 * byte the terminal turns into SIGINT) reaches their whole process group, as
 * it does from a real terminal.
 */
import { withDeadline } from "../../src/lib/async.ts";
import { Wakeup } from "./wakeup.ts";

const enc = new TextEncoder();

export class PtyShell {
  #proc: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #text = "";
  /** Where the next `waitFor` starts looking. */
  #from = 0;
  #wakeup = new Wakeup();
  #reading: Promise<void>;

  constructor(opts: { cwd: string; env?: Record<string, string> }) {
    const proc = new Deno.Command("script", {
      args: ["-qfec", "bash --norc --noprofile -i", "/dev/null"],
      cwd: opts.cwd,
      env: { PS1: "$ ", TERM: "dumb", ...opts.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#proc = proc;
    this.#stdin = proc.stdin.getWriter();
    this.#reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout) {
        this.#text += decoder.decode(chunk, { stream: true });
        this.#wakeup.wake();
      }
    })();
  }

  /** Everything the terminal showed so far. */
  get text(): string {
    return this.#text;
  }

  /** Types `line` and Enter. */
  async type(line: string): Promise<void> {
    await this.#stdin.write(enc.encode(line + "\r"));
  }

  /** Presses Ctrl-C once. */
  async ctrlC(): Promise<void> {
    await this.#stdin.write(enc.encode("\x03"));
  }

  /** Waits for `re` in what the terminal shows after the last match; fails naming it after `ms`. */
  async waitFor(re: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    while (true) {
      const m = re.exec(this.#text.slice(this.#from));
      if (m) {
        this.#from += m.index + m[0].length;
        return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${re} on the terminal within ${ms} ms; it shows:\n${this.#text}`);
      }
      await this.#wakeup.wait(left);
    }
  }

  /** Ends the shell; if it will not go, kills it (the terminal's hangup then ends its jobs). */
  async close(): Promise<void> {
    await this.type("exit").catch(() => {});
    await this.#stdin.close().catch(() => {});
    await withDeadline(this.#proc.status, 5000, () => new Error("shell still running"))
      .catch(() => this.#proc.kill("SIGKILL"));
    await this.#proc.status;
    await this.#reading;
  }
}
