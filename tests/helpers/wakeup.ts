/** Lets a reader wait, up to a deadline, for the next chunk a stream handler hands in. */
export class Wakeup {
  #wake: (() => void) | null = null;

  /** Wakes the current waiter, if any. */
  wake(): void {
    this.#wake?.();
  }

  /** Resolves at the next `wake()` or after `ms`, whichever comes first. */
  async wait(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wake = null;
  }
}
