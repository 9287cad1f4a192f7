/**
 * Runs tasks at most `limit` at a time, each entered on a later turn of the event loop. The engine starts
 * runs through it so that a burst of slash commands is acknowledged first and planned after, without
 * the planning of earlier commands delaying the acknowledgement of later ones.
 */
export class BoundedQueue {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  /** Runs `task` when a slot is free; resolves or rejects with it. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    // Hand the slot straight to the next task; only free it when nobody waits.
    if (next) next();
    else this.#active--;
  }
}
