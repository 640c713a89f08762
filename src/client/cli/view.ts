/**
 * Everything the CLI prints, as styled lines: one function per thing to say.
 * The app decides what happened; this module decides how it reads. Every
 * string that comes from someone else (names, messages, file names, the
 * server's words) goes through `visible()`: a peer cannot drive the terminal.
 */

import { ErrorCode, errorCodeName } from "../../protocol/mod.ts";
import { visible } from "../../lib/visible.ts";
import {
  badCharacter,
  PSEUDO_RULES,
  pseudoKeys,
  type PseudoRefusal,
  REFUSAL_TEXT,
} from "../../protocol/pseudonym.ts";
import { describeFrame, type EndKind } from "../client.ts";
import type { ChatEvent } from "../requests.ts";
import { LINK_WAIT_MS, type LinkResult } from "../private_link.ts";

export type Style = "own" | "public" | "private" | "system" | "error" | "question";
export interface Line {
  style: Style;
  text: string;
}

export const system = (text: string): Line => ({ style: "system", text });
export const error = (text: string): Line => ({ style: "error", text });
export const question = (text: string): Line => ({ style: "question", text });

/** Shorthand: others' text, safe to print. */
export const v = visible;

export const USAGE =
  `usage: deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR] [--max-bytes N] [--no-bell]

  pseudo       the name others see you as: 1 to 32 letters, digits or combining marks
               of any script, with ".", "-" or "_" only between them (no spaces);
               names that differ only in case or lookalike letters (bob, Bob, b0b) are one
  host         server address (default 127.0.0.1)
  port         server port (default 7777)
  --share      folder others may fetch files from, after you say yes to each file
               (default: none, nothing is shared; hidden files are never shared)
  --downloads  folder fetched files are saved in (default: ./downloads)
  --max-bytes  longest message the server takes, in bytes (default 32767, the server's default)
  --no-bell    on a terminal, no bell when a private message arrives (it is still shown in bold)
  On a terminal, Tab completes the names you have seen (@bo → @bob) and the commands.
  Relative paths are taken from where you ran the command.`;

export const HELP = `commands:
  text                 send text to everyone
  @bob text            send text to bob only (also: /msg bob text)
  /get bob path        ask bob for a file from his shared folder (also: /bob path)
  y | n                answer the oldest question (only while one is pending)
  /accept [name]       yes to the oldest question (from name)
  /decline [name]      no to the oldest question (from name)
  /say text            send any text to everyone, even "y" or "/x" (also: //x)
  Tab                  complete a name you have seen (@bo → @bob) or a command
  /help                this help
  /quit                leave (also Ctrl-D)`;

/** The server's handshake deadline is 60 s by default; a decline comes well before. */
const EXPIRED_AFTER_MS = 30_000;

export function codeName(code: number): string {
  return errorCodeName[code] ?? `unknown error ${code}`;
}

/** "28 B", "3.1 KiB", "4.0 MiB": binary units, named as such. */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

export function ownLine(text: string, to?: string): Line {
  return { style: "own", text: to === undefined ? `[you] ${text}` : `[you → ${v(to)}] ${text}` };
}

/** The line for a chat event, or null when there is nothing to say. */
export function eventLine(e: ChatEvent, me: string): Line | null {
  switch (e.kind) {
    case "public":
      return { style: "public", text: `[${v(e.from)}] ${v(e.text)}` };
    case "private":
      return {
        style: "private",
        text: `[${v(e.from)} → ${e.to === me ? "you" : v(e.to)}] ${v(e.text)}`,
      };
    case "asked": // the app answers asks itself and says what it does
    case "accepted":
      return null;
    case "withdrawn":
      return system(`${v(e.from)}'s request was withdrawn`);
    case "declined":
      return null; // the app said so when it declined
    case "ask-ended":
      // A decline and an expiry are the same TCPAbort; clients answer at once,
      // so one that comes after EXPIRED_AFTER_MS is the server's deadline.
      // Accepted: the fetch that began then says how it ended, in words of its own.
      if (e.accepted) return null;
      return system(
        e.afterMs < EXPIRED_AFTER_MS
          ? `${v(e.to)} declined`
          : `no answer from ${v(e.to)} in ${Math.round(e.afterMs / 1000)} s: the request expired`,
      );
    case "stray-error":
      return e.code === ErrorCode.OK
        ? null
        : error(`server: ERROR ${e.code} (${codeName(e.code)})`);
    case "unexpected":
      return error(`(unexpected from the server: ${v(describeFrame(e.frame))})`);
    case "reply":
      return replyLine(e);
  }
}

function replyLine({ request: r, code }: Extract<ChatEvent, { kind: "reply" }>): Line | null {
  const name = codeName(code);
  switch (r.kind) {
    case "sma":
      return code === ErrorCode.OK ? null : error(`message to all not delivered: ${name}`);
    case "spm":
      if (code === ErrorCode.OK) return null;
      return error(
        code === ErrorCode.UnreachableUser
          ? `${v(r.to)} is not connected`
          : `message to ${v(r.to)} not delivered: ${name}`,
      );
    case "ask":
      if (code === ErrorCode.OK) {
        return r.aborted
          ? error(`private connection with ${v(r.to)} aborted`)
          : system(`asked ${v(r.to)} for ${v(r.file)}; waiting for ${v(r.to)} to answer`);
      }
      return error(
        code === ErrorCode.UnreachableUser
          ? `${v(r.to)} is not connected`
          : code === ErrorCode.TcpInProtocol
          ? `a private connection with ${v(r.to)} is already being set up`
          : `request to ${v(r.to)} refused: ${name}`,
      );
    case "decline":
      return code === ErrorCode.OK || code === ErrorCode.TcpNotInProtocol
        ? null
        : error(`could not decline ${v(r.ask.sender)}'s request: ${name}`);
  }
}

/** Why a private connection did not open, as a clause; never the frames, nor the password. */
export function linkFailure(r: Exclude<LinkResult, { ok: true }>): string {
  if (r.code !== null) {
    return r.code === ErrorCode.TcpNotInProtocol
      ? "the server could not connect you (the request expired or was cancelled, or the " +
        "servers could not reach each other)"
      : `the server refused the private connection (${codeName(r.code)})`;
  }
  switch (r.trouble) {
    case "unreachable":
      return `cannot reach the server (${r.detail})`;
    case "aborted":
      return "the request was cancelled before the private connection opened";
    case "timeout":
      return `the private connection did not open within ${LINK_WAIT_MS / 1000} s`;
    case "closed":
      return "the server closed the private connection before opening it";
    case "socket":
      return `the private connection broke (${r.detail})`;
    case "malformed":
      return "the server answered with something that is not ChatOS";
  }
}

/** Why `pseudo` cannot be a name, with the rule, for a name refused before it is sent. */
export function invalidPseudoText(pseudo: string, reason: PseudoRefusal): string {
  const ch = reason === "character" || reason === "invisible" ? badCharacter(pseudo) : null;
  const code = `U+${(ch?.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
  const why = ch === null
    ? REFUSAL_TEXT[reason]
    : ch === " "
    ? "contains a space"
    : reason === "invisible"
    ? `contains an invisible or filler character (${code})`
    : `contains "${v(ch)}" (${code})`;
  return `"${v(pseudo)}" is not a valid pseudonym: it ${why}. ${PSEUDO_RULES}`;
}

/**
 * ERROR 2: the name, or one that reads the same, is held. Which of the two the
 * server does not say; the names this one reads as, it can be told.
 */
function takenLine(pseudo: string): string {
  const readsAs = pseudoKeys(pseudo).map((k) => k.normalize("NFC")).filter((k) => k !== pseudo);
  if (readsAs.length === 0) {
    return `login failed: "${v(pseudo)}" is in use, by that name or one that looks the same. ` +
      "Choose another pseudo";
  }
  return `login failed: "${v(pseudo)}" reads the same as ` +
    `${readsAs.map((k) => `"${v(k)}"`).join(" or ")} (case and lookalike letters do not make ` +
    `a new name), and someone holds ${readsAs.length > 1 ? "one of those names" : "that name"}. ` +
    "Choose another pseudo";
}

/**
 * The login got no ERROR frame. A peer that answers a CR with anything else,
 * or not at all, is most often not a ChatOS server: say so, and what to check.
 */
export function noLoginAnswer(where: string, ended: EndKind | null, waitedMs: number): string {
  const check =
    `Is ${where} a ChatOS server? Check the host and port (deno task client NAME HOST PORT)`;
  switch (ended) {
    case "malformed":
      return `login failed: ${where} answered with something that is not ChatOS. ${check}`;
    case "closed":
      return `login failed: ${where} closed the connection without answering the login ` +
        `(a ChatOS server that is full or stopping does that too). ${check}, or try again later`;
    case "error":
      return `login failed: the connection to ${where} broke before the login was answered; ` +
        "try again";
    default:
      return `login failed: ${where} accepted the connection but did not answer the login ` +
        `within ${waitedMs / 1000} s. ${check}`;
  }
}

export function loginFailedLine(pseudo: string, code: number): string {
  switch (code) {
    case ErrorCode.PseudoUnavailable:
      return takenLine(pseudo);
    case ErrorCode.InvalidPseudonym:
      return `login failed: the server refuses "${v(pseudo)}" as a pseudonym. ${PSEUDO_RULES}`;
    case ErrorCode.ServiceUnavailable:
      return "login failed: the server cannot take logins now (Service Unavailable)";
    default:
      return `login failed: ERROR ${code} (${codeName(code)})`;
  }
}
