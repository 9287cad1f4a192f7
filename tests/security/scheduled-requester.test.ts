/**
 * The scheduled requester and a run's reach into other accounts, attacked through the engine: a
 * scheduled run is authorised by its own `reminders` entry (no channel guardrail, no `requesters`
 * list), but a Slack request never is — from a channel without an entry, or by someone the runbook's
 * `requesters` do not list, it is refused. `ctx.scopeFor` reaches only the accounts the run's channel
 * may use (every account for a scheduled run), never an unconfigured one. No AWS call is made: a scope
 * is only a promise of credentials until a client sends something.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AccountOptionSchema, defineRunbook } from '../../src/runbooks/define-runbook.ts';
import { newRunId } from '../../src/runbooks/engine/run-id.ts';
import { type Requester, SCHEDULER_USER } from '../../src/runbooks/engine/run-notifier.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { startTestEngine, type TestEngine } from '../support/test-engine.ts';

/** A read-only runbook that only tries to open a scope in each named account and says which it got. */
const reach = defineRunbook<
  { account?: string; region?: undefined; reason?: undefined; targets: string[] },
  { targets: string[] },
  { reached: string[]; refused: string[] }
>({
  id: 'reach',
  title: 'Reach other accounts',
  risk: 'read-only',
  description: 'opens a scope in each named account',
  usage: 'reach <alias,alias> [account=…]',
  input: z
    .object({
      positional: z.tuple([z.string()]),
      options: z.object({ account: AccountOptionSchema }).strict(),
    })
    .transform(({ positional, options }) => ({
      account: options.account,
      region: undefined,
      reason: undefined,
      targets: positional[0].split(','),
    })),
  access: 'read',
  iam: { plan: [], execute: [] },
  async plan(_ctx, input) {
    return {
      summary: 'reach',
      facts: [],
      calls: [],
      notes: [],
      material: {},
      data: { targets: input.targets },
    };
  },
  async execute(ctx, plan) {
    const reached: string[] = [];
    const refused: string[] = [];
    for (const alias of plan.data.targets) {
      try {
        const scope = ctx.scopeFor(alias);
        reached.push(`${scope.accountAlias}:${scope.tier}`);
        scope.dispose();
      } catch {
        refused.push(alias);
      }
    }
    return { ok: true, summary: 'reached', facts: [], data: { reached, refused } };
  },
  async verify() {
    return { ok: true, summary: '', facts: [], data: {} };
  },
  undo: 'irreversible',
});

/** Built in code, as a reminder's input is (never parsed from a command). */
const scheduledInput = (targets: string[]) => ({ account: 'dev', targets });

const resultOf = (data: unknown) => (data as { execute: { data: unknown } } | null)?.execute.data;

describe('the scheduled requester and ctx.scopeFor', () => {
  let t: TestEngine;
  const scheduler: Requester = { user: SCHEDULER_USER, channel: 'C0REMINDERS', source: 'schedule' };

  beforeAll(async () => {
    t = await startTestEngine({
      accounts: [accountConfig('prod', randomAccountId()), accountConfig('dev', randomAccountId())],
      runbooks: [reach],
      approvals: { runbooks: { reach: { required: 0, requesters: ['U0ONLY'] } } },
      channels: { C0DEV: { runbooks: ['*'], accounts: ['dev'] } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses Slack requests a scheduled one would pass: 3 attempts, 0 runs', async () => {
    const attempts = [
      // A channel without an entry (the reminder's channel needs none).
      async () =>
        t.engine.start(
          t.engine.prepare(
            'reach',
            { positional: ['dev'], options: { account: 'dev' } },
            {
              user: 'U0ONLY',
              channel: 'C0REMINDERS',
              source: 'slack',
            },
          ),
          { user: 'U0ONLY', channel: 'C0REMINDERS', source: 'slack' },
        ),
      // Someone `requesters` does not list.
      async () => {
        const requester: Requester = { user: 'U0OTHER', channel: 'C0DEV', source: 'slack' };
        return t.engine.start(
          t.engine.prepare('reach', { positional: ['dev'], options: { account: 'dev' } }, requester),
          requester,
        );
      },
      // An account the channel may not use.
      async () => {
        const requester: Requester = { user: 'U0ONLY', channel: 'C0DEV', source: 'slack' };
        return t.engine.start(
          t.engine.prepare('reach', { positional: ['prod'], options: { account: 'prod' } }, requester),
          requester,
        );
      },
    ];
    const accepted = (await Promise.all(attempts.map((a) => a().catch(() => undefined)))).filter(Boolean);
    expect(accepted).toHaveLength(0);
    expect(await t.store.listRuns({ limit: 10 })).toHaveLength(0);
  });

  it('a Slack run reaches only the accounts its channel may use, and no unconfigured one', async () => {
    const requester: Requester = { user: 'U0ONLY', channel: 'C0DEV', source: 'slack' };
    const run = await t.engine.start(
      t.engine.prepare('reach', { positional: ['prod,dev,staging'], options: { account: 'dev' } }, requester),
      requester,
    );
    expect(run).toMatchObject({ state: 'succeeded', source: 'slack', accountAlias: 'dev' });
    expect(resultOf(run?.result)).toEqual({ reached: ['dev:read'], refused: ['prod', 'staging'] });
  });

  it('a scheduled run is authorised by its entry: any channel, any configured account, under the id it names', async () => {
    const runId = newRunId();
    const run = await t.engine.start(
      { runbook: reach, input: scheduledInput(['prod', 'dev', 'staging']) },
      scheduler,
      { runId },
    );
    expect(run).toMatchObject({
      id: runId,
      state: 'succeeded',
      source: 'schedule',
      requester: SCHEDULER_USER,
      channel: 'C0REMINDERS',
    });
    expect(resultOf(run?.result)).toEqual({ reached: ['prod:read', 'dev:read'], refused: ['staging'] });
    const received = (await t.store.listAudit({ runId })).find((e) => e.type === 'command.received');
    expect(received).toMatchObject({ actor: SCHEDULER_USER, data: { source: 'schedule' } });
    // Nothing was refused to the scheduler.
    expect(t.told.filter((told) => told.requester.source === 'schedule')).toEqual([]);
  });

  it('refuses a run id that is not one: 1 attempt, 0 runs', async () => {
    const before = (await t.store.listRuns({ limit: 10 })).length;
    await expect(
      t.engine.start({ runbook: reach, input: scheduledInput([]) }, scheduler, {
        runId: 'r-forged',
      }),
    ).rejects.toThrow('is not a run id');
    expect(await t.store.listRuns({ limit: 10 })).toHaveLength(before);
  });
});
