/**
 * A session's replies, kept in request order while some still wait for the
 * network. ChatOS acknowledges with bare ERROR frames, so a client matches
 * answers to requests by order alone: an SPM whose recipient is on another
 * node must not let a later, local SPM's OK overtake its own.
 *
 * Remote sends are not awaited one by one (that would cap a sender at one
 * Redis round trip per message); they are issued in order on one Redis
 * connection and only their replies are chained. Past `maxInFlight` the
 * caller gets a promise to wait on, which holds the mailbox, and so the
 * socket: a client cannot pile up unbounded work.
 */
export class OrderedReplies {
  #emit: (bytes: Uint8Array) => void;
  #max: number;
  #tail: Promise<void> | null = null;
  #inFlight = 0;

  constructor(emit: (bytes: Uint8Array) => void, maxInFlight: number) {
    this.#emit = emit;
    this.#max = maxInFlight;
  }

  /** Sends at once, or behind the replies still pending. */
  now(...frames: Uint8Array[]): void {
    if (this.#tail === null) {
      for (const f of frames) this.#emit(f);
    } else {
      void this.later(Promise.resolve(frames));
    }
  }

  /**
   * Sends what `frames` resolves to once every earlier reply went out.
   * `frames` must not reject. Returns a promise only when the caller should
   * stop taking requests until it settles.
   */
  later(frames: Promise<Uint8Array[]>): Promise<void> | undefined {
    this.#inFlight++;
    const prev = this.#tail;
    const next: Promise<void> = (prev ? prev.then(() => frames) : frames).then((fs) => {
      this.#inFlight--;
      for (const f of fs) this.#emit(f);
      if (this.#tail === next) this.#tail = null;
    });
    this.#tail = next;
    return this.#inFlight >= this.#max ? next : undefined;
  }

  /** Resolves when every reply so far has been emitted. */
  settled(): Promise<void> {
    return this.#tail ?? Promise.resolve();
  }
}
