/**
 * The Home tab through the real receiver: app_home_opened publishes the viewer's requests to approve
 * (with buttons), their recent runs, the break-glass runs awaiting their review and the latest reminder;
 * the Home buttons go through the engine's rules (approver at click time, nobody decides their own) and
 * change AWS in moto like the card's buttons do.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReminderSchedule } from '../../src/schedule/reminder-slots.ts';
import { HOME_ACTION } from '../../src/slack/build-app-home.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { createFakeClock } from '../support/fake-clock.ts';
import { appHomeOpened, homeButton } from '../support/slack-events.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const REMINDER = {
  schedule: '30 8 * * *',
  channel: 'C0SECURITY',
  accounts: ['*'],
  maxKeyAgeDays: 90,
  maxUnusedDays: 45,
};

describe('App Home', () => {
  const accountId = randomAccountId();
  let iam: IAMClient;
  let t: TestQuell;
  const slot = createReminderSchedule(REMINDER, 'UTC').nextSlot(Date.now() + 120 * 86_400_000) ?? 0;
  const clock = createFakeClock(slot - 60_000);
  const keys: Record<string, string> = {};

  const open = async (user: string) => {
    const before = t.slack.callsOf('views.publish').length;
    await appHomeOpened(t.baseUrl, { user, timestamp: Math.floor(clock.now() / 1000) });
    await t.slack.waitFor((calls) => calls.filter((c) => c.method === 'views.publish').length > before);
    const call = t.slack.callsOf('views.publish').at(-1);
    expect(call?.body.user_id).toBe(user);
    return call?.body.view as { type: string; blocks: Block[] };
  };
  const press = async (actionId: string, runId: string, user: string) => {
    const before = t.slack.callsOf('views.publish').length;
    await homeButton(t.baseUrl, { actionId, value: runId, user, timestamp: Math.floor(clock.now() / 1000) });
    await t.slack.waitFor((calls) => calls.filter((c) => c.method === 'views.publish').length > before);
    await t.settle();
    return t.slack.callsOf('views.publish').at(-1)?.body.view as { blocks: Block[] };
  };
  const buttonsOf = (view: { blocks: Block[] }) =>
    view.blocks
      .flatMap((b) => [
        ...((b.elements as { action_id?: string; value?: string }[] | undefined) ?? []),
        ...(b.accessory ? [b.accessory as { action_id?: string; value?: string }] : []),
      ])
      .filter((e) => e.action_id?.startsWith('quell_home_'));

  beforeAll(async () => {
    iam = await adminIam(accountId);
    keys.pending = await createUserWithKey(iam, 'pending-user');
    keys.glass = await createUserWithKey(iam, 'glass-user');
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        approvals: {
          approvers: ['U0LEAD1', 'U0LEAD2', 'S0SECLEADS'],
          expiresIn: '15m',
          breakGlass: ['U0ONCALL'],
        },
        reminders: [REMINDER],
      },
      { now: clock.now, schedulerClock: clock },
    );
  });
  afterAll(async () => {
    await t?.close();
    iam?.destroy();
  });

  it('shows an approver what waits for them, the break-glass runs to review and the latest reminder', async () => {
    await t.command(`disable-key ${keys.pending}`, 'U0RESP');
    const pending = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval']);
    await t.command(`disable-key ${keys.glass}`, 'U0ONCALL');
    const glass = await waitForRunOf(t.quell, 'U0ONCALL', ['succeeded', 'failed']);
    expect(glass).toMatchObject({ breakGlass: true, reviewState: 'pending', state: 'succeeded' });
    await t.command('key-age', 'U0LEAD1');
    await waitForRunOf(t.quell, 'U0LEAD1', ['succeeded', 'failed']);
    await clock.advance(2 * 60_000, () => t.quell.idle());
    await t.settle();

    const view = await open('U0LEAD1');
    expect(view.type).toBe('home');
    expect(view.blocks.length).toBeLessThanOrEqual(100);
    const text = JSON.stringify(view.blocks);
    expect(text).toContain('Waiting for your approval');
    expect(text).toContain(pending.id);
    expect(text).toContain('Requested by <@U0RESP>');
    expect(text).toContain(`Run without approval by <@U0ONCALL>`);
    expect(text).toContain(glass.id);
    expect(text).toContain('*key-age* · succeeded'); // the viewer's own recent run
    // glass-user's key was disabled by the break-glass run: one active key is left to report.
    expect(text).toMatch(/`30 8 \* \* \*` in <#C0SECURITY> · .*\*1 key to look at\* — prod: 1/);
    expect(buttonsOf(view)).toEqual([
      expect.objectContaining({ action_id: HOME_ACTION.approve, value: pending.id }),
      expect.objectContaining({ action_id: HOME_ACTION.deny, value: pending.id }),
      expect.objectContaining({ action_id: HOME_ACTION.review, value: glass.id }),
    ]);
  });

  it('shows a requester their own runs and no buttons', async () => {
    const view = await open('U0RESP');
    const text = JSON.stringify(view.blocks);
    expect(text).toContain('You are not an approver');
    expect(text).toContain('*disable-key* · awaiting approval');
    expect(buttonsOf(view)).toEqual([]);
  });

  it('refuses Home clicks that the card would refuse: 3 attempts, 0 decisions', async () => {
    const [pending] = await t.quell.store.listRuns({
      requester: 'U0RESP',
      states: ['awaiting_approval'],
      limit: 1,
    });
    if (!pending) throw new Error('no pending run');
    const byRequester = await press(HOME_ACTION.approve, pending.id, 'U0RESP');
    expect(JSON.stringify(byRequester.blocks)).toContain('not an approver');
    await press(HOME_ACTION.approve, pending.id, 'U0RANDOM');
    const forged = await press(HOME_ACTION.approve, 'rnotarun00000', 'U0LEAD2');
    expect(JSON.stringify(forged.blocks)).toContain('No run');
    expect(await t.quell.store.listDecisions(pending.id)).toHaveLength(0);
    expect(await keyStatus(iam, 'pending-user', keys.pending ?? '')).toBe('Active');
  });

  it('approves from Home: the key is disabled, the card in the channel is updated, the Home tab says so', async () => {
    const [pending] = await t.quell.store.listRuns({
      requester: 'U0RESP',
      states: ['awaiting_approval'],
      limit: 1,
    });
    if (!pending) throw new Error('no pending run');
    const view = await press(HOME_ACTION.approve, pending.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, pending.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'pending-user', keys.pending ?? '')).toBe('Inactive');
    expect(JSON.stringify(view.blocks)).toContain(`Your approval of \`${pending.id}\` is recorded`);
    const card = t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.channel === INCIDENT && c.body.ts === pending.messageTs);
    expect(JSON.stringify(card.at(-1)?.body.blocks)).toContain('Succeeded');
    expect((await t.quell.store.listDecisions(pending.id)).map((d) => d.userId)).toEqual(['U0LEAD2']);
  });

  it('marks a break-glass run reviewed from Home, audited, and drops it from the list', async () => {
    const [glass] = await t.quell.store.listRuns({ requester: 'U0ONCALL', limit: 1 });
    if (!glass) throw new Error('no break-glass run');
    const view = await press(HOME_ACTION.review, glass.id, 'U0LEAD1');
    expect((await t.quell.store.getRun(glass.id))?.reviewState).toBe('reviewed');
    const reviewed = (await t.quell.store.listAudit({ runId: glass.id })).filter(
      (e) => e.type === 'run.reviewed',
    );
    expect(reviewed).toMatchObject([{ actor: 'U0LEAD1' }]);
    expect(buttonsOf(view).filter((b) => b.action_id === HOME_ACTION.review)).toEqual([]);
  });

  it('a break-glass run buried under 501 newer runs is still owed a review: 1 owed, 1 listed with its button', async () => {
    // The operator runs without approval, then floods the store with cheap runs to push it out of sight.
    const base = clock.now();
    const run = (i: number, overrides: Partial<RunRecord>): RunRecord => ({
      id: `rflood${String(i).padStart(7, '0')}`,
      runbook: 'key-age',
      kind: 'run',
      parentRunId: null,
      state: 'succeeded',
      source: 'cli',
      requester: 'U0ONCALL',
      channel: 'cli',
      reason: null,
      input: { positional: [], options: {} },
      accountAlias: 'prod',
      accountId,
      region: 'us-east-1',
      plan: null,
      planHash: null,
      requiredApprovals: 0,
      breakGlass: false,
      reviewState: null,
      expiresAt: null,
      approvedAt: base + i,
      messageTs: null,
      result: null,
      error: null,
      createdAt: base + i,
      updatedAt: base + i,
      ...overrides,
    });
    const owed = run(0, {
      runbook: 'disable-key',
      requiredApprovals: 1,
      breakGlass: true,
      reviewState: 'pending',
    });
    await t.quell.store.createRun(owed);
    for (let i = 1; i <= 501; i++) await t.quell.store.createRun(run(i, {}));
    expect((await t.quell.store.listRuns({ limit: 500 })).some((r) => r.id === owed.id)).toBe(false);

    const view = await open('U0LEAD2');
    expect(JSON.stringify(view.blocks)).toContain(owed.id);
    expect(buttonsOf(view).filter((b) => b.action_id === HOME_ACTION.review)).toEqual([
      expect.objectContaining({ value: owed.id }),
    ]);
  });
});
