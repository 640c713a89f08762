/**
 * Everything the CLI prints, as text: one function per thing to say. The
 * app decides what happened; this module decides how it reads.
 */

import { ErrorCode, errorCodeName } from "../../protocol/mod.ts";
import { describeFrame } from "../client.ts";
import type { ChatEvent } from "../requests.ts";

export const USAGE = `usage: deno task client <pseudo> [host] [port] [--share DIR] [--downloads DIR]

  host         server address (default 127.0.0.1)
  port         server port (default 7777)
  --share      folder others may fetch files from (default: the current directory)
  --downloads  folder fetched files are saved in (default: ./downloads)`;

export const HELP = `commands:
  text             send text to everyone
  @bob text        send text to bob only
  /bob path        ask bob for a private connection and fetch that file from his share
  y | n            accept / decline the oldest pending private-connection request
  /accept [name]   accept (the oldest request from name)
  /decline [name]  decline (the oldest request from name)
  //text           send a text that starts with /
  /help            this help
  /quit            leave`;

export function codeName(code: number): string {
  return errorCodeName[code] ?? `unknown error ${code}`;
}

/** The line for a chat event, or null when there is nothing to say. */
export function eventLine(e: ChatEvent, me: string): string | null {
  switch (e.kind) {
    case "public":
      return `[${e.from}] ${e.text}`;
    case "private":
      return `[${e.from} → ${e.to === me ? "you" : e.to}] ${e.text}`;
    case "asked":
      return `${e.ask.sender} asks for a private connection: answer y or n` +
        (e.pending > 1 ? ` (${e.pending} requests pending; y/n answers the oldest)` : "");
    case "withdrawn":
      return `${e.from}'s private-connection request was withdrawn`;
    case "declined":
      return `declined ${e.from}'s private connection`;
    case "accepted":
      return `${e.ask.to} accepted the private connection`;
    case "ask-ended":
      return e.accepted
        ? `private connection with ${e.to} aborted`
        : `${e.to} declined the private connection (or the request expired)`;
    case "stray-error":
      return e.code === ErrorCode.OK ? null : `server: ERROR ${e.code} (${codeName(e.code)})`;
    case "unexpected":
      return `(unexpected from the server: ${describeFrame(e.frame)})`;
    case "reply":
      return replyLine(e);
  }
}

function replyLine({ request: r, code }: Extract<ChatEvent, { kind: "reply" }>): string | null {
  const name = codeName(code);
  switch (r.kind) {
    case "sma":
      return code === ErrorCode.OK ? null : `message to all not delivered: ${name}`;
    case "spm":
      if (code === ErrorCode.OK) return null;
      return code === ErrorCode.UnreachableUser
        ? `${r.to} is not connected`
        : `message to ${r.to} not delivered: ${name}`;
    case "ask":
      if (code === ErrorCode.OK) {
        return r.aborted
          ? `private connection with ${r.to} aborted`
          : `asked ${r.to} for a private connection to fetch ${r.file}`;
      }
      return code === ErrorCode.UnreachableUser
        ? `${r.to} is not connected`
        : code === ErrorCode.TcpInProtocol
        ? `a private connection with ${r.to} is already being set up`
        : `private connection request to ${r.to} refused: ${name}`;
    case "decline":
      return code === ErrorCode.TcpNotInProtocol
        ? `${r.ask.sender}'s request is no longer pending`
        : `could not decline ${r.ask.sender}'s request: ${name}`;
  }
}

export function loginFailedLine(pseudo: string, code: number): string {
  switch (code) {
    case ErrorCode.PseudoUnavailable:
      return `login failed: the pseudo "${pseudo}" is already taken (Pseudo Unavailable)`;
    case ErrorCode.InvalidPseudonym:
      return `login failed: "${pseudo}" is not a valid pseudonym (Invalid Pseudonym)`;
    case ErrorCode.ServiceUnavailable:
      return "login failed: the server cannot take logins now (Service Unavailable)";
    default:
      return `login failed: ERROR ${code} (${codeName(code)})`;
  }
}
