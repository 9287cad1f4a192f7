/**
 * The start queue, in two lanes. A burst of slash commands is acknowledged first and planned right after,
 * at most `limit` at a time per lane. A read-only run executes in its start slot (it needs no approval),
 * so eight `trail limit=10000` runs would hold every slot of a single queue for minutes; containment
 * (mutating and destructive runbooks, and so their undos) therefore has a lane of its own that read-only
 * work can never occupy, and a disable-key is planned and on its card while every read-only slot is busy.
 */
import type { Risk } from '../../approvals/approval-policy.ts';
import type { Lane } from '../../aws/rate-limits.ts';

export type { Lane } from '../../aws/rate-limits.ts';

/** The lane of a runbook's runs: containment for anything that changes the world, read-only otherwise. */
export function laneOf(risk: Risk): Lane {
  return risk === 'read-only' ? 'read-only' : 'containment';
}

/**
 * Runs tasks at most `limit` at a time, starting them once no new task has arrived for `quietMs` (and
 * never later than `maxDeferMs` after the oldest arrived), so that the planning of earlier commands does
 * not delay the acknowledgement of later ones. A lone command waits `quietMs` (20 ms), which nobody
 * notices next to the plan's AWS calls. One timer serves the whole burst.
 */
export class BoundedQueue {
  readonly #limit: number;
  readonly #quietMs: number;
  readonly #maxDeferMs: number;
  #active = 0;
  #lastArrival = 0;
  #oldestArrival = 0;
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: read by `??=` below (biome misses it)
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

/** One bounded queue per lane. */
export class StartLanes {
  readonly #lanes: Record<Lane, BoundedQueue>;

  /** `limit`: how many runs of each lane may be started (planned, and for read-only runs executed) at once. */
  constructor(limit: number) {
    this.#lanes = { 'read-only': new BoundedQueue(limit), containment: new BoundedQueue(limit) };
  }

  /** Runs `task` in the lane of `risk`. */
  run<T>(risk: Risk, task: () => Promise<T>): Promise<T> {
    return this.#lanes[laneOf(risk)].run(task);
  }
}
