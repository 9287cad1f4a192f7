/**
 * disable-key through the engine against moto, with the AWS traffic recorded by a loopback proxy: the
 * sessions carry the run's identity, the key is disabled and sessions revoked, undo restores both, and
 * the edge cases (already inactive, temporary keys, unknown keys, several accounts) say what happened.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import { createAuditCallRecorder } from '../../src/audit/record-aws-calls.ts';
import { AwsClientFactory } from '../../src/aws/client-factory.ts';
import { RateLimiters } from '../../src/aws/rate-limits.ts';
import { AwsSessions } from '../../src/aws/sessions.ts';
import { ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { IAM_PROPAGATION_MARGIN_MS, revokePolicyName } from '../../src/runbooks/disable-key.ts';
import { Engine } from '../../src/runbooks/engine/engine.ts';
import type { Requester, RunNotifier, RunView } from '../../src/runbooks/engine/run-notifier.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  inlinePolicy,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { failNext, type ProxiedRequest, queryError, startFaultProxy } from '../support/fault-proxy.ts';

/** The engine's notifier port, recording what people would be shown (the Slack side is tested end to end elsewhere). */
function recordingNotifier() {
  const shown: RunView[] = [];
  const told: { requester: Requester; text: string }[] = [];
  const notifier: RunNotifier = {
    async showRun(view) {
      shown.push(view);
      return view.run.messageTs ?? `${shown.length}.0001`;
    },
    async reply() {},
    async tell(requester, text) {
      told.push({ requester, text });
    },
    async upload() {},
  };
  return { notifier, shown, told };
}

describe('disable-key through the engine against moto', () => {
  const prodId = randomAccountId();
  const devId = randomAccountId();
  let prodIam: IAMClient;
  let devIam: IAMClient;
  let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
  let dir: string;
  let store: SqliteStore;
  let engine: Engine;
  let sessions: AwsSessions;
  let limiters: RateLimiters;
  let seen: ReturnType<typeof recordingNotifier>;
  const requester: Requester = { user: 'U0RESP', channel: 'C0INCIDENT', source: 'slack' };

  beforeAll(async () => {
    prodIam = await adminIam(prodId);
    devIam = await adminIam(devId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url; // quell's clients go through the recording proxy
    dir = mkdtempSync(join(tmpdir(), 'quell-engine-'));
    store = new SqliteStore(`sqlite:${join(dir, 'q.db')}`);
    await store.migrate();
    const config = ConfigSchema.parse({
      aws: { externalId: 'quell-test-external-id' },
      accounts: [accountConfig('prod', prodId), accountConfig('dev', devId)],
      approvals: { approvers: ['U0LEAD1', 'U0LEAD2'] },
      channels: { C0INCIDENT: { runbooks: ['*'], accounts: ['*'] } },
      storage: { url: 'sqlite::memory:' },
    });
    const log = createLogger({ level: 'silent' });
    const audit = new AuditLog(store, log);
    const recorder = createAuditCallRecorder(audit);
    sessions = new AwsSessions(
      { region: 'us-east-1', sessionSeconds: 900, externalId: config.aws.externalId },
      log,
      { recorder },
    );
    limiters = new RateLimiters();
    seen = recordingNotifier();
    engine = new Engine({
      config,
      store,
      audit,
      aws: new AwsClientFactory({ sessions, limiters, recorder }),
      directory: { groupMembers: async () => new Set() },
      notifier: seen.notifier,
      log,
    });
  });
  afterAll(async () => {
    await engine?.idle();
    await limiters?.stop();
    sessions?.destroy();
    await store?.close();
    await proxy?.close();
    prodIam?.destroy();
    devIam?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const assumeCalls = (runId: string): ProxiedRequest[] =>
    proxy.requests.filter((r) => r.action === 'AssumeRole' && r.params.RoleSessionName === `quell-${runId}`);

  it('finds the owning account, disables the key, revokes sessions, and undoes both', async () => {
    const keyId = await createUserWithKey(devIam, 'mallory');
    // No account= and two accounts configured: quell searches both with their read roles.
    const run = await engine.start(
      engine.prepare('disable-key', { positional: [keyId], options: {} }, requester),
      requester,
    );
    expect(run?.state).toBe('awaiting_approval');
    expect(run?.accountAlias).toBe('dev');
    expect(run?.accountId).toBe(devId);
    if (!run) throw new Error('no run');

    const approved = await engine.decide(run.id, 'U0LEAD1', 'approve', 'C0INCIDENT');
    expect(approved.state).toBe('succeeded');
    expect(await keyStatus(devIam, 'mallory', keyId)).toBe('Inactive');
    const policy = JSON.parse((await inlinePolicy(devIam, 'mallory', revokePolicyName(keyId))) ?? '{}');
    expect(policy.Statement[0]).toMatchObject({ Effect: 'Deny', Action: '*', Resource: '*' });
    // The cutoff is the moment the key read back Inactive plus the propagation margin, after the approval.
    const confirmedAt = (approved.result as { execute: { data: { keyConfirmedInactiveAt: string } } }).execute
      .data.keyConfirmedInactiveAt;
    expect(Date.parse(confirmedAt)).toBeGreaterThanOrEqual(approved.approvedAt ?? Number.POSITIVE_INFINITY);
    expect(policy.Statement[0].Condition.DateLessThan['aws:TokenIssueTime']).toBe(
      new Date(Date.parse(confirmedAt) + IAM_PROPAGATION_MARGIN_MS).toISOString(),
    );

    // Every AssumeRole of the run carries its identity: session name, source identity, tags, 900 s, external id.
    const calls = assumeCalls(run.id);
    expect(calls.map((c) => c.params.RoleArn).sort()).toEqual(
      expect.arrayContaining([
        `arn:aws:iam::${devId}:role/quell-read`,
        `arn:aws:iam::${devId}:role/quell-respond`,
        `arn:aws:iam::${prodId}:role/quell-read`,
      ]),
    );
    for (const call of calls) {
      expect(call.params).toMatchObject({
        DurationSeconds: '900',
        SourceIdentity: 'U0RESP',
        ExternalId: 'quell-test-external-id',
        'Tags.member.1.Key': 'quell-run-id',
        'Tags.member.1.Value': run.id,
        'Tags.member.2.Key': 'quell-runbook',
        'Tags.member.2.Value': 'disable-key',
      });
    }
    // The changes were made with the respond role's session, in the key's account.
    const update = proxy.requests.find(
      (r) => r.action === 'UpdateAccessKey' && r.params.AccessKeyId === keyId,
    );
    expect(update?.params.Status).toBe('Inactive');

    const undo = await engine.requestUndo(run.id, requester);
    if (!undo) throw new Error('no undo');
    expect(undo.state).toBe('awaiting_approval');
    // The requester of the undo cannot approve it either.
    await expect(engine.decide(undo.id, 'U0RESP', 'approve', 'C0INCIDENT')).rejects.toThrow(
      /not an approver|own request/,
    );
    expect((await engine.decide(undo.id, 'U0LEAD2', 'approve', 'C0INCIDENT')).state).toBe('succeeded');
    expect(await keyStatus(devIam, 'mallory', keyId)).toBe('Active');
    expect(await inlinePolicy(devIam, 'mallory', revokePolicyName(keyId))).toBeNull();
    // A second undo of the same run is refused.
    await expect(engine.requestUndo(run.id, requester)).rejects.toThrow(/already has an undo/);
    expect(verifyAuditChain(await store.listAudit()).ok).toBe(true);
  });

  it('reports an already-inactive key instead of disabling it again, and undo leaves it inactive', async () => {
    const keyId = await createUserWithKey(prodIam, 'olduser', 'Inactive');
    const firstRequest = proxy.requests.length; // the fixture's own calls may go through the proxy too
    const run = await engine.start(
      engine.prepare('disable-key', { positional: [keyId], options: { account: 'prod' } }, requester),
      requester,
    );
    if (!run) throw new Error('no run');
    const plan = run.plan as { calls: { action: string }[]; notes: string[] };
    expect(plan.calls.map((c) => c.action)).toEqual(['iam:PutUserPolicy']);
    expect(plan.notes.join(' ')).toContain('already Inactive');
    const done = await engine.decide(run.id, 'U0LEAD1', 'approve', 'C0INCIDENT');
    expect(done.state).toBe('succeeded');
    expect(
      proxy.requests
        .slice(firstRequest)
        .filter((r) => r.action === 'UpdateAccessKey' && r.params.AccessKeyId === keyId),
    ).toHaveLength(0);
    const undo = await engine.requestUndo(run.id, requester);
    if (!undo) throw new Error('no undo');
    expect((undo.plan as { calls: { action: string }[] }).calls.map((c) => c.action)).toEqual([
      'iam:DeleteUserPolicy',
    ]);
    await engine.decide(undo.id, 'U0LEAD2', 'approve', 'C0INCIDENT');
    expect(await keyStatus(prodIam, 'olduser', keyId)).toBe('Inactive');
  });

  it('refuses temporary ASIA keys and unknown keys with a reason, changing nothing', async () => {
    const before = proxy.requests.filter((r) => /Update|Put|Delete/.test(r.action)).length;
    await engine.start(
      engine.prepare('disable-key', { positional: ['ASIAIOSFODNN7EXAMPLE'], options: {} }, requester),
      requester,
    );
    await engine.start(
      engine.prepare('disable-key', { positional: ['AKIAIOSFODNN7EXAMPLE'], options: {} }, requester),
      requester,
    );
    const texts = seen.told.map((t) => t.text).join('\n');
    expect(texts).toContain('temporary (ASIA…) session credential');
    expect(texts).toContain(
      'No configured account has access key `AKIAIOSFODNN7EXAMPLE` (searched prod, dev)',
    );
    expect(proxy.requests.filter((r) => /Update|Put|Delete/.test(r.action)).length).toBe(before);
  });

  it('retries throttled calls (the SDK, paced by the limiter) and the run still succeeds', async () => {
    const keyId = await createUserWithKey(prodIam, 'throttled');
    const run = await engine.start(
      engine.prepare('disable-key', { positional: [keyId], options: { account: 'prod' } }, requester),
      requester,
    );
    if (!run) throw new Error('no run');
    failNext(proxy, 'UpdateAccessKey', 2, queryError('Throttling', 'Rate exceeded'));
    const done = await engine.decide(run.id, 'U0LEAD1', 'approve', 'C0INCIDENT');
    expect(done.state).toBe('succeeded');
    expect(await keyStatus(prodIam, 'throttled', keyId)).toBe('Inactive');
    const call = (await store.listAudit({ runId: run.id })).find(
      (e) => e.type === 'aws.call' && (e.data as { operation: string }).operation === 'UpdateAccessKey',
    );
    expect(call?.data).toMatchObject({ outcome: 'ok', attempts: 3 });
  });

  it('names the missing IAM action and the role when AWS denies a call', async () => {
    const keyId = await createUserWithKey(prodIam, 'denied');
    const run = await engine.start(
      engine.prepare('disable-key', { positional: [keyId], options: { account: 'prod' } }, requester),
      requester,
    );
    if (!run) throw new Error('no run');
    failNext(
      proxy,
      'PutUserPolicy',
      1,
      queryError(
        'AccessDenied',
        `User: arn:aws:sts::${prodId}:assumed-role/quell-respond/quell-${run.id} is not authorized to perform: iam:PutUserPolicy on resource: user denied`,
        403,
      ),
    );
    const done = await engine.decide(run.id, 'U0LEAD1', 'approve', 'C0INCIDENT');
    expect(done.state).toBe('failed');
    const summary = JSON.stringify(done.result);
    expect(summary).toContain('Partly applied');
    expect(summary).toContain(
      `AWS denied \`iam:PutUserPolicy\` to \`arn:aws:iam::${prodId}:role/quell-respond\``,
    );
    expect(summary).toContain('quell iam-policy');
    // The key change that was allowed went through and is reported as such.
    expect(await keyStatus(prodIam, 'denied', keyId)).toBe('Inactive');
  });

  it('declares every IAM action it calls', async () => {
    const declared = new Set([
      'iam:GetAccessKeyLastUsed',
      'iam:ListAccessKeys',
      'iam:ListUserPolicies',
      'iam:GetUserPolicy',
      'iam:UpdateAccessKey',
      'iam:PutUserPolicy',
      'iam:DeleteUserPolicy',
      // The evidence before the change.
      'iam:ListAttachedUserPolicies',
      'iam:ListGroupsForUser',
      'cloudtrail:LookupEvents',
    ]);
    const { disableKey } = await import('../../src/runbooks/disable-key.ts');
    const ours = new Set([...disableKey.iam.plan, ...disableKey.iam.execute, ...(disableKey.iam.undo ?? [])]);
    const called = new Set(
      (await store.listAudit())
        .filter((e) => e.type === 'aws.call' && (e.data as { service: string }).service === 'iam')
        .map((e) => `iam:${(e.data as { operation: string }).operation}`),
    );
    for (const action of called) expect(ours.has(action), action).toBe(true);
    expect(ours).toEqual(declared);
  });
});
