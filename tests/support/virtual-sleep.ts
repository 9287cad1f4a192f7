/**
 * A virtual clock for code that waits with `node:timers/promises`' setTimeout and reads `Date.now()`
 * (the rotation follower, drift's detection polling). While it is on, each sleep is recorded, moves the
 * clock forward by exactly its length and resolves at once, so poll counts and backoff schedules are the
 * code's own, not what a loaded machine's timers allowed. A test file installs it with
 *
 *   vi.mock('node:timers/promises', async (importOriginal) => {
 *     const { withVirtualSleep } = await import('../support/virtual-sleep.ts');
 *     return withVirtualSleep(await importOriginal<typeof import('node:timers/promises')>());
 *   });
 *
 * and turns it on around the tests that need it (`virtualTime.start()` / `virtualTime.stop()`).
 */
import { type MockInstance, vi } from 'vitest';

type TimersPromises = typeof import('node:timers/promises');

export interface VirtualTime {
  /** Every sleep requested while on, in milliseconds, in order. */
  sleeps: number[];
  /** Milliseconds the clock has moved since `start()`. */
  elapsed(): number;
  start(): void;
  stop(): void;
}

let on = false;
let base = 0;
let offset = 0;
let spy: MockInstance<() => number> | undefined;

export const virtualTime: VirtualTime = {
  sleeps: [],
  elapsed: () => offset,
  start() {
    on = true;
    offset = 0;
    virtualTime.sleeps.length = 0;
    base = Date.now();
    spy = vi.spyOn(Date, 'now').mockImplementation(() => base + offset);
  },
  stop() {
    on = false;
    spy?.mockRestore();
    spy = undefined;
  },
};

/** `node:timers/promises` with a setTimeout that follows the virtual clock while it is on. */
export function withVirtualSleep(actual: TimersPromises): TimersPromises {
  const realSleep = actual.setTimeout;
  const sleep = (async (ms?: number, value?: unknown, options?: { signal?: AbortSignal }) => {
    if (!on) return realSleep(ms, value, options);
    options?.signal?.throwIfAborted();
    virtualTime.sleeps.push(ms ?? 0);
    offset += ms ?? 0;
    return value;
  }) as TimersPromises['setTimeout'];
  return { ...actual, setTimeout: sleep };
}
