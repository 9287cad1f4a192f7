/**
 * Channel guardrails and per-runbook requesters, attacked through the Slack surface: every runbook on
 * every account from every channel (listed ones, an unlisted one, a direct message with its own entry
 * and one without) by users who may and may not request it. Counts forbidden attempts and acceptances
 * (a run record created); accepted must be 0, and every allowed one must be accepted. `help` lists
 * exactly what the user may run there, and refusals name the rule and who can change it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { startTestQuell, type TestQuell } from '../support/test-quell.ts';

/** A command that parses for each runbook (the target need not exist: planning may fail, acceptance is the run). */
const SAMPLES: Record<string, string> = {
  'disable-key': 'disable-key AKIAIOSFODNN7EXAMPLE',
  trail: 'trail key=AKIAIOSFODNN7EXAMPLE since=1h',
  'isolate-vpc': 'isolate-vpc vpc-0abc1234def567890',
  'restore-vpc': 'restore-vpc vpc-0abc1234def567890',
  'isolate-instance': 'isolate-instance i-0abc1234def567890',
  'release-instance': 'release-instance i-0abc1234def567890',
  'rotate-secret': 'rotate-secret app/db-password',
  drift: 'drift payments-stack',
  'key-age': 'key-age',
  'revoke-role-sessions': 'revoke-role-sessions deploy',
};

const CHANNELS = ['C0INCIDENT', 'C0DEV', 'D0ALICE', 'G0PRIVATE', 'C0RANDOM', 'D0BOB'];
const USERS = ['U0RESP', 'U0GROUPIE', 'U0RANDOM'];
const ALL = Object.keys(SAMPLES);

/**
 * The expected answer, written out by hand from the config below and not computed by quell's policy
 * code: which runbooks may run on which accounts in each channel (C0RANDOM and D0BOB have no entry, so
 * nothing), and who may request each runbook (U0GROUPIE through the S0RESPONDERS group; isolate-vpc only
 * by U0LEAD1, who is not among USERS).
 */
const EXPECTED_CHANNELS: Record<string, { runbooks: string[]; accounts: string[] }> = {
  C0INCIDENT: { runbooks: ALL, accounts: ['prod', 'dev'] },
  C0DEV: { runbooks: ['trail', 'drift', 'key-age'], accounts: ['dev'] },
  D0ALICE: { runbooks: ['key-age'], accounts: ['dev'] },
  G0PRIVATE: { runbooks: ['disable-key'], accounts: ['prod'] },
};
const EXPECTED_REQUESTERS: Record<string, string[]> = {
  'disable-key': ['U0RESP', 'U0GROUPIE'],
  'isolate-vpc': [],
};
function expectedAllowed(channel: string, user: string, runbook: string, account: string): boolean {
  const entry = EXPECTED_CHANNELS[channel];
  const inChannel = !!entry && entry.runbooks.includes(runbook) && entry.accounts.includes(account);
  return inChannel && (EXPECTED_REQUESTERS[runbook]?.includes(user) ?? true);
}

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

  it('accepts exactly the allowed combinations: forbidden attempts accepted 0', async () => {
    const runbooks = t.quell.engine.runbooks.map((r) => r.id);
    const missing = runbooks.filter((id) => !SAMPLES[id]);
    expect(missing, 'add a sample command for every registered runbook').toEqual([]);
    expect(runbooks.length, 'the counts below are for these 10 runbooks').toBe(ALL.length);
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
              allowed: expectedAllowed(channel, user, runbook, account),
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
    // The counts this matrix is about: 6 channels × 3 users × 10 runbooks × 2 accounts = 360 attempts.
    // Allowed: C0INCIDENT 52 (U0RESP and U0GROUPIE 9 runbooks — all but isolate-vpc — × 2 accounts each,
    // U0RANDOM 8 × 2, without disable-key too), C0DEV 9 (3 runbooks on dev × 3 users), D0ALICE 3,
    // G0PRIVATE 2 (disable-key on prod for U0RESP and U0GROUPIE): 66; the other 294 are forbidden.
    expect(attempts).toHaveLength(360);
    expect(allowed).toHaveLength(66);
    expect(forbidden).toHaveLength(294);
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
    // Every attempt a channel rule forbids (requester refusals in C0INCIDENT are worded otherwise):
    // C0DEV 17 × 3 users, D0ALICE 19 × 3, G0PRIVATE 19 × 3, C0RANDOM 20 × 3 and D0BOB 20 × 3.
    expect(channelRefusals).toHaveLength(285);
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
    const mark = t.slack.responses.length;
    const runsBefore = (await t.quell.store.listRuns({ limit: 5000 })).length;
    const ack = await t.command('isolate-vpc vpc-0abc1234def567890 account=prod', 'U0RANDOM', 'C0INCIDENT');
    await t.settle();
    const told = [
      String(ack.json?.text ?? ''),
      ...t.slack.responses.slice(mark).map((r) => String(r.body.text)),
    ];
    const naming = told.filter((text) => text.includes('approvals.runbooks.isolate-vpc.requesters'));
    expect(naming).toHaveLength(1);
    expect(await t.quell.store.listRuns({ limit: 5000 })).toHaveLength(runsBefore);
    expect(naming[0]).toContain('You may not request `isolate-vpc`');
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
