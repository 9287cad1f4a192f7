/** A clock for the reminder scheduler that tests move by hand: timers fire when time passes them. */
import type { SchedulerClock } from '../../src/schedule/reminder-scheduler.ts';

export interface FakeClock extends SchedulerClock {
  /** Sets the time without firing timers (a restart after downtime). */
  set(ms: number): void;
  /** Moves time forward, firing each timer that comes due, in order; resolves after their work settles. */
  advance(ms: number, settle?: () => Promise<void>): Promise<void>;
  /** Timers still waiting. */
  pending(): number;
}

export function createFakeClock(start: number): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    set(ms) {
      now = ms;
    },
    async advance(ms, settle) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
        await settle?.();
        // Let the timer's promise chain (tick, then re-arm) run.
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
    pending: () => timers.size,
  };
}
