/**
 * Credential-age reminders end to end: moto's real credential report for two accounts reached through
 * assumed roles, quell built as in production with a hand-moved clock, and the fake Slack Web API
 * checking the posted pages, the owners' DMs and the buttons (Disable through the approval flow, Look up
 * activity, Snooze with its modal). One reminder per slot, also across restarts; after downtime the
 * latest missed slot runs once.
 *
 * About moto: its credential report is real CSV built from its IAM state, but every key in it was
 * created "now" (moto cannot backdate a key), its GeneratedTime is always 2015-02-02T20:02:02Z (so the
 * reuse of a fresh report is covered by the mocked-client unit test), it has no `<root_account>` row, and
 * it writes `not_supported` as the service and region of the last use. Ages therefore come from moving
 * quell's clock 100 days past the keys' creation; different last-use times come from using one key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  GetUserCommand,
  IAMClient,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReminderSchedule } from '../../src/schedule/reminder-slots.ts';
import { FINDING_ACTION } from '../../src/slack/build-key-age-message.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import { accountConfig, adminIam, keyStatus, randomAccountId } from '../support/aws-fixtures.ts';
import { createFakeClock } from '../support/fake-clock.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import { messageButton, viewSubmission } from '../support/slack-events.ts';
import { startTestQuell, type TestQuell, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

const SECURITY = 'C0SECURITY';
const DAY = 86_400_000;
const REMINDER = {
  schedule: '0 9 * * *',
  channel: SECURITY,
  accounts: ['*'],
  maxKeyAgeDays: 90,
  maxUnusedDays: 45,
};

async function userWithKeys(
  iam: IAMClient,
  userName: string,
  keys: ('Active' | 'Inactive')[],
  tags: Record<string, string> = {},
): Promise<{ id: string; secret: string }[]> {
  await iam.send(
    new CreateUserCommand({
      UserName: userName,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
  const out: { id: string; secret: string }[] = [];
  for (const status of keys) {
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey;
    if (!key?.AccessKeyId || !key.SecretAccessKey) throw new Error('moto gave no key');
    if (status === 'Inactive')
      await iam.send(
        new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: key.AccessKeyId, Status: 'Inactive' }),
      );
    out.push({ id: key.AccessKeyId, secret: key.SecretAccessKey });
  }
  return out;
}

/** The reminder messages posted in the channel (not thread replies), in order. */
function reminders(calls: SlackCall[]): SlackCall[] {
  return calls.filter(
    (c) =>
      c.method === 'chat.postMessage' &&
      c.body.channel === SECURITY &&
      c.body.thread_ts === undefined &&
      JSON.stringify(c.body.blocks ?? '').includes('Credential-age reminder'),
  );
}

/** The reference on the `actionId` button next to the finding that mentions `keyId`. */
function buttonFor(blocks: Block[], keyId: string, actionId: string): string | undefined {
  for (let i = 0; i < blocks.length - 1; i++) {
    const text = JSON.stringify(blocks[i]);
    const next = blocks[i + 1];
    if (text.includes(keyId) && next?.type === 'actions') {
      return (next.elements as { action_id: string; value: string }[]).find((e) => e.action_id === actionId)
        ?.value;
    }
  }
  return undefined;
}

describe('credential-age reminders against moto', () => {
  const prodId = randomAccountId();
  const devId = randomAccountId();
  const dir = mkdtempSync(join(tmpdir(), 'quell-reminders-'));
  const dbUrl = `sqlite:${join(dir, 'quell.db')}`;
  const keys: Record<string, string> = {};
  let prodIam: IAMClient;
  let devIam: IAMClient;
  const createdAt = Date.now();
  const schedule = createReminderSchedule(REMINDER, 'Europe/Berlin');
  const firstSlot = schedule.nextSlot(createdAt + 100 * DAY) ?? 0;
  const clock = createFakeClock(firstSlot - 60_000);
  let t: TestQuell;

  const overrides = {
    accounts: [accountConfig('prod', prodId), accountConfig('dev', devId)],
    timezone: 'Europe/Berlin',
    reminders: [REMINDER],
    channels: {
      C0INCIDENT: { runbooks: ['*'], accounts: ['*'] },
      [SECURITY]: { runbooks: ['disable-key', 'trail', 'key-age'], accounts: ['*'] },
    },
    storage: { url: dbUrl },
  };
  const start = async () => {
    const quell = await startTestQuell(overrides, { now: clock.now, schedulerClock: clock });
    quell.slack.usersByEmail.set('bob@example.com', 'U0BOB');
    return quell;
  };
  const click = (
    actionId: string,
    value: string,
    user: string,
    extra: { threadTs?: string; channel?: string } = {},
  ) =>
    messageButton(t.baseUrl, {
      actionId,
      value,
      user,
      channel: extra.channel ?? SECURITY,
      responseUrl: `${t.slack.url}/response/${user}`,
      timestamp: Math.floor(clock.now() / 1000),
      ...(extra.threadTs ? { threadTs: extra.threadTs } : {}),
    });

  beforeAll(async () => {
    prodIam = await adminIam(prodId);
    devIam = await adminIam(devId);
    const [alice] = await userWithKeys(prodIam, 'alice', ['Active'], { slack: 'U0ALICE' });
    const [bob] = await userWithKeys(prodIam, 'bob', ['Active'], { email: 'Bob@Example.com' });
    const [carol1, carol2] = await userWithKeys(prodIam, 'carol', ['Active', 'Active']);
    const [dave] = await userWithKeys(prodIam, 'dave', ['Inactive']);
    const [eve] = await userWithKeys(prodIam, 'eve', ['Active'], { email: 'eve@example.com' });
    const [frank] = await userWithKeys(devIam, 'frank', ['Active'], { slack: 'U0FRANK' });
    for (const [name, key] of Object.entries({ alice, bob, carol1, carol2, dave, eve, frank }))
      keys[name] = key?.id ?? '';
    // alice uses her key once (now, that is 100 days before quell's clock): moto records the last use.
    const asAlice = new IAMClient({
      region: 'us-east-1',
      credentials: { accessKeyId: alice?.id ?? '', secretAccessKey: alice?.secret ?? '' },
    });
    await asAlice.send(new GetUserCommand({}));
    asAlice.destroy();
    t = await start();
  });
  afterAll(async () => {
    await t?.close();
    prodIam?.destroy();
    devIam?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts nothing before the first slot, then one reminder at 09:00 Berlin with the findings grouped worst first', async () => {
    await t.quell.idle();
    expect(reminders(t.slack.calls)).toHaveLength(0);
    await clock.advance(2 * 60_000, () => t.quell.idle());
    await t.settle();
    const posted = reminders(t.slack.calls);
    expect(posted).toHaveLength(1);
    const blocks = posted[0]?.body.blocks as Block[];
    const text = JSON.stringify(blocks);
    expect(String(posted[0]?.body.text)).toContain('6 access keys to look at (prod 5, dev 1)');
    expect(text).toContain('*6 access keys to look at* — *prod*: 5 · *dev*: 1');
    for (const name of ['alice', 'bob', 'carol1', 'carol2', 'eve', 'frank'])
      expect(text).toContain(keys[name]);
    expect(text).not.toContain(keys.dave); // inactive
    expect(text).toMatch(/\*10[01] days old\*/);
    expect(text).toContain(':two: both keys of the user active');
    expect(text).toMatch(/last used \d{4}-\d\d-\d\d \(10[01] days ago\)/); // alice; moto gives no service
    expect(text).toContain('never used');
    expect(text).toContain('owner <@U0ALICE>');
    expect(text).toContain('owner bob@example.com');
    // prod before dev (prod's worst is worse), carol (two keys, both never used) first in prod.
    expect(text.indexOf('*prod*')).toBeLessThan(text.indexOf('*dev*'));
    expect(text.indexOf(keys.carol1 ?? '')).toBeLessThan(text.indexOf(keys.alice ?? ''));
    expect(blocks.length).toBeLessThanOrEqual(50);
    // Each finding's buttons: Disable, Look up activity, Snooze — all carrying the same bare reference.
    const actions = blocks.filter((b) => b.type === 'actions');
    expect(actions).toHaveLength(6);
    for (const a of actions) {
      const elements = a.elements as { action_id: string; value: string }[];
      expect(elements.map((e) => e.action_id)).toEqual([
        FINDING_ACTION.disable,
        FINDING_ACTION.lookUp,
        FINDING_ACTION.snooze,
      ]);
      expect(new Set(elements.map((e) => e.value)).size).toBe(1);
      expect(elements[0]?.value).toMatch(/^r[a-z2-7]{12}\.\d+$/);
    }
  });

  it('sends each owner with a slack or a resolvable email tag a DM about their own keys', async () => {
    const opened = t.slack.callsOf('conversations.open').map((c) => c.body.users);
    expect(opened.sort()).toEqual(['U0ALICE', 'U0BOB', 'U0FRANK']);
    expect(
      t.slack
        .callsOf('users.lookupByEmail')
        .map((c) => c.body.email)
        .sort(),
    ).toEqual(['bob@example.com', 'eve@example.com']);
    const dms = t.slack.callsOf('chat.postMessage').filter((c) => String(c.body.channel).startsWith('D'));
    expect(dms.map((c) => c.body.channel).sort()).toEqual(['D0ALICE', 'D0BOB', 'D0FRANK']);
    const toBob = JSON.stringify(dms.find((c) => c.body.channel === 'D0BOB')?.body.blocks);
    expect(toBob).toContain(keys.bob);
    expect(toBob).not.toContain(keys.alice);
    expect(toBob).toContain(`<#${SECURITY}>`);
    const [posted] = (await t.quell.store.listAudit()).filter((e) => e.type === 'reminder.posted');
    expect(posted?.data).toMatchObject({
      findings: 6,
      dms: 3,
      dmFailures: ['eve@example.com'],
      counts: { prod: 5, dev: 1 },
    });
  });

  it('audits the run: its sessions carry the scheduler identity, the findings are recorded before posting', async () => {
    const entries = await t.quell.store.listAudit();
    const started = entries.find((e) => e.type === 'reminder.started');
    const id = started?.runId ?? '';
    expect(started?.data).toMatchObject({
      channel: SECURITY,
      accounts: ['prod', 'dev'],
      timezone: 'Europe/Berlin',
    });
    const mine = entries.filter((e) => e.runId === id);
    const types = mine.map((e) => `${e.type}:${(e.data as { operation?: string }).operation ?? ''}`);
    expect(types).toContain('aws.call:AssumeRole');
    expect(types).toContain('aws.call:GenerateCredentialReport');
    expect(types).toContain('aws.call:GetCredentialReport');
    expect(types).toContain('aws.call:ListUserTags');
    expect(types.indexOf('reminder.findings:')).toBeLessThan(types.indexOf('reminder.posted:'));
    const accounts = new Set(
      mine.filter((e) => e.type === 'aws.call').map((e) => (e.data as { account?: string }).account),
    );
    expect(accounts).toEqual(new Set([prodId, devId]));
    const slot = await t.quell.store.lastScheduleSlot(schedule.id);
    expect(slot?.slot).toBe(firstSlot);
    expect(slot?.finishedAt).not.toBeNull();
  });

  it('does not post the same slot again after a restart', async () => {
    await t.close();
    t = await start();
    await t.quell.idle();
    await t.settle();
    expect(reminders(t.slack.calls)).toHaveLength(0);
    expect((await t.quell.store.listAudit()).filter((e) => e.type === 'reminder.started')).toHaveLength(1);
  });

  it('runs the latest missed slot once after three days down', async () => {
    await t.close();
    clock.set(firstSlot + 3 * DAY + 3_600_000);
    t = await start();
    await t.slack.waitFor((calls) => reminders(calls).length > 0);
    await t.settle();
    const posted = reminders(t.slack.calls);
    expect(posted).toHaveLength(1);
    expect(JSON.stringify(posted[0]?.body.blocks)).toContain(
      '2 earlier slots were missed while quell was down',
    );
    expect((await t.quell.store.listAudit()).filter((e) => e.type === 'reminder.started')).toHaveLength(2);
    expect((await t.quell.store.lastScheduleSlot(schedule.id))?.slot).toBe(firstSlot + 3 * DAY);
    // Ticking again in the same slot posts nothing more.
    await t.quell.reminders.tick();
    expect(reminders(t.slack.calls)).toHaveLength(1);
  });

  it('Disable starts disable-key through the normal approval flow, with the key read back from the store', async () => {
    const blocks = reminders(t.slack.calls)[0]?.body.blocks as Block[];
    const ref = buttonFor(blocks, keys.bob ?? '', FINDING_ACTION.disable) ?? '';
    expect(ref).not.toBe('');
    const res = await click(FINDING_ACTION.disable, ref, 'U0RESP');
    expect(res.status).toBe(200);
    const run = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed', 'failed']);
    expect(run).toMatchObject({
      runbook: 'disable-key',
      state: 'awaiting_approval',
      channel: SECURITY,
      accountAlias: 'prod',
    });
    expect(run.input).toMatchObject({ keyId: keys.bob });
    expect(run.reason).toContain('credential-age finding: ');
    expect(run.reason).toContain('never used');
    expect(await keyStatus(prodIam, 'bob', keys.bob ?? '')).toBe('Active');
    await t.click('quell_approve', run.id, 'U0LEAD1', SECURITY);
    expect((await waitForRunState(t.quell, run.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(prodIam, 'bob', keys.bob ?? '')).toBe('Inactive');
  });

  it('refuses forged and foreign references: 4 attempts, 0 runs', async () => {
    const before = (await t.quell.store.listRuns({ limit: 100 })).length;
    const blocks = reminders(t.slack.calls)[0]?.body.blocks as Block[];
    const ref = buttonFor(blocks, keys.eve ?? '', FINDING_ACTION.disable) ?? '';
    const [id] = ref.split('.');
    const attempts = [
      click(FINDING_ACTION.disable, `${id}.999`, 'U0RESP'), // no such finding
      click(FINDING_ACTION.disable, 'rzzzzzzzzzzzz.0', 'U0RESP'), // no such reminder
      click(FINDING_ACTION.disable, `${ref};account=dev`, 'U0RESP'), // parameters smuggled in the value
      click(FINDING_ACTION.disable, ref, 'U0RESP', { channel: 'C0INCIDENT' }), // clicked from another channel
    ];
    expect((await Promise.all(attempts)).every((r) => r.status === 200)).toBe(true);
    await t.settle();
    expect((await t.quell.store.listRuns({ limit: 100 })).length).toBe(before);
    const rejected = (await t.quell.store.listAudit()).filter(
      (e) => e.type === 'command.rejected' && /finding/.test(String((e.data as { reason?: string }).reason)),
    );
    expect(rejected).toHaveLength(4);
    expect(
      t.slack.responses.filter((r) =>
        String(r.body.text).includes('This finding is not known in this channel'),
      ),
    ).toHaveLength(4);
  });

  it('Look up activity asks trail for the key, in its account, back to its last use', async () => {
    const blocks = reminders(t.slack.calls)[0]?.body.blocks as Block[];
    const ref = buttonFor(blocks, keys.alice ?? '', FINDING_ACTION.lookUp) ?? '';
    await click(FINDING_ACTION.lookUp, ref, 'U0ANALYST');
    await t.settle();
    const received = (await t.quell.store.listAudit()).find(
      (e) => e.type === 'command.received' && e.actor === 'U0ANALYST',
    );
    expect(received?.data).toMatchObject({ runbook: 'trail', channel: SECURITY });
    const [run] = await t.quell.store.listRuns({ requester: 'U0ANALYST', limit: 1 });
    expect(run).toMatchObject({ runbook: 'trail', accountAlias: 'prod', accountId: prodId });
    expect(JSON.stringify(run?.input)).toContain(keys.alice);
  });

  it('Snooze: only approvers, a modal asking reason and duration, stored, audited, announced and shown next time', async () => {
    const blocks = reminders(t.slack.calls)[0]?.body.blocks as Block[];
    const ref = buttonFor(blocks, keys.eve ?? '', FINDING_ACTION.snooze) ?? '';
    // Not an approver: refused, no modal.
    await click(FINDING_ACTION.snooze, ref, 'U0RESP');
    await t.settle();
    expect(t.slack.callsOf('views.open')).toHaveLength(0);
    expect(t.slack.responses.some((r) => String(r.body.text).includes('approvals.approvers'))).toBe(true);
    // An approver gets the modal; the metadata carries the reference only.
    await click(FINDING_ACTION.snooze, ref, 'U0LEAD2', { threadTs: '1700000000.000100' });
    await t.slack.waitFor((calls) => calls.some((c) => c.method === 'views.open'));
    const view = t.slack.callsOf('views.open')[0]?.body.view as {
      private_metadata: string;
      callback_id: string;
    };
    expect(view.callback_id).toBe(FINDING_ACTION.snoozeModal);
    expect(JSON.parse(view.private_metadata)).toEqual({ ref, thread: '1700000000.000100' });
    // A reason too short is refused in the modal itself.
    const bad = await viewSubmission(t.baseUrl, {
      callbackId: FINDING_ACTION.snoozeModal,
      user: 'U0LEAD2',
      privateMetadata: view.private_metadata,
      values: {
        reason: { value: { type: 'plain_text_input', value: 'x' } },
        duration: { value: { type: 'static_select', selected_option: { value: '30' } } },
      },
      timestamp: Math.floor(clock.now() / 1000),
    });
    expect(bad.json).toMatchObject({ response_action: 'errors', errors: { reason: expect.any(String) } });
    const odd = await viewSubmission(t.baseUrl, {
      callbackId: FINDING_ACTION.snoozeModal,
      user: 'U0LEAD2',
      privateMetadata: view.private_metadata,
      values: {
        reason: { value: { type: 'plain_text_input', value: 'vendor key' } },
        duration: { value: { type: 'static_select', selected_option: { value: '3650' } } },
      },
      timestamp: Math.floor(clock.now() / 1000),
    });
    expect(odd.json).toMatchObject({ response_action: 'errors', errors: { duration: expect.any(String) } });
    expect(await t.quell.store.activeSnoozes(clock.now())).toHaveLength(0);

    const ok = await viewSubmission(t.baseUrl, {
      callbackId: FINDING_ACTION.snoozeModal,
      user: 'U0LEAD2',
      privateMetadata: view.private_metadata,
      values: {
        reason: {
          value: { type: 'plain_text_input', value: 'vendor integration, rotation booked for 1 Dec' },
        },
        duration: { value: { type: 'static_select', selected_option: { value: '30' } } },
      },
      timestamp: Math.floor(clock.now() / 1000),
    });
    expect(ok.status).toBe(200);
    await t.settle();
    const snoozes = await t.quell.store.activeSnoozes(clock.now());
    expect(snoozes).toEqual([
      {
        accountId: prodId,
        keyId: keys.eve,
        until: clock.now() + 30 * DAY,
        reason: 'vendor integration, rotation booked for 1 Dec',
        by: 'U0LEAD2',
        at: clock.now(),
      },
    ]);
    const audited = (await t.quell.store.listAudit()).find((e) => e.type === 'finding.snoozed');
    expect(audited).toMatchObject({ actor: 'U0LEAD2', data: { keyId: keys.eve, days: 30, userName: 'eve' } });
    const announced = t.slack
      .callsOf('chat.postMessage')
      .find((c) => c.body.thread_ts === '1700000000.000100' && String(c.body.text).includes('snoozed'));
    expect(String(announced?.body.text)).toContain('<@U0LEAD2> snoozed');

    // The next reminder lists eve's key as snoozed, without buttons, and bob's (now disabled) not at all.
    await clock.advance(DAY, () => t.quell.idle());
    await t.settle();
    const next = reminders(t.slack.calls)[1];
    const nextBlocks = next?.body.blocks as Block[];
    const text = JSON.stringify(nextBlocks);
    expect(text).toContain('(and 1 snoozed)');
    expect(text).toContain('*Snoozed (1)*');
    expect(text).toContain('by `U0LEAD2`: vendor integration, rotation booked for 1 Dec');
    expect(buttonFor(nextBlocks, keys.eve ?? '', FINDING_ACTION.disable)).toBeUndefined();
    expect(text).not.toContain(keys.bob);
    expect(String(next?.body.text)).toContain('4 access keys to look at (prod 3, dev 1)');
  });

  it('/quell key-age runs the same report on demand, for one account, with the findings in its thread', async () => {
    const refused = await t.command('key-age', 'U0RESP', SECURITY);
    expect(String(refused.json?.text)).toContain('several accounts are configured');
    await t.command('key-age account=dev', 'U0RESP', SECURITY);
    const run = await waitForRunOf(t.quell, 'U0RESP', ['succeeded', 'failed', 'plan_failed']);
    expect(run).toMatchObject({
      runbook: 'key-age',
      state: 'succeeded',
      accountAlias: 'dev',
      requiredApprovals: 0,
    });
    await t.settle();
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === run.messageTs);
    const findings = thread.find((c) =>
      JSON.stringify(c.body.blocks ?? '').includes('Access keys to look at'),
    );
    const text = JSON.stringify(findings?.body.blocks);
    expect(text).toContain(keys.frank);
    expect(text).not.toContain(keys.alice);
    expect(buttonFor(findings?.body.blocks as Block[], keys.frank ?? '', FINDING_ACTION.disable)).toBe(
      `${run.id}.0`,
    );
    // The CSV of the findings is attached, and the run card says what was found.
    expect(
      t.slack.callsOf('files.completeUploadExternal').length + t.slack.callsOf('files.upload').length,
    ).toBeGreaterThan(0);
    const card = t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === run.messageTs)
      .at(-1);
    expect(JSON.stringify(card?.body.blocks)).toContain('dev: 1 key to look at');
  });

  it('a reminder is a key-age run through the engine, audited as /quell key-age is', async () => {
    const entries = await t.quell.store.listAudit();
    const typesOf = (runId: string) => new Set(entries.filter((e) => e.runId === runId).map((e) => e.type));
    const reminderIds = entries.filter((e) => e.type === 'reminder.started').map((e) => e.runId ?? '');
    expect(reminderIds).toHaveLength(3);
    const [onDemand] = (await t.quell.store.listRuns({ requester: 'U0RESP', limit: 100 })).filter(
      (r) => r.runbook === 'key-age',
    );
    if (!onDemand) throw new Error('no /quell key-age run');
    const onDemandTypes = typesOf(onDemand.id);
    for (const type of ['command.received', 'plan.created', 'aws.call', 'execute.finished', 'run.finished'])
      expect(onDemandTypes).toContain(type);
    const posted = reminders(t.slack.calls)[0]?.body.blocks as Block[];
    const ref = buttonFor(posted, keys.alice ?? '', FINDING_ACTION.snooze) ?? '';

    for (const id of reminderIds) {
      // A run row like any other: the scheduled requester in the reminder's channel, its plan, finished.
      const run = await t.quell.store.getRun(id);
      expect(run).toMatchObject({
        runbook: 'key-age',
        kind: 'run',
        source: 'schedule',
        requester: 'quell-scheduler',
        channel: SECURITY,
        state: 'succeeded',
        requiredApprovals: 0,
        messageTs: null, // no run card: the reminder is its message
      });
      expect(run?.planHash).toMatch(/^[0-9a-f]{64}$/);
      expect(run?.plan).toMatchObject({
        facts: [['Accounts', 'prod, dev'], expect.anything(), expect.anything()],
      });
      // Every entry type of the on-demand run, and only the reminder's own besides (a snooze taken
      // later from its message is recorded under it too).
      const types = typesOf(id);
      types.delete('finding.snoozed');
      expect([...onDemandTypes].filter((type) => !types.has(type))).toEqual([]);
      expect([...types].filter((type) => !onDemandTypes.has(type)).sort()).toEqual([
        'reminder.findings',
        'reminder.posted',
        'reminder.started',
      ]);
      const received = entries.find((e) => e.runId === id && e.type === 'command.received');
      expect(received).toMatchObject({
        actor: 'quell-scheduler',
        data: { runbook: 'key-age', channel: SECURITY, source: 'schedule' },
      });
    }
    // A reminder's buttons refer to its run's stored findings.
    const [refRun = '', index] = ref.split('.');
    expect(reminderIds).toContain(refRun);
    const stored = (await t.quell.store.getRun(refRun))?.result as {
      execute: { data: { findings: { keyId: string | null }[] } };
    };
    expect(stored.execute.data.findings[Number(index)]?.keyId).toBe(keys.alice);
  });
});
