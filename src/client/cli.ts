/**
 * Interactive ChatOS client, with the authors' client UX:
 *
 *   deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR]
 *
 * A plain line goes to everyone (SMA), `@bob text` to bob (SPM), `/bob path`
 * asks bob for a private connection and fetches that file over it (HTTP/1.0,
 * see file_transfer.ts). When someone asks us, `y` / `n` (or `/accept name`,
 * `/decline name`) answers the oldest pending request.
 */

import { parseArgs } from "node:util";
import * as path from "node:path";
import {
  type AnyTcpFrame,
  EncodeError,
  ErrorCode,
  errorCodeName,
  type Frame,
  Op,
  type TCPAsk,
} from "../protocol/mod.ts";
import { ChatClient, type ClientOptions, describeFrame, PrivateEnd } from "./client.ts";
import { fetchFile, serveFile } from "./file_transfer.ts";

const USAGE = `usage: deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR]

  host         server address (default 127.0.0.1)
  port         server port (default 7777)
  --share      folder others may fetch files from (default: the current directory)
  --downloads  folder fetched files are saved in (default: ./downloads)`;

const HELP = `commands:
  text             send text to everyone
  @bob text        send text to bob only
  /bob path        ask bob for a private connection and fetch that file from his share
  y | n            accept / decline the oldest pending private-connection request
  /accept [name]   accept (the oldest request from name)
  /decline [name]  decline (the oldest request from name)
  //text           send a text that starts with /
  /help            this help
  /quit            leave`;

const LOGIN_TIMEOUT_MS = 5000;
/** B waits this long, after accepting, for A to join the link. */
const LINK_WAIT_MS = 30_000;

function nameOf(code: number): string {
  return errorCodeName[code] ?? `unknown error ${code}`;
}

function keyOf(a: string, b: string, password: number): string {
  return `${a}\u0000${b}\u0000${password}`;
}

function randomPassword(): number {
  return crypto.getRandomValues(new Int16Array(1))[0];
}

/** What an ERROR (or, for a decline, a TCPAbort) from the server answers, in send order. */
type Expectation =
  | { kind: "spm"; to: string }
  | { kind: "sma" }
  | { kind: "ask"; to: string; password: number; file: string; aborted: boolean }
  | { kind: "decline"; ask: TCPAsk };

interface OutgoingAsk {
  to: string;
  password: number;
  file: string;
  accepted: boolean;
}

export interface CliOptions extends ClientOptions {
  pseudo: string;
  shareDir: string;
  downloadsDir: string;
  out?: (line: string) => void;
}

/** The ERROR code a new private end was answered with (1: linked; -1: no ERROR frame came). */
async function linkAnswer(end: PrivateEnd): Promise<number> {
  const answer = await end.answer(LINK_WAIT_MS);
  const last = answer[answer.length - 1];
  return last.op === Op.ERROR ? last.code : -1;
}

export class ChatCli {
  #opts: CliOptions;
  #me: string;
  #client!: ChatClient;
  #out: (line: string) => void;
  #expect: Expectation[] = [];
  #outgoing = new Map<string, OutgoingAsk>();
  #incoming: TCPAsk[] = [];
  #ends = new Set<PrivateEnd>();
  #transfers = new Set<Promise<void>>();
  #quitting = false;
  #expectDrained: Array<() => void> = [];

  constructor(opts: CliOptions) {
    this.#opts = opts;
    this.#me = opts.pseudo;
    this.#out = opts.out ?? ((line) => console.log(line));
  }

  /** Connects and logs in; returns an exit code (0 on success). */
  async login(): Promise<number> {
    const where = `${this.#opts.host ?? "127.0.0.1"}:${this.#opts.port}`;
    try {
      this.#client = await ChatClient.connect(this.#opts);
    } catch (e) {
      console.error(`cannot connect to ${where}: ${e instanceof Error ? e.message : e}`);
      return 1;
    }
    let code: number;
    try {
      code = await this.#client.login(this.#me, LOGIN_TIMEOUT_MS);
    } catch (e) {
      console.error(`login failed: ${e instanceof Error ? e.message : e}`);
      this.#client.close();
      return 1;
    }
    if (code === ErrorCode.OK) {
      this.#out(`connected to ${where} as ${this.#me}. Type /help for commands.`);
      return 0;
    }
    this.#client.close();
    switch (code) {
      case ErrorCode.PseudoUnavailable:
        console.error(
          `login failed: the pseudo "${this.#me}" is already taken (Pseudo Unavailable)`,
        );
        break;
      case ErrorCode.InvalidPseudonym:
        console.error(`login failed: "${this.#me}" is not a valid pseudonym (Invalid Pseudonym)`);
        break;
      case ErrorCode.ServiceUnavailable:
        console.error("login failed: the server cannot take logins now (Service Unavailable)");
        break;
      default:
        console.error(`login failed: ERROR ${code} (${nameOf(code)})`);
    }
    return 1;
  }

  /** Runs until /quit, stdin EOF or the server closing; returns the exit code. */
  async run(input: AsyncIterable<string>): Promise<number> {
    const frames = this.#frameLoop().then(() => "server" as const);
    const lines = this.#inputLoop(input);
    const first = await Promise.race([frames, lines]);
    if (first === "server") {
      if (!this.#quitting) {
        this.#out(`disconnected: ${this.#client.endReason ?? "the server closed the connection"}`);
        this.#shutdown();
        return 1;
      }
      return 0;
    }
    this.#quitting = true;
    if (first === "eof") {
      // Piped input: let the server answer what was sent, and let running
      // transfers finish, before leaving.
      await this.#drainExpectations(2000);
      if (this.#transfers.size > 0) {
        this.#out(`waiting for ${this.#transfers.size} transfer(s) to finish...`);
        await Promise.race([Promise.allSettled([...this.#transfers]), this.#client.closed]);
      }
    }
    this.#shutdown();
    return 0;
  }

  #shutdown(): void {
    this.#quitting = true;
    for (const end of this.#ends) end.close();
    this.#client.close();
  }

  #drainExpectations(ms: number): Promise<void> {
    if (this.#expect.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#expectDrained.push(done);
      this.#client.closed.then(done);
    });
  }

  async #inputLoop(input: AsyncIterable<string>): Promise<"eof" | "quit"> {
    for await (const raw of input) {
      if (this.#client.endReason !== null) break;
      if (this.#command(raw.trim()) === "quit") return "quit";
    }
    return "eof";
  }

  async #frameLoop(): Promise<void> {
    while (true) {
      let f: Frame;
      try {
        f = await this.#client.next(3_600_000);
      } catch {
        if (this.#client.endReason !== null) return;
        continue; // an idle hour: keep waiting
      }
      try {
        this.#onFrame(f);
      } catch (e) {
        this.#out(`(internal error handling ${describeFrame(f)}: ${e})`);
      }
    }
  }

  // ---- input ---------------------------------------------------------------

  #command(line: string): "quit" | void {
    if (line === "") return;
    const lower = line.toLowerCase();
    if (this.#incoming.length > 0 && ["y", "yes", "n", "no"].includes(lower)) {
      const ask = this.#incoming.shift()!;
      if (lower.startsWith("y")) this.#accept(ask);
      else this.#decline(ask);
      return;
    }
    if (line.startsWith("//")) return this.#sendAll(line.slice(1));
    if (line.startsWith("@")) {
      const m = /^@(\S+)\s+(.+)$/s.exec(line);
      if (!m) return this.#out("usage: @name message");
      return this.#sendPrivate(m[1], m[2]);
    }
    if (!line.startsWith("/")) return this.#sendAll(line);
    const [cmd, ...rest] = line.slice(1).split(/\s+/);
    const arg = line.slice(1 + cmd.length).trim();
    switch (cmd) {
      case "quit":
      case "exit":
        return "quit";
      case "help":
        return this.#out(HELP);
      case "accept":
      case "decline": {
        const ask = this.#takeIncoming(rest[0]);
        if (!ask) {
          return this.#out(
            rest[0]
              ? `no pending request from ${rest[0]}`
              : "no pending private-connection request",
          );
        }
        if (cmd === "accept") this.#accept(ask);
        else this.#decline(ask);
        return;
      }
      case "":
        return this.#out("type /help for commands");
      default:
        if (arg === "") return this.#out(`usage: /${cmd} <path>  (fetch a file from ${cmd})`);
        return this.#ask(cmd, arg);
    }
  }

  #takeIncoming(from?: string): TCPAsk | undefined {
    const i = from === undefined ? 0 : this.#incoming.findIndex((a) => a.sender === from);
    if (i < 0 || i >= this.#incoming.length) return undefined;
    return this.#incoming.splice(i, 1)[0];
  }

  #send(frame: Frame, expectation: Expectation): boolean {
    try {
      this.#client.send(frame);
    } catch (e) {
      if (e instanceof EncodeError) {
        this.#out(`not sent: too long (${e.message})`);
        return false;
      }
      throw e;
    }
    this.#expect.push(expectation);
    return true;
  }

  #sendAll(message: string): void {
    this.#send({ op: Op.SMA, sender: this.#me, message }, { kind: "sma" });
  }

  #sendPrivate(to: string, message: string): void {
    this.#send({ op: Op.SPM, sender: this.#me, recipient: to, message }, { kind: "spm", to });
  }

  #ask(to: string, file: string): void {
    let password = randomPassword();
    while (this.#outgoing.has(keyOf(this.#me, to, password))) password = randomPassword();
    const sent = this.#send(
      { op: Op.TCPAsk, sender: this.#me, recipient: to, password },
      { kind: "ask", to, password, file, aborted: false },
    );
    if (sent) {
      this.#outgoing.set(keyOf(this.#me, to, password), { to, password, file, accepted: false });
    }
  }

  #decline(ask: TCPAsk): void {
    this.#send({ ...ask, op: Op.TCPAbort }, { kind: "decline", ask });
  }

  #accept(ask: TCPAsk): void {
    this.#out(`accepting ${ask.sender}'s private connection...`);
    this.#track((async () => {
      let end: PrivateEnd;
      try {
        end = await PrivateEnd.open(this.#opts, { ...ask, op: Op.TCPAccept });
      } catch (e) {
        return this.#out(`cannot open a private connection for ${ask.sender}: ${e}`);
      }
      this.#ends.add(end);
      try {
        const code = await linkAnswer(end);
        if (code !== ErrorCode.OK) {
          return this.#out(
            code === ErrorCode.TcpNotInProtocol
              ? `${ask.sender}'s request is no longer pending`
              : `private connection with ${ask.sender} failed: ${nameOf(code)}`,
          );
        }
        this.#out(`private connection with ${ask.sender} established`);
        const result = await serveFile(end, this.#opts.shareDir);
        if (result.status === 200) {
          this.#out(`sent ${result.target} to ${ask.sender} (${result.bytes} bytes)`);
        } else if (result.status === 0) {
          this.#out(`${ask.sender} closed the private connection without asking for a file`);
        } else {
          this.#out(`${ask.sender} asked for ${result.target}: answered ${result.status}`);
        }
      } catch (e) {
        this.#out(`private connection with ${ask.sender}: ${e instanceof Error ? e.message : e}`);
      } finally {
        end.close();
        this.#ends.delete(end);
      }
    })());
  }

  #connectAndFetch(ask: OutgoingAsk): void {
    this.#track((async () => {
      const to = ask.to;
      let end: PrivateEnd;
      try {
        end = await PrivateEnd.open(this.#opts, {
          op: Op.TCPConnect,
          sender: this.#me,
          recipient: to,
          password: ask.password,
        });
      } catch (e) {
        return this.#out(`cannot open a private connection to ${to}: ${e}`);
      }
      this.#ends.add(end);
      try {
        const code = await linkAnswer(end);
        if (code !== ErrorCode.OK) {
          return this.#out(`private connection to ${to} failed: ${nameOf(code)}`);
        }
        this.#out(`private connection with ${to} established; fetching ${ask.file}...`);
        const result = await fetchFile(end, ask.file, this.#opts.downloadsDir);
        if (result.ok) {
          this.#out(`saved ${ask.file} from ${to} to ${result.savedTo} (${result.bytes} bytes)`);
        } else {
          this.#out(
            `${to} could not send ${ask.file}: ${result.status} ${result.reason}`.trimEnd(),
          );
        }
      } catch (e) {
        this.#out(`fetching ${ask.file} from ${to} failed: ${e instanceof Error ? e.message : e}`);
      } finally {
        end.close();
        this.#ends.delete(end);
        this.#outgoing.delete(keyOf(this.#me, to, ask.password));
      }
    })());
  }

  #track(p: Promise<void>): void {
    const t = p.catch(() => {}).finally(() => this.#transfers.delete(t));
    this.#transfers.add(t);
  }

  // ---- frames from the server ----------------------------------------------

  #onFrame(f: Frame): void {
    switch (f.op) {
      case Op.SPM:
        return this.#out(
          `[${f.sender} → ${f.recipient === this.#me ? "you" : f.recipient}] ${f.message}`,
        );
      case Op.SMA:
        return this.#out(`[${f.sender}] ${f.message}`);
      case Op.TCPAsk:
        if (f.recipient !== this.#me) return;
        this.#incoming.push(f);
        this.#out(
          `${f.sender} asks for a private connection: answer y or n` +
            (this.#incoming.length > 1
              ? ` (${this.#incoming.length} requests pending; y/n answers the oldest)`
              : ""),
        );
        return;
      case Op.TCPAccept: {
        if (f.sender !== this.#me) return;
        const ask = this.#outgoing.get(keyOf(f.sender, f.recipient, f.password));
        if (!ask || ask.accepted) return;
        ask.accepted = true;
        this.#out(`${f.recipient} accepted the private connection`);
        return this.#connectAndFetch(ask);
      }
      case Op.TCPAbort:
        return this.#onAbort(f);
      case Op.ERROR:
        return this.#onError(f.code);
      default:
        return this.#out(`(unexpected from the server: ${describeFrame(f)})`);
    }
  }

  #onAbort(f: AnyTcpFrame): void {
    const key = keyOf(f.sender, f.recipient, f.password);
    if (f.sender === this.#me) {
      // Our ask. If its ERROR is still to come, that ERROR says why.
      const pending = this.#expect.find((e) =>
        e.kind === "ask" && e.to === f.recipient && e.password === f.password
      );
      if (pending && pending.kind === "ask") {
        pending.aborted = true;
        return;
      }
      const ask = this.#outgoing.get(key);
      if (!ask) return; // already reported
      this.#outgoing.delete(key);
      this.#out(
        ask.accepted
          ? `private connection with ${f.recipient} aborted`
          : `${f.recipient} declined the private connection (or the request expired)`,
      );
      return;
    }
    if (f.recipient === this.#me) {
      const i = this.#expect.findIndex((e) =>
        e.kind === "decline" && keyOf(e.ask.sender, e.ask.recipient, e.ask.password) === key
      );
      if (i >= 0) {
        this.#expect.splice(i, 1);
        this.#notifyDrained();
        return this.#out(`declined ${f.sender}'s private connection`);
      }
      const j = this.#incoming.findIndex((a) => keyOf(a.sender, a.recipient, a.password) === key);
      if (j >= 0) {
        this.#incoming.splice(j, 1);
        this.#out(`${f.sender}'s private-connection request was withdrawn`);
      }
    }
  }

  #onError(code: number): void {
    const e = this.#expect.shift();
    this.#notifyDrained();
    const name = nameOf(code);
    if (!e) {
      if (code !== ErrorCode.OK) this.#out(`server: ERROR ${code} (${name})`);
      return;
    }
    switch (e.kind) {
      case "sma":
        if (code !== ErrorCode.OK) this.#out(`message to all not delivered: ${name}`);
        return;
      case "spm":
        if (code === ErrorCode.OK) return;
        return this.#out(
          code === ErrorCode.UnreachableUser
            ? `${e.to} is not connected`
            : `message to ${e.to} not delivered: ${name}`,
        );
      case "ask": {
        if (code === ErrorCode.OK && !e.aborted) {
          return this.#out(`asked ${e.to} for a private connection to fetch ${e.file}`);
        }
        this.#outgoing.delete(keyOf(this.#me, e.to, e.password));
        if (code === ErrorCode.OK) return this.#out(`private connection with ${e.to} aborted`);
        return this.#out(
          code === ErrorCode.UnreachableUser
            ? `${e.to} is not connected`
            : code === ErrorCode.TcpInProtocol
            ? `a private connection with ${e.to} is already being set up`
            : `private connection request to ${e.to} refused: ${name}`,
        );
      }
      case "decline":
        return this.#out(
          code === ErrorCode.TcpNotInProtocol
            ? `${e.ask.sender}'s request is no longer pending`
            : `could not decline ${e.ask.sender}'s request: ${name}`,
        );
    }
  }

  #notifyDrained(): void {
    if (this.#expect.length > 0) return;
    const waiters = this.#expectDrained;
    this.#expectDrained = [];
    for (const w of waiters) w();
  }
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

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        share: { type: "string" },
        downloads: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(`${USAGE}\n\n${HELP}`);
    return 0;
  }
  if (positionals.length < 1 || positionals.length > 3) {
    console.error(USAGE);
    return 2;
  }
  const [pseudo, host = "127.0.0.1", portText = "7777"] = positionals;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    console.error(`invalid port ${JSON.stringify(portText)}\n${USAGE}`);
    return 2;
  }
  const shareDir = path.resolve(values.share ?? ".");
  try {
    if (!(await Deno.stat(shareDir)).isDirectory) throw new Error("not a directory");
  } catch (e) {
    console.error(`cannot share ${shareDir}: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
  const cli = new ChatCli({
    pseudo,
    host,
    port,
    shareDir,
    downloadsDir: path.resolve(values.downloads ?? "downloads"),
  });
  const code = await cli.login();
  if (code !== 0) return code;
  return await cli.run(readLines(Deno.stdin.readable));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
