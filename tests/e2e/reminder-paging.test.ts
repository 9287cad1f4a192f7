/**
 * A long reminder against moto: 60 users with old keys do not fit Slack's 50 blocks per message, so the
 * reminder continues in its thread. Every key is on exactly one page and every page says which keys it
 * holds: nothing is cut off silently.
 */
import { CreateAccessKeyCommand, CreateUserCommand, type IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReminderSchedule } from '../../src/schedule/reminder-slots.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import { accountConfig, adminIam, randomAccountId } from '../support/aws-fixtures.ts';
import { createFakeClock } from '../support/fake-clock.ts';
import { startTestQuell, type TestQuell } from '../support/test-quell.ts';

const REMINDER = {
  schedule: '0 7 * * 1',
  channel: 'C0SECURITY',
  accounts: ['bulk'],
  maxKeyAgeDays: 30,
  maxUnusedDays: 30,
};
const USERS = 60;

describe('a reminder longer than one message', () => {
  const accountId = randomAccountId();
  let iam: IAMClient;
  let t: TestQuell;
  const keyIds: string[] = [];
  const slot = createReminderSchedule(REMINDER, 'UTC').nextSlot(Date.now() + 40 * 86_400_000) ?? 0;
  const clock = createFakeClock(slot - 1_000);

  beforeAll(async () => {
    iam = await adminIam(accountId);
    for (let i = 0; i < USERS; i++) {
      const name = `svc-${String(i).padStart(2, '0')}`;
      await iam.send(new CreateUserCommand({ UserName: name }));
      const key = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
      keyIds.push(key.AccessKey?.AccessKeyId ?? '');
    }
    t = await startTestQuell(
      { accounts: [accountConfig('bulk', accountId)], reminders: [REMINDER] },
      { now: clock.now, schedulerClock: clock },
    );
  });
  afterAll(async () => {
    await t?.close();
    iam?.destroy();
  });

  it('posts the first page in the channel and the rest in its thread, each key exactly once', async () => {
    await clock.advance(2_000, () => t.quell.idle());
    await t.settle();
    const posts = t.slack.callsOf('chat.postMessage').filter((c) => c.body.channel === 'C0SECURITY');
    const first = posts.find((c) => c.body.thread_ts === undefined);
    expect(first).toBeDefined();
    const firstIndex = t.slack.calls.indexOf(first as (typeof t.slack.calls)[number]);
    const firstTs = `${1_700_000_000 + t.slack.callsOf('chat.postMessage').indexOf(first as (typeof posts)[number]) + 1}.000100`;
    const thread = posts.filter((c) => c.body.thread_ts !== undefined);
    expect(thread.length).toBeGreaterThan(0);
    // The fake hands out ts values in order: the thread hangs off the first message.
    expect(new Set(thread.map((c) => c.body.thread_ts))).toEqual(new Set([firstTs]));
    expect(thread.every((c) => t.slack.calls.indexOf(c) > firstIndex)).toBe(true);

    const pages = [first, ...thread].map((c) => c?.body.blocks as Block[]);
    for (const blocks of pages) expect(blocks.length).toBeLessThanOrEqual(50);
    const shown = pages.flatMap((blocks) =>
      blocks
        .filter((b) => b.type === 'section')
        .map((b) => /`(AKIA[A-Z0-9]{16})`/.exec(JSON.stringify(b))?.[1])
        .filter((id): id is string => id !== undefined),
    );
    expect(shown.sort()).toEqual([...keyIds].sort());
    expect(String(first?.body.text)).toContain(`${USERS} access keys to look at (bulk ${USERS})`);
    expect(JSON.stringify(pages[0])).toMatch(
      new RegExp(`the other \\d+ are in the thread \\(pages 2–${pages.length}\\)`),
    );
    expect(JSON.stringify(pages.at(-1))).toContain(`Page ${pages.length} of ${pages.length}`);
    expect(JSON.stringify(pages.at(-1))).toMatch(new RegExp(`keys \\d+–${USERS} of ${USERS}`));
    const [posted] = (await t.quell.store.listAudit()).filter((e) => e.type === 'reminder.posted');
    expect(posted?.data).toMatchObject({ findings: USERS, pages: pages.length });
    // The findings were recorded in entries of at most 200, all of them.
    const recorded = (await t.quell.store.listAudit()).filter((e) => e.type === 'reminder.findings');
    expect(recorded.flatMap((e) => (e.data as { findings: unknown[] }).findings)).toHaveLength(USERS);
  });
});
