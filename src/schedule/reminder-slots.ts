/**
 * Cron arithmetic for reminders, in the configured time zone (croner does the calendar and DST work):
 * the latest slot at or before a time, the next slot after it, and a stable id per reminder.
 */
import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import type { ReminderConfig } from '../config.ts';

/** A reminder's schedule in a time zone. */
export interface ReminderSchedule {
  /** Stable across restarts and replicas: derived from what the reminder does, not its position. */
  id: string;
  reminder: ReminderConfig;
  /** The latest slot at or before `now` (ms), or null when the expression never matched before. */
  latestSlot(now: number): number | null;
  /** The first slot strictly after `now` (ms), or null when the expression never matches again. */
  nextSlot(now: number): number | null;
}

/**
 * The id under which a reminder's slots are stored: its schedule, channel and accounts. Changing one
 * of them makes a new reminder (which waits for its first slot instead of catching up).
 */
export function reminderScheduleId(reminder: ReminderConfig, timezone: string): string {
  const identity = [
    reminder.schedule.trim(),
    timezone,
    reminder.channel,
    [...reminder.accounts].sort().join(','),
  ];
  return `key-age-${createHash('sha256').update(identity.join('|')).digest('hex').slice(0, 16)}`;
}

/** Builds the schedule of one reminder. */
export function createReminderSchedule(reminder: ReminderConfig, timezone: string): ReminderSchedule {
  // `paused`: croner is used for its arithmetic only; quell's scheduler owns the timers.
  const cron = new Cron(reminder.schedule, { timezone, paused: true });
  return {
    id: reminderScheduleId(reminder, timezone),
    reminder,
    latestSlot(now) {
      // previousRuns excludes the reference itself; slots are whole minutes, so look from just after now.
      const [slot] = cron.previousRuns(1, new Date(now + 1));
      return slot ? slot.getTime() : null;
    },
    nextSlot(now) {
      const next = cron.nextRun(new Date(now));
      return next ? next.getTime() : null;
    },
  };
}
