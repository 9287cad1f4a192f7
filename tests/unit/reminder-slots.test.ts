/** Cron slots in the configured time zone, across a daylight-saving change, and stable reminder ids. */
import { describe, expect, it } from 'vitest';
import { createReminderSchedule, reminderScheduleId } from '../../src/schedule/reminder-slots.ts';

const reminder = {
  schedule: '0 9 * * 1-5',
  channel: 'C0SEC',
  accounts: ['*'],
  maxKeyAgeDays: 90,
  maxUnusedDays: 45,
};

describe('reminder slots', () => {
  it('reads the schedule in the time zone, before and after the clocks change', () => {
    const berlin = createReminderSchedule(reminder, 'Europe/Berlin');
    // Friday 27 March 2026 is still winter time (UTC+1); Monday 30 March is summer time (UTC+2).
    expect(new Date(berlin.nextSlot(Date.parse('2026-03-27T00:00:00Z')) ?? 0).toISOString()).toBe(
      '2026-03-27T08:00:00.000Z',
    );
    expect(new Date(berlin.nextSlot(Date.parse('2026-03-27T08:00:00Z')) ?? 0).toISOString()).toBe(
      '2026-03-30T07:00:00.000Z',
    );
    const utc = createReminderSchedule(reminder, 'UTC');
    expect(new Date(utc.nextSlot(Date.parse('2026-03-27T00:00:00Z')) ?? 0).toISOString()).toBe(
      '2026-03-27T09:00:00.000Z',
    );
  });

  it('takes the slot itself as the latest slot at its exact time, and the one before just before it', () => {
    const s = createReminderSchedule(reminder, 'UTC');
    const monday = Date.parse('2026-11-23T09:00:00Z');
    expect(s.latestSlot(monday)).toBe(monday);
    expect(new Date(s.latestSlot(monday - 1) ?? 0).toISOString()).toBe('2026-11-20T09:00:00.000Z');
    expect(s.latestSlot(monday + 59_000)).toBe(monday);
  });

  it('keeps the id across restarts and changes it when the reminder changes', () => {
    expect(reminderScheduleId(reminder, 'UTC')).toBe(reminderScheduleId({ ...reminder }, 'UTC'));
    expect(reminderScheduleId(reminder, 'UTC')).toMatch(/^key-age-[0-9a-f]{16}$/);
    expect(reminderScheduleId({ ...reminder, channel: 'C0OTHER' }, 'UTC')).not.toBe(
      reminderScheduleId(reminder, 'UTC'),
    );
    expect(reminderScheduleId(reminder, 'Europe/Berlin')).not.toBe(reminderScheduleId(reminder, 'UTC'));
    // The limits are not part of the identity: changing a limit keeps the reminder's history.
    expect(reminderScheduleId({ ...reminder, maxKeyAgeDays: 30 }, 'UTC')).toBe(
      reminderScheduleId(reminder, 'UTC'),
    );
  });
});
