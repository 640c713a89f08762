/**
 * Everything the CLI prints, as styled lines: one function per thing to say.
 * The app decides what happened; this module decides how it reads. Every
 * string that comes from someone else (names, messages, file names, the
 * server's words) goes through `visible()`: a peer cannot drive the terminal.
 */

import { ErrorCode, errorCodeName } from "../../protocol/mod.ts";
import { visible } from "../../lib/visible.ts";
import { describeFrame } from "../client.ts";
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
  `usage: deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR] [--max-bytes N]

  host         server address (default 127.0.0.1)
  port         server port (default 7777)
  --share      folder others may fetch files from, after you say yes to each file
               (default: none, nothing is shared; hidden files are never shared)
  --downloads  folder fetched files are saved in (default: ./downloads)
  --max-bytes  longest message the server takes, in bytes (default 32767, the server's default)
  Relative paths are taken from where you ran the command.`;

export const HELP = `commands:
  text                 send text to everyone
  @bob text            send text to bob only (also: /msg bob text)
  /get bob path        ask bob for a file from his shared folder (also: /bob path)
  y | n                answer the oldest question (only while one is pending)
  /accept [name]       yes to the oldest question (from name)
  /decline [name]      no to the oldest question (from name)
  /say text            send any text to everyone, even "y" or "/x" (also: //x)
  /help                this help
  /quit                leave (also Ctrl-D)`;

/** The server's handshake deadline is 60 s by default; a decline comes well before. */
const EXPIRED_AFTER_MS = 30_000;

export function codeName(code: number): string {
  return errorCodeName[code] ?? `unknown error ${code}`;
}

/** "28 B", "3.1 KB", "4.0 MB". */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
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

export function loginFailedLine(pseudo: string, code: number): string {
  switch (code) {
    case ErrorCode.PseudoUnavailable:
      return `login failed: the pseudo "${v(pseudo)}" is already taken (Pseudo Unavailable)`;
    case ErrorCode.InvalidPseudonym:
      return `login failed: "${v(pseudo)}" is not a valid pseudonym (Invalid Pseudonym)`;
    case ErrorCode.ServiceUnavailable:
      return "login failed: the server cannot take logins now (Service Unavailable)";
    default:
      return `login failed: ERROR ${code} (${codeName(code)})`;
  }
}
