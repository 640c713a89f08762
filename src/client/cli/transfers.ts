/**
 * Files over private links, both ways, in the background.
 *
 * B (someone asks us): nothing is shared without `--share DIR`, so without
 * it the ask is declined at once. With it, the link is accepted, the peer's
 * GET read, and the user asked with the file's name and size in front of
 * them before a byte is sent (share.ts decides what may be served at all).
 *
 * A (we asked, the peer accepted): join the link and fetch the file into the
 * downloads folder, waiting as long as the peer may take to decide.
 */

import { ErrorCode, Op, type TCPAsk } from "../../protocol/mod.ts";
import { errorMessage } from "../../lib/errors.ts";
import type { ClientOptions } from "../client.ts";
import { fetchFile, serveFile } from "../file_transfer.ts";
import { openLink } from "../private_link.ts";
import type { OutgoingAsk, Requests } from "../requests.ts";
import type { Questions } from "./questions.ts";
import { error, type Line, linkFailure, question, size, system, v } from "./view.ts";

/** How long the user has to answer "send?" before the request expires. */
export const QUESTION_MS = 120_000;
/** Files served at once; more asks are declined until one ends. */
const MAX_SERVING = 4;

export interface TransferDeps {
  server: ClientOptions;
  me: string;
  /** The shared folder, or null: nothing is shared. */
  shareDir: string | null;
  downloadsDir: string;
  questions: Questions;
  show(line: Line): void;
}

export class Transfers {
  #d: TransferDeps;
  #running = new Set<Promise<void>>();
  #ends = new Set<{ close(): void }>();
  #serving = 0;

  constructor(deps: TransferDeps) {
    this.#d = deps;
  }

  get running(): number {
    return this.#running.size;
  }

  /** Resolves once every transfer running now has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#running]);
  }

  /** Closes every link (leaving). */
  closeAll(): void {
    for (const end of this.#ends) end.close();
  }

  /** Someone asked us for a private connection (to fetch a file from us). */
  serve(ask: TCPAsk, requests: Requests): void {
    const from = v(ask.sender);
    const share = this.#d.shareDir;
    if (share === null || this.#serving >= MAX_SERVING) {
      requests.decline(ask);
      this.#d.show(system(
        share === null
          ? `${from} asked you for a file; you share nothing (start with --share DIR): declined`
          : `${from} asked you for a file; ${MAX_SERVING} transfers are running: declined`,
      ));
      return;
    }
    this.#d.show(system(`${from} asks for a file; reading which one...`));
    this.#serving++;
    let name = "";
    let cancelled = false;
    this.#track(
      async () => {
        try {
          const r = await openLink(this.#d.server, { ...ask, op: Op.TCPAccept });
          if (!r.ok) {
            const why = r.code === ErrorCode.TcpNotInProtocol
              ? "it is no longer pending (withdrawn or expired)"
              : linkFailure(r);
            return this.#d.show(error(
              `could not answer ${from}'s request: ${why}; nothing was sent, ${from} can ask again`,
            ));
          }
          const result = await this.#using(r.end, () =>
            serveFile(r.end, share, {
              approve: async (file) => {
                name = v(file.name);
                this.#d.show(question(`${from} wants ${name} (${size(file.size)}): send? [y/n]`));
                const answer = await this.#d.questions.ask(ask.sender);
                if (answer === "cancelled") {
                  cancelled = true;
                  this.#d.show(system(
                    `not sending ${name} to ${from}: the connection to the server dropped before ` +
                      `you answered; ${from} can ask again`,
                  ));
                  r.end.close(); // the link went with the server; the refusal has nowhere to go
                }
                if (answer === "no") this.#d.show(system(`not sending ${name} to ${from}`));
                if (answer === "expired") {
                  this.#d.show(system(`${from}'s request for ${name} expired: not sent`));
                }
                return answer === "yes";
              },
            })).catch((e) => {
              if (cancelled) return null; // already said
              throw e;
            });
          if (result === null) return;
          if (result.status === 200) {
            this.#d.show(system(`sent ${name} to ${from} (${size(result.bytes)})`));
          } else if (result.status === 0) {
            this.#d.show(system(`${from} closed the private connection without asking for a file`));
          } else if (result.refusal !== "declined") {
            this.#d.show(system(
              `${from} asked for ${v(decodeTarget(result.target))}: refused, ${
                result.refusal ?? "a malformed request"
              } (${result.status})`,
            ));
          }
        } finally {
          this.#serving--;
        }
      },
      (e) =>
        `could not send ${name || "the file"} to ${from}: the private connection broke (${e}); ` +
        `${from} can ask again`,
    );
  }

  /** The peer accepted our ask: join the link and fetch the file. */
  fetch(ask: OutgoingAsk, requests: Requests): void {
    const to = v(ask.to);
    const file = v(ask.file);
    this.#track(async () => {
      try {
        const r = await openLink(this.#d.server, {
          op: Op.TCPConnect,
          sender: this.#d.me,
          recipient: ask.to,
          password: ask.password,
        });
        if (!r.ok) {
          return this.#d.show(error(
            `could not fetch ${file} from ${to}: ${linkFailure(r)}. ` +
              `Try again: /get ${to} ${file}; if it keeps failing, tell the server's operator`,
          ));
        }
        this.#d.show(
          system(`linked to ${to}; asking for ${file} (${to} decides whether to send it)`),
        );
        const result = await this.#using(
          r.end,
          () =>
            fetchFile(r.end, ask.file, this.#d.downloadsDir, {
              headTimeoutMs: QUESTION_MS + 30_000,
            }),
        );
        if (result.ok) {
          this.#d.show(
            system(`saved ${file} from ${to} to ${result.savedTo} (${size(result.bytes)})`),
          );
        } else if (result.status === 403 && result.reason === "Declined") {
          this.#d.show(system(`${to} declined to send ${file}`));
        } else {
          this.#d.show(error(
            `${to} could not send ${file}: ${result.status} ${v(result.reason)}`.trimEnd(),
          ));
        }
      } finally {
        requests.finished(ask);
      }
    }, (e) => `could not fetch ${file} from ${to}: ${e}. Try again: /get ${to} ${file}`);
  }

  /** Runs `fn` with `end` registered for closing on leave; closes it after. */
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
      .catch((e) => this.#d.show(error(failed(errorMessage(e)))))
      .finally(() => this.#running.delete(t));
    this.#running.add(t);
  }
}

function decodeTarget(target: string): string {
  try {
    return decodeURIComponent(target);
  } catch {
    return target;
  }
}
