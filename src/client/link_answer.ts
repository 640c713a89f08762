/**
 * Why a private end got no ChatOS answer (`PrivateEnd.answer`), as a value a
 * client can put in words: the message names the call, for logs and tests;
 * `kind` and `frames` say what happened, for a person.
 */
import type { Frame } from "../protocol/mod.ts";

export type AnswerTrouble = "timeout" | "closed" | "socket" | "malformed";

export class LinkAnswerError extends Error {
  override name = "LinkAnswerError";
  readonly kind: AnswerTrouble;
  /** The frames received before it went wrong (a TCPAbort among them: the handshake ended). */
  readonly frames: readonly Frame[];
  /** The socket's or decoder's own words, without the call's name. */
  readonly detail: string;

  constructor(kind: AnswerTrouble, message: string, frames: readonly Frame[], detail = "") {
    super(message);
    this.kind = kind;
    this.frames = frames;
    this.detail = detail;
  }
}
