/**
 * Runs each configured reminder once per cron slot. A slot is claimed through the store (a
 * transactional insert, so replicas and restarts agree on who runs it); a slot claimed by a process
 * that died is taken over after the lease. After downtime only the latest missed slot runs, once.
 * The clock and timers are injectable so tests can move time.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Json, Store } from '../store/store.ts';
import { createReminderSchedule, type ReminderSchedule } from './reminder-slots.ts';

/** One slot of one reminder to run. */
export interface ReminderJob {
  schedule: ReminderSchedule;
  slot: number;
  /** Slots of this reminder that passed while nothing ran them (they are skipped, not run). */
  skipped: number;
}

/** What a job reports, stored as the slot's summary. `undefined` means "nothing was posted: retry". */
export type ReminderJobRunner = (job: ReminderJob) => Promise<Json | undefined>;

/** Time, injectable for tests. */
export interface SchedulerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock; timers are unref'd so they never keep the process alive. */
export const SYSTEM_CLOCK: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** How long a claim protects a slot before another process may take it over (a run takes seconds). */
export const DEFAULT_LEASE_MS = 15 * 60_000;
/** The longest sleep between checks, so lease takeovers and clock changes are noticed. */
export const MAX_SLEEP_MS = 5 * 60_000;

/** The scheduler of all configured reminders. */
export class ReminderScheduler {
  readonly schedules: ReminderSchedule[];
  readonly #store: Store;
  readonly #run: ReminderJobRunner;
  readonly #log: Logger;
  readonly #clock: SchedulerClock;
  readonly #owner: string;
  readonly #leaseMs: number;
  #startedAt = 0;
  #timer: unknown;
  #stopped = true;
  #ticking: Promise<number> | undefined;

  constructor(deps: {
    config: Pick<Config, 'reminders' | 'timezone'>;
    store: Store;
    run: ReminderJobRunner;
    log: Logger;
    clock?: SchedulerClock;
    owner?: string;
    leaseMs?: number;
  }) {
    this.schedules = deps.config.reminders.map((r) => createReminderSchedule(r, deps.config.timezone));
    this.#store = deps.store;
    this.#run = deps.run;
    this.#log = deps.log.child({ component: 'reminders' });
    this.#clock = deps.clock ?? SYSTEM_CLOCK;
    this.#owner = deps.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.#leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /** Runs what was missed while quell was down (the latest slot of each reminder, once), then keeps time. */
  async start(): Promise<void> {
    if (this.schedules.length === 0) return;
    this.#stopped = false;
    this.#startedAt = this.#clock.now();
    await this.tick();
    this.#arm();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#ticking?.catch(() => undefined);
  }

  /** Resolves when the run in progress (if any) has finished. */
  async idle(): Promise<void> {
    await this.#ticking?.catch(() => undefined);
  }

  /** Runs every reminder whose latest slot is due and not yet run; resolves to how many ran. */
  tick(): Promise<number> {
    // One tick at a time: a timer firing during a slow run waits for it instead of racing it.
    const previous = this.#ticking ?? Promise.resolve(0);
    const next = previous.catch(() => 0).then(() => this.#tickOnce());
    this.#ticking = next;
    return next;
  }

  async #tickOnce(): Promise<number> {
    const now = this.#clock.now();
    let ran = 0;
    for (const schedule of this.schedules) {
      try {
        if (await this.#runIfDue(schedule, now)) ran++;
      } catch (err) {
        this.#log.error(
          { err, schedule: schedule.id },
          'reminder could not run; it is retried after its lease',
        );
      }
    }
    return ran;
  }

  async #runIfDue(schedule: ReminderSchedule, now: number): Promise<boolean> {
    const slot = schedule.latestSlot(now);
    if (slot === null) return false;
    const last = await this.#store.lastScheduleSlot(schedule.id);
    if (last && last.slot > slot) return false;
    if (last && last.slot === slot && last.finishedAt !== null) return false;
    // A reminder never run before starts with its first slot after quell started, not with the past.
    if (!last && slot < this.#startedAt) return false;
    if (!(await this.#store.claimScheduleSlot(schedule.id, slot, this.#owner, now, this.#leaseMs)))
      return false;
    const skipped = last && last.slot < slot ? this.#countSlotsBetween(schedule, last.slot, slot) : 0;
    if (skipped > 0)
      this.#log.warn(
        { schedule: schedule.id, skipped, slot: new Date(slot).toISOString() },
        'slots were missed while quell was down: running only the latest one',
      );
    const summary = await this.#run({ schedule, slot, skipped });
    if (summary === undefined) return false; // nothing was posted: left claimed, retried after the lease
    await this.#store.finishScheduleSlot(schedule.id, slot, summary, this.#clock.now());
    return true;
  }

  #countSlotsBetween(schedule: ReminderSchedule, after: number, before: number): number {
    let count = 0;
    for (
      let t = schedule.nextSlot(after);
      t !== null && t < before && count < 10_000;
      t = schedule.nextSlot(t)
    )
      count++;
    return count;
  }

  #arm(): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const next = Math.min(...this.schedules.map((s) => s.nextSlot(now) ?? Number.POSITIVE_INFINITY));
    const delay = Math.max(1_000, Math.min(next - now, MAX_SLEEP_MS));
    this.#timer = this.#clock.setTimeout(() => {
      this.tick()
        .catch((err: unknown) => this.#log.error({ err }, 'reminder tick failed'))
        .finally(() => this.#arm());
    }, delay);
  }
}
