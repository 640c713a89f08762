/**
 * The interactive client: reads typed lines, turns them into commands, sends
 * them through `Requests`, and shows what the server's frames mean. Files
 * travel over private links in the background (transfers.ts). When the
 * connection drops, it logs in again with the same pseudo, with backoff,
 * and says so.
 */

import { ErrorCode, type Frame, Op } from "../../protocol/mod.ts";
import { sleep } from "../../lib/async.ts";
import { errorMessage } from "../../lib/errors.ts";
import { ChatClient, type ClientOptions, describeFrame } from "../client.ts";
import { Requests, type SendResult } from "../requests.ts";
import { type Command, parseCommand } from "./commands.ts";
import { SeenNames } from "./names.ts";
import { Questions } from "./questions.ts";
import type { Screen } from "./screen.ts";
import { QUESTION_MS, Transfers } from "./transfers.ts";
import {
  error,
  eventLine,
  HELP,
  type Line,
  loginFailedLine,
  noLoginAnswer,
  ownLine,
  system,
  v,
} from "./view.ts";

const LOGIN_TIMEOUT_MS = 5000;
/** The lowest --max-string-bytes a server accepts: shorter messages are never over its limit. */
const MIN_SERVER_LIMIT = 64;
/** The authors' server took 1024 bytes at most: the first guess after a drop on a longer line. */
const GUESSED_LIMIT = 1024;
/** The longest wait between tries while the pseudo is taken. */
const TAKEN_RETRY_MS = 2000;

export interface CliOptions extends ClientOptions {
  pseudo: string;
  /** The shared folder; null shares nothing. */
  shareDir: string | null;
  downloadsDir: string;
  /** The longest STRING the server takes. */
  maxBytes: number;
  screen: Screen;
  /** Names seen, for Tab completion (default: kept but unused). */
  names?: SeenNames;
  /** Where a failure to start goes (default: stderr). */
  err?: (line: string) => void;
  /** Reconnect backoff: first and longest wait (default 500 ms, 15 s). */
  backoffMs?: [number, number];
  /**
   * How long to keep trying while the pseudo is taken (default 8 s: a dead
   * cluster node's users are free again after its 3 s lease).
   */
  takenForMs?: number;
}

interface Connection {
  client: ChatClient;
  requests: Requests;
}

type Attempt =
  | { ok: true; conn: Connection }
  /** `unreached`: no TCP connection at all (the reconnect loop's retry says what to do). */
  | { ok: false; code: number | null; why: string; unreached?: boolean };

export class ChatCli {
  #o: CliOptions;
  #me: string;
  #where: string;
  #conn: Connection | null = null;
  #screen: Screen;
  #questions = new Questions(QUESTION_MS);
  #names: SeenNames;
  #transfers: Transfers;
  #quitting = false;
  /** The longest message the server takes, as far as we know (lowered by what we learn). */
  #maxBytes: number;
  #largestAccepted = 0;

  constructor(opts: CliOptions) {
    this.#o = opts;
    this.#me = opts.pseudo;
    this.#where = `${opts.host ?? "127.0.0.1"}:${opts.port}`;
    this.#screen = opts.screen;
    this.#names = opts.names ?? new SeenNames(opts.pseudo);
    this.#maxBytes = opts.maxBytes;
    this.#transfers = new Transfers({
      server: { host: opts.host, port: opts.port },
      me: opts.pseudo,
      shareDir: opts.shareDir,
      downloadsDir: opts.downloadsDir,
      questions: this.#questions,
      show: (line) => this.#show(line),
    });
  }

  /** Connects and logs in; returns an exit code (0 on success). */
  async login(): Promise<number> {
    const a = await this.#connect();
    if (!a.ok) {
      this.#screen.close();
      const check = ". Is a ChatOS server running there? Check the host and port " +
        "(deno task client NAME HOST PORT)";
      (this.#o.err ?? console.error)(a.why + (a.unreached ? check : ""));
      return 1;
    }
    this.#conn = a.conn;
    this.#show(system(
      `connected to ${this.#where} as ${v(this.#me)}. ` +
        (this.#o.shareDir === null
          ? "Sharing nothing. "
          : `Sharing ${v(this.#o.shareDir)} (you confirm each file). `) +
        "Type /help for commands.",
    ));
    return 0;
  }

  /** Runs until /quit or end of input; returns the exit code. */
  async run(): Promise<number> {
    const input = this.#inputLoop();
    while (true) {
      const conn = this.#conn!;
      const first = await Promise.race([
        this.#frameLoop(conn).then(() => "server" as const),
        input,
      ]);
      if (first === "server") {
        if (this.#quitting) break;
        this.#conn = null;
        this.#show(error(`disconnected: ${conn.client.endReason}; reconnecting...`));
        // Their private connections went with the server: a later y must not answer them.
        this.#questions.cancelAll();
        this.#learnLimit(conn.requests);
        const back = await this.#reconnect(input);
        if (back === "gave-up") {
          this.#leave();
          return 1;
        }
        if (back !== "ok") break;
        continue;
      }
      this.#quitting = true;
      if (first === "eof") {
        // Piped input: let the server answer what was sent, and running
        // transfers finish, before leaving. Nobody is left to answer questions.
        await conn.requests.drained(2000);
        this.#questions.declineAll();
        if (this.#transfers.running > 0) {
          this.#show(system(`waiting for ${this.#transfers.running} transfer(s) to finish...`));
          await Promise.race([this.#transfers.settled(), conn.client.closed]);
        }
      }
      break;
    }
    this.#leave();
    return 0;
  }

  #leave(): void {
    this.#quitting = true;
    this.#questions.declineAll();
    this.#transfers.closeAll();
    this.#conn?.client.close();
    this.#screen.close();
  }

  #show(line: Line): void {
    this.#screen.show(line);
  }

  async #connect(): Promise<Attempt> {
    let client: ChatClient;
    try {
      client = await ChatClient.connect(this.#o);
    } catch (e) {
      const why = `cannot connect to ${this.#where}: ${errorMessage(e)}`;
      return { ok: false, code: null, why, unreached: true };
    }
    let answer: Frame;
    try {
      client.send({ op: Op.CR, pseudo: this.#me });
      answer = await client.next(LOGIN_TIMEOUT_MS);
    } catch {
      // No frame: the connection ended (endKind says how), or nothing came in time.
      const why = noLoginAnswer(this.#where, client.endKind, LOGIN_TIMEOUT_MS);
      client.close();
      return { ok: false, code: null, why };
    }
    if (answer.op !== Op.ERROR) {
      client.close();
      return { ok: false, code: null, why: noLoginAnswer(this.#where, "malformed", 0) };
    }
    const code = answer.code;
    if (code !== ErrorCode.OK) {
      client.close();
      return { ok: false, code, why: loginFailedLine(this.#me, code) };
    }
    return {
      ok: true,
      conn: { client, requests: new Requests(client, this.#me, this.#maxBytes) },
    };
  }

  /**
   * A server closes the connection, without an answer, on a STRING over its
   * --max-string-bytes. If a message longer than any it answered was
   * pending when it closed, say so and refuse such lines here from now on.
   */
  #learnLimit(requests: Requests): void {
    this.#largestAccepted = Math.max(this.#largestAccepted, requests.largestAccepted);
    const n = requests.largestUnanswered();
    if (n <= MIN_SERVER_LIMIT || n <= this.#largestAccepted) return;
    const limit = Math.max(this.#largestAccepted, Math.min(n - 1, GUESSED_LIMIT));
    if (limit >= this.#maxBytes) return;
    this.#maxBytes = limit;
    this.#show(error(
      `your ${n}-byte message was not delivered: the server closed the connection without ` +
        `answering it, so it probably takes fewer bytes. Lines over ${limit} bytes are now ` +
        "refused here (--max-bytes N sets the limit).",
    ));
  }

  /** Logs in again until it works, the user leaves, or the pseudo stays taken. */
  async #reconnect(input: Promise<"eof" | "quit">): Promise<"ok" | "eof" | "quit" | "gave-up"> {
    const [first, longest] = this.#o.backoffMs ?? [500, 15_000];
    const takenForMs = this.#o.takenForMs ?? 8000;
    let delay = first;
    let takenSince: number | null = null;
    while (true) {
      const woke = await Promise.race([sleep(delay).then(() => "tick" as const), input]);
      if (woke !== "tick") return woke;
      const a = await this.#connect();
      if (a.ok) {
        this.#conn = a.conn;
        this.#show(system(`reconnected to ${this.#where}, logged in again as ${v(this.#me)}`));
        return "ok";
      }
      const taken = a.code === ErrorCode.PseudoUnavailable;
      // While only the pseudo is in the way, try often: it frees up within seconds or not at all.
      delay = Math.min(delay * 2, taken ? TAKEN_RETRY_MS : longest);
      const wait = `retrying in ${(delay / 1000).toFixed(1)} s`;
      if (taken) {
        takenSince ??= Date.now();
        if (Date.now() - takenSince >= takenForMs) {
          this.#show(error(
            `${v(this.#me)} was taken by someone else while you were away; giving up ` +
              "(start again with another pseudo)",
          ));
          return "gave-up";
        }
        this.#show(system(
          `${v(this.#me)} is still taken (your old session may not have expired yet); ${wait}`,
        ));
      } else if (a.code !== null && a.code !== ErrorCode.ServiceUnavailable) {
        this.#show(error(`${a.why}; giving up`));
        return "gave-up";
      } else {
        this.#show(system(`${a.why}; ${wait}`));
      }
    }
  }

  async #inputLoop(): Promise<"eof" | "quit"> {
    for await (const raw of this.#screen.lines) {
      const cmd = parseCommand(raw, { pending: this.#questions.size });
      if (this.#run(cmd) === "quit") return "quit";
    }
    return "eof";
  }

  /** Resolves when `conn` ends. */
  async #frameLoop(conn: Connection): Promise<void> {
    while (true) {
      let f: Frame;
      try {
        f = await conn.client.next(3_600_000);
      } catch {
        if (conn.client.endReason !== null) return;
        continue; // an idle hour: keep waiting
      }
      try {
        this.#onFrame(conn, f);
      } catch (e) {
        this.#show(error(`(internal error handling ${v(describeFrame(f))}: ${e})`));
      }
    }
  }

  #onFrame(conn: Connection, f: Frame): void {
    const event = conn.requests.handle(f);
    if (event === null) return;
    if (event.kind === "public" || event.kind === "private") this.#names.add(event.from);
    if (event.kind === "asked") this.#names.add(event.ask.sender);
    const line = eventLine(event, this.#me);
    if (line !== null) this.#show(line);
    if (event.kind === "asked") {
      conn.requests.takeIncoming(event.ask.sender);
      this.#transfers.serve(event.ask, conn.requests);
    }
    if (event.kind === "accepted") this.#transfers.fetch(event.ask, conn.requests);
  }

  #run(cmd: Command): "quit" | void {
    switch (cmd.kind) {
      case "nothing":
        return;
      case "quit":
        return "quit";
      case "help":
        return this.#show(system(HELP));
      case "invalid":
        return this.#show(error(cmd.message));
      case "answer":
        if (!this.#questions.answer(cmd.accept, cmd.from)) {
          this.#show(error(
            cmd.from ? `no question from ${v(cmd.from)} is waiting` : "nothing to answer",
          ));
        }
        return;
    }
    if (cmd.kind === "tell") this.#names.add(cmd.to);
    if (cmd.kind === "get") this.#names.add(cmd.from);
    const conn = this.#conn;
    if (conn === null) return this.#show(error("not sent: not connected (reconnecting...)"));
    switch (cmd.kind) {
      case "say":
        return this.#sent(conn.requests.sendAll(cmd.text), ownLine(v(cmd.text)));
      case "tell":
        return this.#sent(
          conn.requests.sendPrivate(cmd.to, cmd.text),
          ownLine(v(cmd.text), cmd.to),
        );
      case "get":
        return this.#sent(conn.requests.ask(cmd.from, cmd.path), null);
    }
  }

  #sent(r: SendResult, echo: Line | null): void {
    if (!r.ok) return this.#show(error(`not sent: ${r.reason}`));
    if (echo) this.#show(echo);
  }
}
