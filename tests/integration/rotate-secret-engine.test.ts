/**
 * rotate-secret through the engine against moto, with quell's traffic going through a loopback proxy.
 *
 * What moto cannot show, and how it is covered instead:
 * - moto rotates without a Lambda (real Secrets Manager requires one, or a managing service): it moves
 *   AWSCURRENT to the new version at once and leaves that version EMPTY (no SecretString). So these tests
 *   need `force=true` to get past the plan's "no rotation configured" refusal; the refusal itself, and
 *   the plan of a secret that has a rotation Lambda, are tested here too.
 * - moto never shows the window in which AWSPENDING sits on the new version while the Lambda runs
 *   createSecret/setSecret/testSecret/finishSecret, nor a Lambda failing and leaving AWSPENDING behind:
 *   the stuck-rotation report is tested by answering RotateSecret in the proxy without forwarding it
 *   (the new version then never appears), and the polling itself with aws-sdk-client-mock.
 * - moto does not deduplicate a repeated ClientRequestToken the way Secrets Manager does; the tests
 *   assert that every attempt of a run sends the same token (which is what makes AWS deduplicate).
 * - moto does not check lambda:InvokeFunction, which RotateSecret needs on the rotation function.
 */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  PutSecretValueCommand,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import type { RunContext } from '../../src/runbooks/define-runbook.ts';
import { createRotateSecret, followRotation, rotationToken } from '../../src/runbooks/rotate-secret.ts';
import { buildRunCard } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { assertIamMatchesCalls } from '../support/iam-usage.ts';
import { adminSecrets } from '../support/network-fixtures.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';
import { virtualTime } from '../support/virtual-sleep.ts';

vi.mock('node:timers/promises', async (importOriginal) => {
  const { withVirtualSleep } = await import('../support/virtual-sleep.ts');
  return withVirtualSleep(await importOriginal<typeof import('node:timers/promises')>());
});

const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };
const SECRET_VALUE = 'pg-password-Zx81-never-print-this-7Qe';

describe('rotate-secret through the engine against moto', () => {
  const accountId = randomAccountId();
  let sm: SecretsManagerClient;
  let proxy: FaultProxy;
  let t: TestEngine;
  const runbook = createRotateSecret({ timeoutMs: 600, firstPollMs: 50, maxPollMs: 200 });
  const runs: RunRecord[] = [];
  let seq = 0;

  beforeAll(async () => {
    sm = await adminSecrets(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url;
    t = await startTestEngine({ accounts: [accountConfig('prod', accountId)], runbooks: [runbook] });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    process.env.AWS_ENDPOINT_URL = inject('motoUrl');
    sm?.destroy();
  });

  async function createSecret(): Promise<{ name: string; arn: string; versionId: string }> {
    const name = `prod/db-${++seq}`;
    const out = await sm.send(new CreateSecretCommand({ Name: name, SecretString: SECRET_VALUE }));
    return { name, arn: out.ARN ?? '', versionId: out.VersionId ?? '' };
  }

  async function request(positional: string[], options: Record<string, string> = {}) {
    const run = await t.engine.start(
      t.engine.prepare('rotate-secret', { positional, options }, requester),
      requester,
    );
    if (run) runs.push(run);
    return run;
  }

  async function stages(arn: string) {
    const out = await sm.send(new DescribeSecretCommand({ SecretId: arn }));
    return out.VersionIdsToStages ?? {};
  }

  it('refuses a secret without rotation configured, and says so', async () => {
    const { name, arn, versionId } = await createSecret();
    expect(await request([name])).toBeUndefined();
    expect(t.told.at(-1)?.text).toMatch(/has no rotation configured.*force=true/s);
    expect(await stages(arn)).toEqual({ [versionId]: ['AWSCURRENT'] });
  });

  it('refuses while a rotation is in progress (AWSPENDING on a version that is not AWSCURRENT)', async () => {
    const { name, arn, versionId } = await createSecret();
    const pending = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
    await sm.send(
      new PutSecretValueCommand({
        SecretId: arn,
        SecretString: 'next',
        ClientRequestToken: pending,
        VersionStages: ['AWSPENDING'],
      }),
    );
    expect(await request([name], { force: 'false' })).toBeUndefined();
    expect(t.told.at(-1)?.text).toContain(
      `version ${pending} has AWSPENDING while AWSCURRENT is on ${versionId}`,
    );
  });

  it('rotates with force=true after one approval, with a token derived from the run id, and verifies the stages', async () => {
    const { name, arn, versionId } = await createSecret();
    const run = await request([arn], { force: 'true', reason: 'leaked in a CI log' });
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    expect(run.requiredApprovals).toBe(1);
    expect(run.region).toBe('us-east-1'); // taken from the ARN
    const view = t.shown.filter((v) => v.run.id === run.id).at(-1);
    if (!view) throw new Error('no card');
    const card = JSON.stringify(buildRunCard(view).blocks);
    for (const text of [
      arn,
      'not configured',
      'Last rotated',
      `${versionId}: AWSCURRENT`,
      'secretsmanager:RotateSecret',
    ]) {
      expect(card).toContain(text);
    }
    expect(card).toContain(`ClientRequestToken=${rotationToken(run.id)}`);

    const done = await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
    expect(done.state).toBe('succeeded');
    const token = rotationToken(run.id);
    expect(token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(rotationToken(run.id)).toBe(token); // deterministic
    expect(await stages(arn)).toEqual({ [token]: ['AWSCURRENT'], [versionId]: ['AWSPREVIOUS'] });
    const rotate = proxy.requests.filter(
      (r) => r.action === 'secretsmanager.RotateSecret' && r.json?.SecretId === arn,
    );
    expect(rotate).toHaveLength(1);
    expect(rotate[0]?.json).toMatchObject({ ClientRequestToken: token, RotateImmediately: true });
    expect(String((done.result as { execute: { summary: string } }).execute.summary)).toContain(
      `version ${token} is AWSCURRENT, ${versionId} is now AWSPREVIOUS`,
    );
    expect(t.replies.some((r) => r.runId === run.id && r.text.startsWith('Done'))).toBe(true);
    expect(name).toBeTruthy();
  });

  it('sends the same ClientRequestToken on every attempt of a run, so a retry cannot start a second rotation', async () => {
    const { arn } = await createSecret();
    const run = await request([arn], { force: 'true' });
    if (!run) throw new Error('not planned');
    let failures = 0;
    // The first RotateSecret fails with a retryable 500; the SDK's retry must carry the same token.
    proxy.intercept = (req) => {
      if (req.action === 'secretsmanager.RotateSecret' && failures === 0) {
        failures++;
        return {
          status: 500,
          body: JSON.stringify({ __type: 'InternalServiceError', message: 'try again' }),
        };
      }
      return undefined;
    };
    const done = await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
    proxy.intercept = undefined;
    expect(done.state).toBe('succeeded');
    const sent = proxy.requests.filter(
      (r) => r.action === 'secretsmanager.RotateSecret' && r.json?.SecretId === arn,
    );
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((r) => r.json?.ClientRequestToken))).toEqual(new Set([rotationToken(run.id)]));
  });

  it('reports a rotation that never finishes with its versions and stages, and cancels nothing', async () => {
    const { name, arn, versionId } = await createSecret();
    const run = await request([name], { force: 'true' });
    if (!run) throw new Error('not planned');
    // Secrets Manager accepts the request but the rotation never completes (a failing Lambda, say).
    proxy.intercept = (req) =>
      req.action === 'secretsmanager.RotateSecret'
        ? { status: 200, body: JSON.stringify({ ARN: arn, Name: name, VersionId: rotationToken(run.id) }) }
        : undefined;
    const mark = proxy.requests.length;
    const done = await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
    proxy.intercept = undefined;
    expect(done.state).toBe('failed');
    const summary = String((done.result as { execute: { summary: string } }).execute.summary);
    expect(summary).toContain(`did not finish within 1 s`);
    expect(summary).toContain(`AWSCURRENT is still on ${versionId}`);
    expect(summary).toContain(`${versionId}: AWSCURRENT`);
    const after = proxy.requests.slice(mark);
    const rotatedAt = after.find((r) => r.injected)?.start ?? Number.POSITIVE_INFINITY;
    const polls = after.filter((r) => r.action === 'secretsmanager.DescribeSecret' && r.start > rotatedAt);
    // Bounded: at most polls after 0, 50, 150, 350, 550 and 600 ms (backoff 50, 100, 200, 200), then the
    // verify read; fewer when the answers are slow (the schedule itself is checked on a virtual clock
    // below). It gave up only once the 600 ms were over: the versions were listed at least that long
    // after RotateSecret was answered (a slow machine only makes the gap longer).
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(polls.length).toBeLessThanOrEqual(8);
    const rotated = after.find((r) => r.injected);
    const listed = after.find((r) => r.action === 'secretsmanager.ListSecretVersionIds');
    expect(listed).toBeDefined();
    expect((listed?.start ?? 0) - (rotated?.end ?? Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(600 - 2);
    // Nothing but Secrets Manager metadata calls (and the session's AssumeRole).
    expect(
      after
        .filter((r) => !r.action.startsWith('secretsmanager.') && r.action !== 'AssumeRole')
        .map((r) => r.action),
    ).toEqual([]);
    expect(after.some((r) => r.action === 'secretsmanager.CancelRotateSecret')).toBe(false);
  });

  it('never reads a secret value: no GetSecretValue anywhere, and the value is in no message, log or audit entry', async () => {
    const entries = await t.store.listAudit();
    expect(entries.some((e) => (e.data as { operation?: string }).operation === 'GetSecretValue')).toBe(
      false,
    );
    expect(proxy.requests.some((r) => r.action === 'secretsmanager.GetSecretValue')).toBe(false);
    const everything = [
      JSON.stringify(entries),
      JSON.stringify(t.shown.map((v) => buildRunCard(v))),
      JSON.stringify(t.replies),
      JSON.stringify(t.told),
      t.logLines.join('\n'),
      JSON.stringify(await t.store.listRuns({ limit: 100 })),
    ].join('\n');
    expect(everything.length).toBeGreaterThan(10_000);
    expect(everything).not.toContain(SECRET_VALUE);
    expect((await verifyAuditChain(entries)).ok).toBe(true);
  });

  it('calls exactly the IAM actions it declares (from the audit log)', async () => {
    assertIamMatchesCalls(runbook, await t.store.listAudit(), runs, { implied: ['lambda:InvokeFunction'] });
  });
});

describe('following a rotation (aws-sdk-client-mock: the stages moto never shows)', () => {
  // On a virtual clock: the pauses are the follower's own schedule, not the machine's timer jitter.
  beforeEach(() => virtualTime.start());
  afterEach(() => virtualTime.stop());

  it('waits through AWSPENDING with growing pauses until the new version is AWSCURRENT', async () => {
    const mock = mockClient(SecretsManagerClient);
    const stagesSeen = [
      { old: ['AWSCURRENT'], new: ['AWSPENDING'] },
      { old: ['AWSCURRENT'], new: ['AWSPENDING'] },
      { old: ['AWSPREVIOUS'], new: ['AWSCURRENT', 'AWSPENDING'] },
    ];
    let call = 0;
    mock.on(DescribeSecretCommand).callsFake(() => {
      const s = stagesSeen[Math.min(call++, stagesSeen.length - 1)];
      return { ARN: 'arn', VersionIdsToStages: s };
    });
    mock.on(RotateSecretCommand).rejects(new Error('not called here'));
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    const result = await followRotation(client, 'arn', 'new', {
      timeoutMs: 5000,
      firstPollMs: 30,
      maxPollMs: 100,
    });
    expect(result).toMatchObject({ finished: true, polls: 3, waitedMs: 90 });
    // A pause after each of the two AWSPENDING answers, the second twice the first.
    expect(virtualTime.sleeps).toEqual([30, 60]);
    mock.restore();
  });

  it('gives up at the timeout and says where the stages are', async () => {
    const mock = mockClient(SecretsManagerClient);
    mock
      .on(DescribeSecretCommand)
      .resolves({ VersionIdsToStages: { old: ['AWSCURRENT'], new: ['AWSPENDING'] } });
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    const result = await followRotation(client, 'arn', 'new', {
      timeoutMs: 250,
      firstPollMs: 40,
      maxPollMs: 80,
    });
    expect(result.finished).toBe(false);
    expect(result.stages).toEqual({ new: ['AWSPENDING'], old: ['AWSCURRENT'] });
    // Polls at 0, 40, 120, 200 and 250 ms (pauses 40, 80, 80, then the 50 ms left), then gives up.
    expect(result.polls).toBe(5);
    expect(virtualTime.sleeps).toEqual([40, 80, 80, 50]);
    expect(result.waitedMs).toBe(250);
    mock.restore();
  });

  it('plans a secret with a rotation Lambda: ARN, Lambda, schedule, last rotation, version stages', async () => {
    const mock = mockClient(SecretsManagerClient);
    const lambda = 'arn:aws:lambda:us-east-1:111111111111:function:rotate-pg';
    mock.on(DescribeSecretCommand).resolves({
      ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db-AbCdEf',
      Name: 'prod/db',
      RotationEnabled: true,
      RotationLambdaARN: lambda,
      RotationRules: { ScheduleExpression: 'rate(30 days)', Duration: '3h' },
      LastRotatedDate: new Date('2026-10-01T00:00:00Z'),
      VersionIdsToStages: { v1: ['AWSPREVIOUS'], v2: ['AWSCURRENT'] },
    });
    const client = new SecretsManagerClient({ region: 'us-east-1' });
    const ctx = {
      runId: 'rabcdefghijkl',
      account: { alias: 'prod', id: '111111111111' },
      region: 'us-east-1',
      aws: { client: () => client },
      signal: AbortSignal.timeout(5000),
    } as unknown as RunContext;
    const plan = await createRotateSecret().plan(ctx, {
      secretId: 'prod/db',
      arnAccountId: null,
      account: undefined,
      region: undefined,
      reason: undefined,
      force: false,
    });
    const facts = Object.fromEntries(plan.facts);
    expect(facts.Rotation).toBe(`enabled, Lambda ${lambda}`);
    expect(facts.Schedule).toBe('rate(30 days) (window 3h)');
    expect(facts['Last rotated']).toBe('2026-10-01T00:00:00.000Z');
    expect(facts['Version stages']).toBe('v1: AWSPREVIOUS\nv2: AWSCURRENT');
    expect(plan.notes.join(' ')).not.toContain('force');
    expect(mock.commandCalls(DescribeSecretCommand)).toHaveLength(1);
    mock.restore();
  });
});
