/**
 * Questions waiting for the user's y/n, oldest first. Each has a deadline:
 * unanswered, it resolves "expired" (a peer is waiting on the other end).
 */

import { clearTimer, type TimerId } from "../../lib/timers.ts";

/** "cancelled": the question lost its meaning (the connection it came on dropped). */
export type Answer = "yes" | "no" | "expired" | "cancelled";

interface Question {
  from: string;
  settle(a: Answer): void;
  timer: TimerId;
}

export class Questions {
  #queue: Question[] = [];
  #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#queue.length;
  }

  /** Queues a question from `from`; resolves with the user's answer or "expired". */
  ask(from: string): Promise<Answer> {
    return new Promise((resolve) => {
      const q: Question = {
        from,
        settle: (a) => {
          clearTimer(q.timer);
          const i = this.#queue.indexOf(q);
          if (i >= 0) this.#queue.splice(i, 1);
          resolve(a);
        },
        timer: setTimeout(() => q.settle("expired"), this.#timeoutMs),
      };
      this.#queue.push(q);
    });
  }

  /** Answers the oldest question (from `from`, if given); false if there is none. */
  answer(yes: boolean, from?: string): boolean {
    const q = from === undefined ? this.#queue[0] : this.#queue.find((x) => x.from === from);
    if (!q) return false;
    q.settle(yes ? "yes" : "no");
    return true;
  }

  /** Answers every question "no" (leaving). */
  declineAll(): void {
    for (const q of [...this.#queue]) q.settle("no");
  }

  /** Ends every question unanswered: what they asked about is gone (a dropped connection). */
  cancelAll(): void {
    for (const q of [...this.#queue]) q.settle("cancelled");
  }
}
