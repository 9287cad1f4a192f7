/**
 * Channel guardrails and per-runbook requesters, attacked through the Slack surface: every runbook on
 * every account from every channel (listed ones, an unlisted one, a direct message with its own entry
 * and one without) by users who may and may not request it. Counts forbidden attempts and acceptances
 * (a run record created); accepted must be 0, and every allowed one must be accepted. `help` lists
 * exactly what the user may run there, and refusals name the rule and who can change it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelAllows } from '../../src/approvals/approval-policy.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { startTestQuell, type TestQuell } from '../support/test-quell.ts';

/** A command that parses for each runbook (the target need not exist: planning may fail, acceptance is the run). */
const SAMPLES: Record<string, string> = {
  'disable-key': 'disable-key AKIAIOSFODNN7EXAMPLE',
  trail: 'trail key=AKIAIOSFODNN7EXAMPLE since=1h',
  'isolate-vpc': 'isolate-vpc vpc-0abc1234def567890',
  'restore-vpc': 'restore-vpc vpc-0abc1234def567890',
  'rotate-secret': 'rotate-secret app/db-password',
  drift: 'drift payments-stack',
  'key-age': 'key-age',
};

const CHANNELS = ['C0INCIDENT', 'C0DEV', 'D0ALICE', 'G0PRIVATE', 'C0RANDOM', 'D0BOB'];
const USERS = ['U0RESP', 'U0GROUPIE', 'U0RANDOM'];

describe('channel guardrails × accounts × runbooks × requesters', () => {
  let t: TestQuell;
  const prodId = randomAccountId();
  const devId = randomAccountId();

  beforeAll(async () => {
    t = await startTestQuell({
      accounts: [accountConfig('prod', prodId), accountConfig('dev', devId)],
      approvals: {
        approvers: ['U0LEAD1', 'U0LEAD2', 'S0SECLEADS'],
        expiresIn: '15m',
        runbooks: {
          'disable-key': { required: 1, requesters: ['U0RESP', 'S0RESPONDERS'] },
          'isolate-vpc': { required: 2, requesters: ['U0LEAD1'] },
        },
      },
      channels: {
        C0INCIDENT: { runbooks: ['*'], accounts: ['*'] },
        C0DEV: { runbooks: ['trail', 'drift', 'key-age'], accounts: ['dev'] },
        D0ALICE: { runbooks: ['key-age'], accounts: ['dev'] },
        G0PRIVATE: { runbooks: ['disable-key'], accounts: ['prod'] },
      },
    });
    t.slack.groups.set('S0RESPONDERS', ['U0GROUPIE']);
  });
  afterAll(async () => {
    await t?.close();
  });

  function requesterAllowed(runbook: string, user: string): boolean {
    const requesters = t.config.approvals.runbooks[runbook]?.requesters;
    if (!requesters) return true;
    return requesters.includes(user) || requesters.some((g) => (t.slack.groups.get(g) ?? []).includes(user));
  }

  it('accepts exactly the allowed combinations: forbidden attempts accepted 0', async () => {
    const runbooks = t.quell.engine.runbooks.map((r) => r.id);
    const missing = runbooks.filter((id) => !SAMPLES[id]);
    expect(missing, 'add a sample command for every registered runbook').toEqual([]);
    const attempts: { channel: string; user: string; runbook: string; account: string; allowed: boolean }[] =
      [];
    for (const channel of CHANNELS)
      for (const user of USERS)
        for (const runbook of runbooks)
          for (const account of ['prod', 'dev'])
            attempts.push({
              channel,
              user,
              runbook,
              account,
              allowed: channelAllows(t.config, channel, runbook, account) && requesterAllowed(runbook, user),
            });
    const acks: string[] = [];
    for (let i = 0; i < attempts.length; i += 12) {
      const batch = attempts.slice(i, i + 12);
      const results = await Promise.all(
        batch.map((a) => t.command(`${SAMPLES[a.runbook]} account=${a.account}`, a.user, a.channel)),
      );
      for (const r of results) {
        expect(r.status).toBe(200);
        acks.push(String(r.json?.text ?? ''));
      }
    }
    await t.settle();

    const runs = await t.quell.store.listRuns({ limit: 5000 });
    const accepted = (a: (typeof attempts)[number]) =>
      runs.filter(
        (r) =>
          r.requester === a.user &&
          r.channel === a.channel &&
          r.runbook === a.runbook &&
          r.accountAlias === a.account,
      ).length;
    const forbidden = attempts.filter((a) => !a.allowed);
    const allowed = attempts.filter((a) => a.allowed);
    const forbiddenAccepted = forbidden.reduce((n, a) => n + accepted(a), 0);
    const allowedAccepted = allowed.filter((a) => accepted(a) === 1).length;
    // The counts this matrix is about (252 attempts with the 7 runbooks of this build).
    console.info(
      `guardrails: ${attempts.length} attempts, ${forbidden.length} forbidden (accepted ${forbiddenAccepted}), ${allowed.length} allowed (accepted ${allowedAccepted})`,
    );
    expect(forbidden.length).toBeGreaterThan(allowed.length);
    expect(forbiddenAccepted).toBe(0);
    expect(allowedAccepted).toBe(allowed.length);
    expect(runs).toHaveLength(allowed.length);

    // Each refusal is audited as not allowed, and none of them reached AWS.
    const entries = await t.quell.store.listAudit();
    const refusals = entries.filter(
      (e) => e.type === 'command.rejected' && (e.data as { code?: string }).code === 'quell_not_allowed',
    );
    expect(refusals).toHaveLength(forbidden.length);
    const refusedRuns = new Set(refusals.map((e) => e.runId).filter((id): id is string => id !== null));
    expect(
      entries.filter((e) => e.type.startsWith('aws.') && e.runId !== null && refusedRuns.has(e.runId)),
    ).toHaveLength(0);
    // Refusals in the acknowledgement name the rule and who can change it.
    const channelRefusals = acks.filter((text) => text.includes('Refused by `channels.'));
    expect(channelRefusals.length).toBeGreaterThan(0);
    for (const text of channelRefusals) expect(text).toContain('Who can change it: the people who maintain');
    expect(acks.some((a) => a.includes('Refused by `channels.C0RANDOM`'))).toBe(true);
    expect(
      acks.some(
        (a) => a.includes('quell runs nothing in this direct message') && a.includes('`channels.D0BOB`'),
      ),
    ).toBe(true);
    expect(acks.some((a) => a.includes('Refused by `channels.C0DEV.runbooks`'))).toBe(true);
    expect(acks.some((a) => a.includes('Refused by `channels.C0DEV.accounts`'))).toBe(true);
    expect(acks.some((a) => a.includes('<@U0LEAD1>, <@U0LEAD2>, <!subteam^S0SECLEADS>'))).toBe(true);
  });

  it('tells a user refused by requesters which rule it was and who can change it', async () => {
    await t.command('isolate-vpc vpc-0abc1234def567890 account=prod', 'U0RANDOM', 'C0INCIDENT');
    await t.settle();
    const told = t.slack.responses.filter((r) =>
      String(r.body.text).includes('approvals.runbooks.isolate-vpc.requesters'),
    );
    expect(told.length).toBeGreaterThan(0);
    expect(String(told.at(-1)?.body.text)).toContain('You may not request `isolate-vpc`');
  });

  it('help lists only what this user may run in this channel', async () => {
    const help = async (user: string, channel: string) =>
      String((await t.command('help', user, channel)).json?.text);
    const lines = (text: string) =>
      [...text.matchAll(/• `\/quell ([a-z-]+)/g)]
        .map((m) => m[1])
        .filter((n) => n !== 'status' && n !== 'help' && n !== 'case');
    const all = t.quell.engine.runbooks.map((r) => r.id);

    expect(lines(await help('U0RESP', 'C0INCIDENT'))).toEqual(all.filter((id) => id !== 'isolate-vpc'));
    expect(lines(await help('U0GROUPIE', 'C0INCIDENT'))).toEqual(all.filter((id) => id !== 'isolate-vpc'));
    expect(lines(await help('U0RANDOM', 'C0INCIDENT'))).toEqual(
      all.filter((id) => id !== 'isolate-vpc' && id !== 'disable-key'),
    );
    expect(lines(await help('U0LEAD1', 'C0INCIDENT'))).toEqual(all.filter((id) => id !== 'disable-key'));
    const dev = await help('U0RESP', 'C0DEV');
    expect(lines(dev)).toEqual(all.filter((id) => ['trail', 'drift', 'key-age'].includes(id)));
    expect(dev).toContain('*What you can run here* on `dev`');
    expect(lines(await help('U0RANDOM', 'D0ALICE'))).toEqual(['key-age']);
    const unlisted = await help('U0RESP', 'D0BOB');
    expect(lines(unlisted)).toEqual([]);
    expect(unlisted).toContain('No runbook may run in this direct message');
    expect(unlisted).toContain('ask <@U0LEAD1>, <@U0LEAD2>, <!subteam^S0SECLEADS>');
    const restricted = await help('U0RANDOM', 'G0PRIVATE');
    expect(lines(restricted)).toEqual([]);
    expect(restricted).toContain('Nothing here that you may run');
  });
});
