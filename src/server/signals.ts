/**
 * What a stop signal means to a node. One Ctrl-C often arrives twice within
 * a millisecond or two: the terminal signals its whole foreground process
 * group (`deno task` and the node), and `deno task` forwards what it got to
 * the node as well. So every signal within `graceMs` of the first is that
 * same act, and only a signal after it, a separate act, exits at once.
 */

/** Long enough for a forwarded copy on a busy machine, short next to any deliberate second press. */
export const SIGNAL_GRACE_MS = 1000;

/** "stop": drain and exit; "same": part of the act already stopping; "exit": a second act. */
export type SignalAct = "stop" | "same" | "exit";

export class StopSignals {
  readonly graceMs: number;
  #now: () => number;
  #first: number | null = null;

  constructor(graceMs = SIGNAL_GRACE_MS, now: () => number = () => performance.now()) {
    this.graceMs = graceMs;
    this.#now = now;
  }

  /** What a signal received now means. */
  receive(): SignalAct {
    const t = this.#now();
    if (this.#first === null) {
      this.#first = t;
      return "stop";
    }
    return t - this.#first < this.graceMs ? "same" : "exit";
  }
}
