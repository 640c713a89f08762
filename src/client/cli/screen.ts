/**
 * Where the CLI reads typed lines and prints. Piped (stdout not a terminal):
 * plain lines in, plain lines out. On a terminal: a chat screen on
 * `node:readline`: a prompt and an input line that survive incoming lines
 * (each is printed above it, then the input is redrawn), history, line
 * editing, timestamps, and colours unless NO_COLOR is set; Tab completes names
 * and commands, and a private message rings the bell (unless --no-bell).
 *
 * Pastes bypass readline's per-key handling (quadratic on long lines): a
 * chunk of plain text goes into the input line in one step, and each
 * complete pasted line is taken as typed.
 */

import * as readline from "node:readline";
import process from "node:process";
import { PassThrough } from "node:stream";
import type { Line, Style } from "./view.ts";

export interface Screen {
  /** Typed lines, until end of input (EOF, Ctrl-D, Ctrl-C). */
  readonly lines: AsyncIterable<string>;
  show(line: Line): void;
  close(): void;
}

/** Lines of a byte stream (UTF-8, "\n" or "\r\n"); the last line may lack its newline. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i).replace(/\r$/, "");
      buf = buf.slice(i + 1);
    }
  }
  buf += decoder.decode();
  if (buf !== "") yield buf;
}

export class PlainScreen implements Screen {
  readonly lines: AsyncIterable<string>;
  #write: (text: string) => void;

  constructor(input: ReadableStream<Uint8Array>, write: (text: string) => void) {
    this.lines = readLines(input);
    this.#write = write;
  }

  show(line: Line): void {
    this.#write(line.text);
  }

  close(): void {}
}

/** A queue of typed lines read as an async iterable; `end()` finishes it. */
class LineQueue implements AsyncIterable<string> {
  #items: string[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  push(line: string): void {
    this.#items.push(line);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    while (true) {
      const next = this.#items.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }
}

const COLOURS: Record<Style, string> = {
  own: "36", // cyan
  public: "",
  private: "1;35", // bold magenta: a message to you stands out
  system: "2", // dim
  error: "31", // red
  question: "1;33", // bold yellow
};

/** A pasted chunk: long, with no escape sequence or control key in it. */
// deno-lint-ignore no-control-regex
const PASTE = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]{64,}$/s;

/** The part of readline this screen drives; `line` and `cursor` are documented read-only. */
interface Editor {
  line: string;
  cursor: number;
}

export interface TtyOptions {
  /** Colours (off with NO_COLOR). */
  colour: boolean;
  /** Ring the terminal's bell when a private message arrives (off with --no-bell). */
  bell: boolean;
  /** Tab completion: candidates for the last word of the line so far, and that word. */
  complete?: (line: string) => [string[], string];
}

export class TtyScreen implements Screen {
  readonly lines: LineQueue = new LineQueue();
  #rl: readline.Interface;
  #colour: boolean;
  #bell: boolean;
  #out = process.stdout;
  #feed = new PassThrough();
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #closed = false;

  constructor(opts: TtyOptions) {
    this.#colour = opts.colour;
    this.#bell = opts.bell;
    Deno.stdin.setRaw(true);
    this.#rl = readline.createInterface({
      input: this.#feed,
      output: this.#out,
      terminal: true,
      historySize: 500,
      prompt: "> ",
      completer: opts.complete,
    });
    this.#rl.on("line", (line) => {
      this.#eraseTyped(line);
      this.lines.push(line);
      this.#rl.prompt();
    });
    this.#rl.on("SIGINT", () => this.lines.end());
    this.#rl.on("close", () => this.lines.end());
    this.#reader = Deno.stdin.readable.getReader();
    void this.#pump();
    this.#rl.prompt();
  }

  show(line: Line): void {
    if (this.#closed) return;
    const { rows } = this.#rl.getCursorPos();
    // Up to the prompt's first row, clear to the end of the screen, print,
    // and redraw the prompt with what was being typed.
    const bell = this.#bell && line.style === "private" ? "\x07" : "";
    this.#out.write(`${rows > 0 ? `\x1b[${rows}A` : ""}\r\x1b[J${this.#format(line)}\n${bell}`);
    this.#rl.prompt(true);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.write("\r\x1b[J");
    this.#rl.close();
    this.#reader.cancel().catch(() => {});
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // stdin already gone
    }
  }

  #format(line: Line): string {
    const now = new Date();
    const hhmm = `${String(now.getHours()).padStart(2, "0")}:${
      String(now.getMinutes()).padStart(2, "0")
    }`;
    const code = COLOURS[line.style];
    if (!this.#colour) return `${hhmm} ${line.text}`;
    const body = code ? `\x1b[${code}m${line.text}\x1b[0m` : line.text;
    return `\x1b[2m${hhmm}\x1b[0m ${body}`;
  }

  /** Readline leaves the submitted line on screen; the app prints how it reads instead. */
  #eraseTyped(line: string): void {
    const cols = this.#out.columns || 80;
    const rows = Math.floor((2 + line.length) / cols) + 1;
    this.#out.write(`\x1b[${rows}A\r\x1b[J`);
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        const text = decoder.decode(value, { stream: true });
        if (PASTE.test(text)) this.#paste(text);
        else this.#feed.write(text);
      }
    } catch {
      // stdin closed under us: end of input
    }
    this.lines.end();
  }

  #paste(text: string): void {
    const ed = this.#rl as unknown as Editor;
    const parts = text.split(/\r\n|\r|\n/);
    for (let i = 0; i < parts.length - 1; i++) {
      const line = ed.line.slice(0, ed.cursor) + parts[i] + ed.line.slice(ed.cursor);
      ed.line = "";
      ed.cursor = 0;
      this.lines.push(line);
    }
    const last = parts[parts.length - 1];
    ed.line = ed.line.slice(0, ed.cursor) + last + ed.line.slice(ed.cursor);
    ed.cursor += last.length;
    this.#rl.prompt(true);
  }
}
