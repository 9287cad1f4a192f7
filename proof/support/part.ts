/**
 * One part of the proof: it works until its goal is met or its soft deadline passes, and can always say
 * what it reached so far (`report`), so the runner can print a row even when the hard deadline cuts it off.
 */
import type { CanaryScanner } from './canaries.ts';
import type { ProofServers } from './servers.ts';

/** One row of the table: the goal, what was tried, what came out, and whether the goal is met. */
export interface Row {
  goal: string;
  tried: string;
  result: string;
  pass: boolean;
}

/** What each part gets from the runner. */
export interface PartContext {
  servers: ProofServers;
  canaries: CanaryScanner;
  /** Stop starting new trials after this (ms since the epoch). */
  softDeadline: number;
  /** Scales every count (1 = the goals); `--scale 0.1` for a quick look. */
  scale: number;
  /** Registers cleanup that the runner runs even when the part hits its hard deadline. */
  onCleanup(fn: () => Promise<void> | void): void;
  log(message: string): void;
}

/** A part: `run` does the work; `report` turns what it reached into rows (`cutOff` when the deadline hit). */
export interface Part {
  name: string;
  /** Seconds for the work; the hard deadline adds a grace period for clean-up. */
  budgetSeconds: number;
  run(ctx: PartContext): Promise<void>;
  report(cutOff: boolean): Row[];
}

/** "1,234". */
export function n(value: number): string {
  return value.toLocaleString('en-US');
}

export { sleep, waitUntil } from '../../tests/support/wait-until.ts';

/** Runs `work` over `items` with at most `limit` in flight; stops taking new items when `stop()` says so. */
export async function pool<T>(
  items: Iterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async () => {
    for (;;) {
      if (stop()) return;
      const next = iterator.next();
      if (next.done) return;
      await work(next.value);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}
