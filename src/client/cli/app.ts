/**
 * The interactive client: reads typed lines, turns them into commands, sends
 * them through `Requests`, and prints what the server's frames mean. File
 * requests run over private links (file_transfer.ts) in the background.
 */

import { ErrorCode, type Frame, Op, type TCPAsk } from "../../protocol/mod.ts";
import { errorMessage } from "../../lib/errors.ts";
import { ChatClient, type ClientOptions, describeFrame } from "../client.ts";
import { fetchFile, serveFile } from "../file_transfer.ts";
import { type LinkResult, openLink } from "../private_link.ts";
import { type OutgoingAsk, Requests, type SendResult } from "../requests.ts";
import { type Command, parseCommand } from "./commands.ts";
import { codeName, eventLine, HELP, loginFailedLine } from "./view.ts";

const LOGIN_TIMEOUT_MS = 5000;

export interface CliOptions extends ClientOptions {
  pseudo: string;
  shareDir: string;
  downloadsDir: string;
  /** Where chat lines go (default: stdout). */
  out?: (line: string) => void;
  /** Where failures to start go (default: stderr). */
  err?: (line: string) => void;
}

export class ChatCli {
  #opts: CliOptions;
  #me: string;
  #client!: ChatClient;
  #requests!: Requests;
  #out: (line: string) => void;
  #err: (line: string) => void;
  #transfers = new Set<Promise<void>>();
  #ends = new Set<{ close(): void }>();
  #quitting = false;

  constructor(opts: CliOptions) {
    this.#opts = opts;
    this.#me = opts.pseudo;
    this.#out = opts.out ?? ((line) => console.log(line));
    this.#err = opts.err ?? ((line) => console.error(line));
  }

  /** Connects and logs in; returns an exit code (0 on success). */
  async login(): Promise<number> {
    const where = `${this.#opts.host ?? "127.0.0.1"}:${this.#opts.port}`;
    try {
      this.#client = await ChatClient.connect(this.#opts);
    } catch (e) {
      this.#err(`cannot connect to ${where}: ${errorMessage(e)}`);
      return 1;
    }
    let code: number;
    try {
      code = await this.#client.login(this.#me, LOGIN_TIMEOUT_MS);
    } catch (e) {
      this.#err(`login failed: ${errorMessage(e)}`);
      this.#client.close();
      return 1;
    }
    if (code !== ErrorCode.OK) {
      this.#client.close();
      this.#err(loginFailedLine(this.#me, code));
      return 1;
    }
    this.#requests = new Requests(this.#client, this.#me);
    this.#out(`connected to ${where} as ${this.#me}. Type /help for commands.`);
    return 0;
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
      await this.#requests.drained(2000);
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

  async #inputLoop(input: AsyncIterable<string>): Promise<"eof" | "quit"> {
    for await (const raw of input) {
      if (this.#client.endReason !== null) break;
      const cmd = parseCommand(raw, { pending: this.#requests.incomingCount });
      if (this.#run(cmd) === "quit") return "quit";
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

  #run(cmd: Command): "quit" | void {
    switch (cmd.kind) {
      case "nothing":
        return;
      case "quit":
        return "quit";
      case "help":
        return this.#out(HELP);
      case "invalid":
        return this.#out(cmd.message);
      case "say":
        return this.#report(this.#requests.sendAll(cmd.text));
      case "tell":
        return this.#report(this.#requests.sendPrivate(cmd.to, cmd.text));
      case "get":
        return this.#report(this.#requests.ask(cmd.from, cmd.path));
      case "answer": {
        const ask = this.#requests.takeIncoming(cmd.from);
        if (!ask) {
          return this.#out(
            cmd.from
              ? `no pending request from ${cmd.from}`
              : "no pending private-connection request",
          );
        }
        if (cmd.accept) return this.#accept(ask);
        return this.#report(this.#requests.decline(ask));
      }
    }
  }

  #report(sent: SendResult): void {
    if (!sent.ok) this.#out(`not sent: ${sent.reason}`);
  }

  #onFrame(f: Frame): void {
    const event = this.#requests.handle(f);
    if (event === null) return;
    const line = eventLine(event, this.#me);
    if (line !== null) this.#out(line);
    if (event.kind === "accepted") this.#connectAndFetch(event.ask);
  }

  #linkFailed(r: Exclude<LinkResult, { ok: true }>, who: string, refused: string): string {
    if (r.code === null) {
      return r.stage === "open"
        ? `cannot open a private connection ${who}: ${r.error}`
        : `private connection ${who}: ${r.error}`;
    }
    return refused;
  }

  #accept(ask: TCPAsk): void {
    this.#out(`accepting ${ask.sender}'s private connection...`);
    this.#track(async () => {
      const r = await openLink(this.#opts, { ...ask, op: Op.TCPAccept });
      if (!r.ok) {
        return this.#out(this.#linkFailed(
          r,
          `for ${ask.sender}`,
          r.code === ErrorCode.TcpNotInProtocol
            ? `${ask.sender}'s request is no longer pending`
            : `private connection with ${ask.sender} failed: ${codeName(r.code ?? -1)}`,
        ));
      }
      this.#out(`private connection with ${ask.sender} established`);
      const result = await this.#using(r.end, () => serveFile(r.end, this.#opts.shareDir));
      if (result.status === 200) {
        this.#out(`sent ${result.target} to ${ask.sender} (${result.bytes} bytes)`);
      } else if (result.status === 0) {
        this.#out(`${ask.sender} closed the private connection without asking for a file`);
      } else {
        this.#out(`${ask.sender} asked for ${result.target}: answered ${result.status}`);
      }
    }, (e) => `private connection with ${ask.sender}: ${e}`);
  }

  #connectAndFetch(ask: OutgoingAsk): void {
    const to = ask.to;
    this.#track(async () => {
      try {
        const r = await openLink(this.#opts, {
          op: Op.TCPConnect,
          sender: this.#me,
          recipient: to,
          password: ask.password,
        });
        if (!r.ok) {
          return this.#out(this.#linkFailed(
            r,
            `to ${to}`,
            `private connection to ${to} failed: ${codeName(r.code ?? -1)}`,
          ));
        }
        this.#out(`private connection with ${to} established; fetching ${ask.file}...`);
        const result = await this.#using(
          r.end,
          () => fetchFile(r.end, ask.file, this.#opts.downloadsDir),
        );
        if (result.ok) {
          this.#out(`saved ${ask.file} from ${to} to ${result.savedTo} (${result.bytes} bytes)`);
        } else {
          this.#out(
            `${to} could not send ${ask.file}: ${result.status} ${result.reason}`.trimEnd(),
          );
        }
      } finally {
        this.#requests.finished(ask);
      }
    }, (e) => `fetching ${ask.file} from ${to} failed: ${e}`);
  }

  /** Runs `fn` with `end` registered for closing on shutdown; closes it after. */
  async #using<T>(end: { close(): void }, fn: () => Promise<T>): Promise<T> {
    this.#ends.add(end);
    try {
      return await fn();
    } finally {
      end.close();
      this.#ends.delete(end);
    }
  }

  #track(job: () => Promise<void>, failed: (message: string) => string): void {
    const t = job()
      .catch((e) => this.#out(failed(errorMessage(e))))
      .finally(() => this.#transfers.delete(t));
    this.#transfers.add(t);
  }
}
