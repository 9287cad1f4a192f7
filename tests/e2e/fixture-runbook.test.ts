/**
 * A runbook defined in a test fixture (tests/support/fixtures/whoami-runbook.ts), handed to quell as
 * production builds it (createQuell with a runbooks list, signed Slack requests, moto behind a loopback
 * proxy for STS), with nothing under src/ knowing it: its config fragment is validated with the rest of
 * the configuration and reaches the run, its rate limit paces its calls, and its follow-up button is
 * rendered on its card and starts a new run from the stored one, through the same guardrails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { ConfigInvalidError } from '../../src/errors.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { ASK_AGAIN, whoami } from '../support/fixtures/whoami-runbook.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const NOTE = 'prod: page #sec-oncall first';
const OTHER_CHANNEL = 'C0OTHER';

describe('a runbook from a test fixture, through the engine and the signed Slack harness', () => {
  let t: TestQuell;
  let proxy: FaultProxy;
  const accountId = randomAccountId();

  beforeAll(async () => {
    // STS through a proxy that records each request's start and end, with latency so that requests sent
    // at the same time visibly overlap.
    proxy = await startFaultProxy(inject('motoUrl'));
    proxy.latencyMs = 60;
    process.env.AWS_ENDPOINT_URL_STS = proxy.url;
    t = await startTestQuell(
      {
        accounts: [{ ...accountConfig('prod', accountId), whoamiNote: NOTE }],
        channels: {
          [INCIDENT]: { runbooks: ['*'], accounts: ['*'] },
          [OTHER_CHANNEL]: { runbooks: ['*'], accounts: ['*'] },
        },
      },
      { runbooks: [...RUNBOOKS, whoami] },
    );
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    delete process.env.AWS_ENDPOINT_URL_STS;
  });

  const lastCard = (run: RunRecord) =>
    t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === run.messageTs)
      .at(-1);
  const buttonsOf = (run: RunRecord) =>
    ((lastCard(run)?.body.blocks ?? []) as Block[])
      .filter((b) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string }[]);
  const callerIdentityCalls = () => proxy.requests.filter((r) => r.action === 'GetCallerIdentity');

  it('runs with its config fragment in the context, paced by its own rate limit', async () => {
    await t.command('whoami', 'U0RESP');
    const run = await waitForRunOf(t.quell, 'U0RESP', ['succeeded', 'failed']);
    expect(run.state).toBe('succeeded');
    expect(run.runbook).toBe('whoami');
    const result = run.result as { execute: { data: { arns: string[]; note: string } } };
    expect(result.execute.data.note).toBe(NOTE);
    expect(result.execute.data.arns).toHaveLength(1);
    expect(result.execute.data.arns[0]).toContain('quell-read');
    await t.settle();
    expect(JSON.stringify(lastCard(run)?.body.blocks)).toContain(NOTE);

    // Three calls sent at once, and its declared limit (one at a time) let them through one after another:
    // each reached STS only after the previous one had been answered.
    const calls = callerIdentityCalls().sort((a, b) => a.start - b.start);
    expect(calls).toHaveLength(3);
    for (let i = 1; i < calls.length; i++) {
      expect(calls[i]?.start).toBeGreaterThanOrEqual(calls[i - 1]?.end ?? Number.POSITIVE_INFINITY);
    }
  });

  it('offers its follow-up on the card, and a click starts a new run from the stored one', async () => {
    const [first] = await t.quell.store.listRuns({ requester: 'U0RESP', limit: 1 });
    if (!first) throw new Error('no whoami run');
    const again = buttonsOf(first).find((b) => b.action_id === ASK_AGAIN);
    expect(again?.value).toBe(first.id); // only the run id

    await t.click(ASK_AGAIN, first.id, 'U0RESP2');
    const second = await waitForRunOf(t.quell, 'U0RESP2', ['succeeded', 'failed']);
    expect(second.state).toBe('succeeded');
    expect(second.runbook).toBe('whoami');
    expect(second.id).not.toBe(first.id);
    expect(second.accountAlias).toBe(first.accountAlias);
    expect(second.region).toBe(first.region);
    const received = (await t.quell.store.listAudit({ runId: second.id })).find(
      (e) => e.type === 'command.received',
    );
    expect(received?.actor).toBe('U0RESP2');
  });

  it('refuses the follow-up on forged ids, on runs of other runbooks, and on a card seen from another channel', async () => {
    const before = (await t.quell.store.listRuns({ limit: 100 })).length;
    const [mine] = await t.quell.store.listRuns({ requester: 'U0RESP', limit: 1 });
    if (!mine) throw new Error('no whoami run');
    await t.click(ASK_AGAIN, 'rforgedforged', 'U0RESP3');
    // A run of another runbook (however it ends, it is not a succeeded whoami run).
    await t.command('drift vpc-0abc1234', 'U0RESP4');
    const other = await waitForRunOf(t.quell, 'U0RESP4', ['succeeded', 'failed', 'plan_failed']);
    await t.click(ASK_AGAIN, other.id, 'U0RESP3');
    // A whoami run clicked from another channel: runs are only visible where they were requested.
    await t.click(ASK_AGAIN, mine.id, 'U0RESP3', OTHER_CHANNEL);
    await t.settle();
    const told = t.slack.responses
      .filter((r) => r.method.endsWith('/U0RESP3'))
      .map((r) => String(r.body.text));
    expect(told.filter((m) => m.includes('No run `'))).toHaveLength(2);
    expect(told.some((m) => m.includes('is not a succeeded `whoami` run'))).toBe(true);
    const runs = await t.quell.store.listRuns({ limit: 100 });
    expect(runs.length).toBe(before + 1); // only the drift run
    expect(runs.filter((r) => r.requester === 'U0RESP3')).toEqual([]);
    expect(await waitForRunState(t.quell, mine.id, ['succeeded'])).toMatchObject({ state: 'succeeded' });
  });

  it('validates its config fragment with the rest of the configuration, every problem by path', () => {
    const yaml = `accounts:
  - alias: prod
    id: "111111111111"
    regions: [mars-1]
    roles: { read: "arn:aws:iam::111111111111:role/quell-read", respond: "arn:aws:iam::111111111111:role/quell-respond" }
    whoamiNote: "${'x'.repeat(81)}"
`;
    let problems: string[] = [];
    try {
      parseConfig(yaml, 'quell.yaml', [...RUNBOOKS, whoami]);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigInvalidError);
      problems = (error as ConfigInvalidError).problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(/^accounts\.0\.regions\.0 \(line 4\): must be an AWS region/),
      'accounts.0.whoamiNote (line 6): must be at most 80 characters',
    ]);
    // Without the runbook registered, its key is not part of the configuration.
    expect(() => parseConfig(yaml.replace('[mars-1]', '[us-east-1]'))).toThrow(/whoamiNote/);
    expect(
      parseConfig(yaml.replace('[mars-1]', '[us-east-1]').replace(/x{81}/, 'ok'), 'q', [...RUNBOOKS, whoami])
        .accounts[0],
    ).toMatchObject({ whoamiNote: 'ok' });
  });

  it('needed no change under src/: nothing there names it', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
      );
    const naming = files('src').filter((f) => /whoami/i.test(readFileSync(f, 'utf8')));
    expect(naming).toEqual([]);
  });
});
