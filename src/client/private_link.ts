/**
 * Opening one end of a private link and waiting for the server to join it:
 * B after accepting (TCPAccept), A after B accepted (TCPConnect). The answer
 * is a value: the linked end, the ERROR code that refused it, or why the
 * connection failed.
 */

import { ErrorCode, Op, type TCPAccept, type TCPConnect } from "../protocol/mod.ts";
import { errorMessage } from "../lib/errors.ts";
import { type ClientOptions, PrivateEnd } from "./client.ts";
import { type AnswerTrouble, LinkAnswerError } from "./link_answer.ts";

/** How long an end waits, after sending its first frame, for the peer to join. */
export const LINK_WAIT_MS = 30_000;

/**
 * Why a link failed without an ERROR code: the server could not be reached,
 * the handshake was aborted (a TCPAbort came instead of the answer), or the
 * answer did not come (timeout), broke off (closed, socket) or was not ChatOS.
 */
export type LinkTrouble = "unreachable" | "aborted" | AnswerTrouble;

export type LinkResult =
  | { ok: true; end: PrivateEnd }
  /** The server refused (`code`; -1: it closed without an ERROR frame). */
  | { ok: false; code: number }
  /** The connection could not be made or broke; `detail`: the system's words, if any. */
  | { ok: false; code: null; trouble: LinkTrouble; detail: string };

export async function openLink(
  opts: ClientOptions,
  first: TCPAccept | TCPConnect,
  waitMs = LINK_WAIT_MS,
): Promise<LinkResult> {
  let end: PrivateEnd;
  try {
    end = await PrivateEnd.open(opts, first);
  } catch (e) {
    return { ok: false, code: null, trouble: "unreachable", detail: errorMessage(e) };
  }
  try {
    const answer = await end.answer(waitMs);
    const last = answer[answer.length - 1];
    const code = last.op === Op.ERROR ? last.code : -1;
    if (code === ErrorCode.OK) return { ok: true, end };
    end.close();
    return { ok: false, code };
  } catch (e) {
    end.close();
    if (!(e instanceof LinkAnswerError)) throw e;
    const aborted = e.frames.some((f) => f.op === Op.TCPAbort);
    return { ok: false, code: null, trouble: aborted ? "aborted" : e.kind, detail: e.detail };
  }
}
