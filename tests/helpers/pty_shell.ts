/**
 * An interactive bash on a pseudo-terminal (`script`), typed into as a user
 * would: commands run as foreground jobs with job control, so Ctrl-C (a ^C
 * byte the terminal turns into SIGINT) reaches their whole process group, as
 * it does from a real terminal.
 */
import { withDeadline } from "../../src/lib/async.ts";
import { Wakeup } from "./wakeup.ts";

const enc = new TextEncoder();
/** The shell's prompt: unlike anything a command prints. */
const PROMPT = "pty-shell$ ";
// deno-lint-ignore no-control-regex
const CSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export class PtyShell {
  #proc: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #text = "";
  /** Where the next `waitFor` starts looking. */
  #from = 0;
  #wakeup = new Wakeup();
  #reading: Promise<void>;

  #rcfile: string;

  constructor(opts: { cwd: string; env?: Record<string, string> }) {
    // bash sets its own prompt over an inherited PS1; bracketed paste would wrap every echo.
    this.#rcfile = Deno.makeTempFileSync({ prefix: "chatos-pty-bashrc-" });
    Deno.writeTextFileSync(
      this.#rcfile,
      `PS1='${PROMPT}'\nbind 'set enable-bracketed-paste off'\n`,
    );
    const bash = `bash --noprofile --rcfile ${this.#rcfile} -i`;
    const proc = new Deno.Command("script", {
      args: ["-qfec", `stty cols 400 rows 50; exec ${bash}`, "/dev/null"],
      cwd: opts.cwd,
      env: { TERM: "dumb", ...opts.env },
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

  /**
   * Waits for the prompt, types `command`, and returns what the terminal
   * showed until the next prompt: its output lines, without the echo.
   */
  async run(command: string, ms = 30_000): Promise<string[]> {
    await this.waitFor(/pty-shell\$ $/, ms);
    const start = this.#from;
    await this.type(command);
    const m = await this.waitFor(/\r?\npty-shell\$ /, ms);
    this.#from -= m[0].length; // the next run waits for this prompt
    // As a reader sees it: without carriage returns and cursor and clearing sequences.
    const shown = this.#text.slice(start, this.#from).replaceAll("\r", "").replace(CSI, "");
    return shown.split("\n").slice(1);
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
    await Deno.remove(this.#rcfile).catch(() => {});
  }
}
