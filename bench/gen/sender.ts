/**
 * One sending connection with a window of un-acked frames. A pre-filled
 * buffer holds `window` copies of the frame; only timestamps are patched per
 * send, and everything allowed at once leaves in one write.
 */
import { writeAll } from "../../src/lib/async.ts";
import { errorMessage } from "../../src/lib/errors.ts";
import { type FrameSink, lastStringOffset, nowUs, OP_ERROR, OP_SMA, writeTs } from "../wire.ts";
import type { GenState } from "./state.ts";

export class Sender implements FrameSink {
  readonly conn: Deno.Conn;
  credits: number;
  /** Paced mode: frames the schedule allows but not yet sent. */
  allowance = Infinity;
  totalSent = 0;
  onSma: ((buf: Uint8Array, off: number) => void) | null = null;
  onSent: (n: number) => void = () => {};
  /** Stop sending once a message is refused (its recipient was dropped). */
  stopOnRefusal = false;
  #writing = false;
  #refusedOnce = false;
  readonly #batch: Uint8Array;
  readonly #frameLen: number;
  readonly #tsOff: number;
  readonly #gate: () => number;
  readonly #st: GenState;

  constructor(
    st: GenState,
    conn: Deno.Conn,
    template: Uint8Array,
    window: number,
    gate: () => number,
    /** Where the template's timestamp is (an IRC line's text); a ChatOS frame's text by default. */
    tsOff = lastStringOffset(template, 0),
  ) {
    this.#st = st;
    this.conn = conn;
    this.credits = window;
    this.#frameLen = template.length;
    this.#tsOff = tsOff;
    this.#batch = new Uint8Array(template.length * window);
    for (let i = 0; i < window; i++) this.#batch.set(template, i * template.length);
    this.#gate = gate;
  }

  onFrame(op: number, buf: Uint8Array, off: number): void {
    if (op === OP_ERROR) {
      // Any answer frees a slot: a refused message (recipient gone) is answered too.
      this.credits++;
      if (buf[off + 1] === 1) this.#st.acked++;
      else {
        this.#st.refused++;
        if (!this.#refusedOnce) this.#st.refusingSenders++;
        this.#refusedOnce = true;
        this.#st.noteError(`ERROR ${buf[off + 1]} on a sender`);
      }
    } else if (op === OP_SMA && this.onSma) this.onSma(buf, off);
  }

  pump(): void {
    if (this.#writing || this.#st.stopping || (this.stopOnRefusal && this.#refusedOnce)) return;
    const n = Math.min(this.credits, this.allowance, this.#gate());
    if (n <= 0) return;
    this.#writing = true;
    this.credits -= n;
    this.allowance -= n;
    this.totalSent += n;
    this.#st.sent += n;
    this.onSent(n);
    const us = nowUs();
    for (let i = 0; i < n; i++) writeTs(this.#batch, i * this.#frameLen + this.#tsOff, us);
    writeAll(this.conn, this.#batch.subarray(0, n * this.#frameLen)).then(
      () => {
        this.#writing = false;
        this.pump();
      },
      (e) => {
        this.#writing = false;
        if (!this.#st.stopping) this.#st.noteError(`write: ${errorMessage(e)}`);
      },
    );
  }
}
