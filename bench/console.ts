/**
 * Progress (one rewritten line on a terminal) and notes, on stderr: what the orchestrator and the
 * harness print while a run goes. A module of its own so the harness needs nothing of report.ts,
 * which reads measure.ts's results, which drive the harness: no import cycle.
 */
export class Console {
  readonly #t0 = performance.now();
  readonly #tty = Deno.stderr.isTerminal();
  readonly #te = new TextEncoder();

  get seconds(): number {
    return Math.round((performance.now() - this.#t0) / 1000);
  }

  progress(msg: string): void {
    const s = this.seconds;
    const mm = String(Math.floor(s / 60)).padStart(2, "0");
    const line = `[${mm}:${String(s % 60).padStart(2, "0")}] ${msg}`;
    Deno.stderr.writeSync(this.#te.encode(this.#tty ? `\r\x1b[K${line}` : `${line}\n`));
  }

  note(msg: string): void {
    Deno.stderr.writeSync(this.#te.encode(`${this.#tty ? "\r\x1b[K" : ""}${msg}\n`));
  }
}
