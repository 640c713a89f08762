/**
 * A FIFO mailbox drained by one handler at a time: the actor model in one
 * page. A message posted to an idle mailbox is handled at once, synchronously,
 * so fan-out to idle users costs no scheduling; a handler that returns a
 * promise holds the mailbox until it settles, and messages posted meanwhile
 * wait their turn in order.
 */
export class Mailbox<M> {
  #items: M[] = [];
  #head = 0;
  #running = false;
  #idle: Array<() => void> | null = null;
  #handle: (m: M) => void | Promise<void>;
  #onError: (e: unknown) => void;

  constructor(handle: (m: M) => void | Promise<void>, onError: (e: unknown) => void) {
    this.#handle = handle;
    this.#onError = onError;
  }

  get depth(): number {
    return this.#items.length - this.#head;
  }

  get busy(): boolean {
    return this.#running;
  }

  post(m: M): void {
    if (this.#running) {
      this.#items.push(m);
      return;
    }
    // Idle: handle it right here. Only a handler that returns a promise
    // starts the (async) drain loop, so the common synchronous message costs
    // no promise at all.
    let p: void | Promise<void>;
    try {
      p = this.#handle(m);
    } catch (e) {
      this.#onError(e);
      return;
    }
    if (p) void this.#run(p);
  }

  /** Resolves when the mailbox is empty and nothing is being handled. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => (this.#idle ??= []).push(resolve));
  }

  async #run(first: Promise<void>): Promise<void> {
    this.#running = true;
    try {
      try {
        await first;
      } catch (e) {
        this.#onError(e);
      }
      while (this.#head < this.#items.length) {
        const m = this.#items[this.#head];
        this.#items[this.#head++] = undefined as M;
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        try {
          const p = this.#handle(m);
          if (p) await p;
        } catch (e) {
          this.#onError(e);
        }
      }
    } finally {
      this.#items = [];
      this.#head = 0;
      this.#running = false;
      const idle = this.#idle;
      this.#idle = null;
      if (idle) { for (const resolve of idle) resolve(); }
    }
  }
}
