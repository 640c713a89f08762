/**
 * Flood control of one chat session (IRC's fakelag; ergo's irc/fakelag.go
 * has the same shape): two token buckets, the frames a client sends and the
 * bytes they cause the node to send, charged once per read. A client in debt
 * is not cut off: its connection stops reading until the debt is paid, so the
 * flooder waits and nobody else does. Not shared, so not guarded: only its
 * connection's read loop touches it.
 */
import { Op } from "../../protocol/mod.ts";
import { TokenBucket } from "../../lib/rate.ts";

/** A session's sending budget: frames, and bytes it causes to be sent. A rate of 0 is off. */
export interface FloodLimits {
  rateFrames: number;
  rateFramesBurst: number;
  rateBytes: number;
  rateBytesBurst: number;
}

export class FloodControl {
  // No bucket at all for a rate that is off (memory per session).
  readonly #frames: TokenBucket | null;
  readonly #bytes: TokenBucket | null;
  /** How many users an SMA reaches. */
  readonly #fanOut: () => number;
  // What the current read carried, not charged yet.
  #framesRead = 0;
  #bytesCaused = 0;

  constructor(limits: FloodLimits, fanOut: () => number, now?: () => number) {
    this.#frames = limits.rateFrames > 0
      ? new TokenBucket(limits.rateFrames, limits.rateFramesBurst, now)
      : null;
    this.#bytes = limits.rateBytes > 0
      ? new TokenBucket(limits.rateBytes, limits.rateBytesBurst, now)
      : null;
    this.#fanOut = fanOut;
  }

  /**
   * One frame of the current read, `size` bytes on the wire: what it causes
   * to be sent is its size, an SMA's times the users it reaches.
   */
  count(op: Op, size: number): void {
    this.#framesRead++;
    if (this.#bytes !== null) this.#bytesCaused += op === Op.SMA ? size * this.#fanOut() : size;
  }

  /**
   * Charges what the current read carried (once per read, not per frame).
   * Returns how long to stop reading, in ms; 0 when not in debt.
   */
  charge(): number {
    let debt = 0;
    if (this.#frames !== null) {
      this.#frames.spend(this.#framesRead);
      debt = this.#frames.debtMs();
    }
    if (this.#bytes !== null) {
      this.#bytes.spend(this.#bytesCaused);
      debt = Math.max(debt, this.#bytes.debtMs());
    }
    this.#framesRead = 0;
    this.#bytesCaused = 0;
    return debt;
  }
}
