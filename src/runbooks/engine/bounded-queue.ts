/**
 * Runs tasks at most `limit` at a time, starting them once no new task has arrived for `quietMs` (and
 * never later than `maxDeferMs` after the oldest arrived). The engine starts runs through it, so a burst
 * of slash commands is acknowledged first and planned right after, without the planning of earlier
 * commands delaying the acknowledgement of later ones. A lone command waits `quietMs` (20 ms), which
 * nobody notices next to the plan's AWS calls. One timer serves the whole burst.
 */
export class BoundedQueue {
  readonly #limit: number;
  readonly #quietMs: number;
  readonly #maxDeferMs: number;
  #active = 0;
  #lastArrival = 0;
  #oldestArrival = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Arrived, waiting for the burst to end. */
  readonly #arrived: (() => void)[] = [];
  /** Released from the burst, waiting for a slot. */
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number, options: { quietMs?: number; maxDeferMs?: number } = {}) {
    this.#limit = Math.max(1, limit);
    this.#quietMs = options.quietMs ?? 20;
    this.#maxDeferMs = options.maxDeferMs ?? 250;
  }

  /** Runs `task` when the burst it arrived in is over and a slot is free; resolves or rejects with it. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await new Promise<void>((resolve) => this.#arrive(resolve));
    await this.#acquire();
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #arrive(resolve: () => void): void {
    const now = performance.now();
    if (this.#arrived.length === 0) this.#oldestArrival = now;
    this.#lastArrival = now;
    this.#arrived.push(resolve);
    this.#timer ??= setTimeout(() => this.#tick(), this.#quietMs);
  }

  #tick(): void {
    this.#timer = undefined;
    const now = performance.now();
    const quietFor = now - this.#lastArrival;
    if (quietFor < this.#quietMs && now - this.#oldestArrival < this.#maxDeferMs) {
      this.#timer = setTimeout(() => this.#tick(), this.#quietMs - quietFor);
      return;
    }
    for (const resolve of this.#arrived.splice(0)) resolve();
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
