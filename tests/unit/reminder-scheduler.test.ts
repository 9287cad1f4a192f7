/**
 * The scheduler against a real SQLite store and a hand-moved clock: each slot runs once, also with two
 * replicas and across a restart; after downtime only the latest missed slot runs, once; a run that
 * posted nothing is retried after its lease; a new reminder does not run its past slots.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { type ReminderJob, ReminderScheduler } from '../../src/schedule/reminder-scheduler.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { createFakeClock } from '../support/fake-clock.ts';

const log = createLogger({ level: 'silent' });
const config = {
  timezone: 'Europe/Berlin',
  reminders: [
    { schedule: '0 9 * * 1-5', channel: 'C0SEC', accounts: ['*'], maxKeyAgeDays: 90, maxUnusedDays: 45 },
  ],
};
// Monday 23 November 2026, 09:00 in Berlin (UTC+1).
const MONDAY_9 = Date.parse('2026-11-23T08:00:00Z');
const MINUTE = 60_000;
const DAY = 86_400_000;

describe('reminder scheduler', () => {
  let dir: string;
  let stores: SqliteStore[];
  const open = async () => {
    const store = new SqliteStore(`sqlite:${join(dir, 'q.db')}`);
    await store.migrate();
    stores.push(store);
    return store;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quell-sched-'));
    stores = [];
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function recorder() {
    const jobs: ReminderJob[] = [];
    return {
      jobs,
      run: async (job: ReminderJob) => {
        jobs.push(job);
        return { posted: true };
      },
    };
  }

  it('runs at the slot in the time zone, once, and keeps time with its own timer', async () => {
    const clock = createFakeClock(MONDAY_9 - 30 * MINUTE);
    const store = await open();
    const r = recorder();
    const scheduler = new ReminderScheduler({ config, store, run: r.run, log, clock });
    await scheduler.start();
    expect(r.jobs).toHaveLength(0);
    await clock.advance(29 * MINUTE, () => scheduler.idle());
    expect(r.jobs).toHaveLength(0);
    await clock.advance(2 * MINUTE, () => scheduler.idle());
    expect(r.jobs.map((j) => new Date(j.slot).toISOString())).toEqual(['2026-11-23T08:00:00.000Z']);
    // More ticks in the same slot run nothing.
    for (let i = 0; i < 5; i++) await scheduler.tick();
    await clock.advance(3 * 60 * MINUTE, () => scheduler.idle());
    expect(r.jobs).toHaveLength(1);
    // Tuesday 09:00 Berlin.
    await clock.advance(DAY, () => scheduler.idle());
    expect(r.jobs.map((j) => new Date(j.slot).toISOString())).toEqual([
      '2026-11-23T08:00:00.000Z',
      '2026-11-24T08:00:00.000Z',
    ]);
    expect(r.jobs.every((j) => j.skipped === 0)).toBe(true);
    const last = await store.lastScheduleSlot(scheduler.schedules[0]?.id ?? '');
    expect(last).toMatchObject({ slot: Date.parse('2026-11-24T08:00:00Z'), summary: { posted: true } });
    await scheduler.stop();
    expect(clock.pending()).toBe(0);
  });

  it('runs a slot once with two replicas ticking at the same moment: 20 ticks, 1 run', async () => {
    const clock = createFakeClock(MONDAY_9 - MINUTE);
    const storeA = await open();
    const storeB = await open();
    const r = recorder();
    const a = new ReminderScheduler({ config, store: storeA, run: r.run, log, clock, owner: 'a' });
    const b = new ReminderScheduler({ config, store: storeB, run: r.run, log, clock, owner: 'b' });
    await Promise.all([a.start(), b.start()]);
    clock.set(MONDAY_9 + 5_000);
    const ran = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).tick()).concat(
        Array.from({ length: 10 }, () => a.tick()),
      ),
    );
    expect(ran.reduce((x, y) => x + y, 0)).toBe(1);
    expect(r.jobs).toHaveLength(1);
    await a.stop();
    await b.stop();
  });

  it('does not post again after a restart, and runs the latest missed slot once after downtime', async () => {
    const clock = createFakeClock(MONDAY_9 - MINUTE);
    const r = recorder();
    let scheduler = new ReminderScheduler({ config, store: await open(), run: r.run, log, clock });
    await scheduler.start();
    clock.set(MONDAY_9 + MINUTE);
    await scheduler.tick();
    expect(r.jobs).toHaveLength(1);
    await scheduler.stop();

    // Restart within the same slot: nothing is posted again.
    scheduler = new ReminderScheduler({ config, store: await open(), run: r.run, log, clock });
    await scheduler.start();
    expect(r.jobs).toHaveLength(1);
    await scheduler.stop();

    // Down from Monday until Friday 12:00: Tuesday, Wednesday, Thursday and Friday were missed.
    clock.set(MONDAY_9 + 4 * DAY + 3 * 60 * MINUTE);
    scheduler = new ReminderScheduler({ config, store: await open(), run: r.run, log, clock });
    await scheduler.start();
    expect(r.jobs).toHaveLength(2);
    expect(new Date(r.jobs[1]?.slot ?? 0).toISOString()).toBe('2026-11-27T08:00:00.000Z');
    expect(r.jobs[1]?.skipped).toBe(3);
    // And a second restart does not run it again.
    await scheduler.stop();
    scheduler = new ReminderScheduler({ config, store: await open(), run: r.run, log, clock });
    await scheduler.start();
    expect(r.jobs).toHaveLength(2);
    await scheduler.stop();
  });

  it('does not run the past slots of a reminder that never ran', async () => {
    const clock = createFakeClock(MONDAY_9 + 2 * 60 * MINUTE);
    const r = recorder();
    const scheduler = new ReminderScheduler({ config, store: await open(), run: r.run, log, clock });
    await scheduler.start();
    expect(r.jobs).toHaveLength(0);
    await clock.advance(DAY, () => scheduler.idle());
    expect(r.jobs).toHaveLength(1);
    await scheduler.stop();
  });

  it('retries a run that posted nothing after the lease, and never while another holds it', async () => {
    const clock = createFakeClock(MONDAY_9 - MINUTE);
    const store = await open();
    let attempts = 0;
    const scheduler = new ReminderScheduler({
      config,
      store,
      log,
      clock,
      leaseMs: 10 * MINUTE,
      run: async () => (++attempts === 1 ? undefined : { posted: true }),
    });
    await scheduler.start();
    clock.set(MONDAY_9);
    await scheduler.tick();
    expect(attempts).toBe(1);
    clock.set(MONDAY_9 + 5 * MINUTE);
    await scheduler.tick();
    expect(attempts).toBe(1);
    clock.set(MONDAY_9 + 11 * MINUTE);
    await scheduler.tick();
    expect(attempts).toBe(2);
    clock.set(MONDAY_9 + 30 * MINUTE);
    await scheduler.tick();
    expect(attempts).toBe(2);
    await scheduler.stop();
  });

  it('keeps going when a run throws, and retries that slot after the lease', async () => {
    const clock = createFakeClock(MONDAY_9 - MINUTE);
    let attempts = 0;
    const scheduler = new ReminderScheduler({
      config,
      store: await open(),
      log,
      clock,
      leaseMs: MINUTE,
      run: async () => {
        if (++attempts === 1) throw new Error('boom');
        return { posted: true };
      },
    });
    await scheduler.start();
    clock.set(MONDAY_9);
    await expect(scheduler.tick()).resolves.toBe(0);
    clock.set(MONDAY_9 + 2 * MINUTE);
    await expect(scheduler.tick()).resolves.toBe(1);
    await scheduler.stop();
  });
});
