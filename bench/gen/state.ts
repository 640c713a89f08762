/**
 * One generator's counters for the measured window, passed explicitly to
 * every mode: what was sent and delivered, the latency histogram, and what
 * went wrong (errors, connections the server closed, refused messages).
 */
import process from "node:process";
import { Hist } from "../hist.ts";
import { lastStringOffset, readTs } from "../wire.ts";

export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export class GenState {
  /** Set at "stop": connections ending after this are not errors. */
  stopping = false;
  delivered = 0;
  sent = 0;
  /** Messages answered with ERROR 1 (in the window, like `sent`). */
  acked = 0;
  bytesIn = 0;
  errors = 0;
  /** Receiving connections the server closed while the load ran (a reader dropped as slow, say). */
  ended = 0;
  /** Messages answered with an ERROR other than 1 (e.g. the recipient is gone). */
  refused = 0;
  /** Senders that had at least one message refused (spm: their recipient is gone). */
  refusingSenders = 0;
  firstError = "";
  readonly hist = new Hist();
  #windowStart = 0;
  #cpuStart = 0;

  noteError(what: string): void {
    this.errors++;
    if (!this.firstError) this.firstError = what;
  }

  /** A connection's read loop ended: counted unless the run is stopping. */
  readonly onEnd = (why: string): void => {
    if (this.stopping) return;
    this.ended++;
    this.noteError(`connection ended: ${why}`);
  };

  /** Records the latency of a timed SPM/SMA frame at buf[off], read at `nowUs`. */
  recordTimed(buf: Uint8Array, off: number, nowUs: number): void {
    this.hist.record(nowUs - readTs(buf, lastStringOffset(buf, off)));
  }

  /** The measured window starts: counters back to zero. */
  mark(): void {
    this.#windowStart = performance.now();
    this.#cpuStart = cpuSeconds();
    this.delivered = 0;
    this.sent = 0;
    this.acked = 0;
    this.bytesIn = 0;
    this.hist.reset();
  }

  result(): Record<string, unknown> {
    return {
      ev: "result",
      elapsed_s: (performance.now() - this.#windowStart) / 1000,
      cpu_s: cpuSeconds() - this.#cpuStart,
      delivered: this.delivered,
      sent: this.sent,
      acked: this.acked,
      bytes: this.bytesIn,
      errors: this.errors,
      ended: this.ended,
      refused: this.refused,
      refusing_senders: this.refusingSenders,
      first_error: this.firstError || undefined,
      hist: this.hist.toJSON(),
    };
  }
}
