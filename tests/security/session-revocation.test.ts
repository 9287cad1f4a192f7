/**
 * disable-key attacked by the holder of the leaked key, against moto: the approval is visible in the
 * channel, so the attacker mints a long session (GetSessionToken, 36 hours) after it and before the key
 * is turned off. The session deny's `aws:TokenIssueTime` cutoff must come after that session was issued,
 * and after the moment the key read back Inactive (issue 9, item 6). moto does not enforce IAM, so the
 * deny is evaluated here from the policy document read back from moto: a session issued before the
 * cutoff is denied, any other is accepted.
 */
import { CreateAccessKeyCommand, CreateUserCommand, type IAMClient } from '@aws-sdk/client-iam';
import { GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import { disableKey, IAM_PROPAGATION_MARGIN_MS, revokePolicyName } from '../../src/runbooks/disable-key.ts';
import {
  accountConfig,
  adminIam,
  inlinePolicy,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const SESSION_SECONDS = 129_600; // GetSessionToken's longest session for an IAM user: 36 hours

describe("disable-key's session cutoff comes after the key is off (issue 9, item 6)", () => {
  const accountId = randomAccountId();
  let iam: IAMClient;
  let proxy: FaultProxy;
  let t: TestEngine;
  /** Runs after the approval and the recheck, before execute turns the key off (set per test). */
  let beforeExecute: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    iam = await adminIam(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url; // quell's calls go through the recording proxy
    const attacked = {
      ...disableKey,
      recheck: async (ctx, plan) => {
        const material = await disableKey.recheck?.(ctx, plan);
        await beforeExecute?.();
        return material ?? null;
      },
    } satisfies typeof disableKey;
    t = await startTestEngine({
      accounts: [accountConfig('prod', accountId)],
      runbooks: [attacked as AnyRunbook],
    });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    process.env.AWS_ENDPOINT_URL = inject('motoUrl');
    iam?.destroy();
  });

  it('a session minted with the leaked key after the approval and before the key is off: 1 minted, 0 survive the revocation', async () => {
    await iam.send(new CreateUserCommand({ UserName: 'leaky' }));
    const created = await iam.send(new CreateAccessKeyCommand({ UserName: 'leaky' }));
    const keyId = created.AccessKey?.AccessKeyId ?? '';
    const secret = created.AccessKey?.SecretAccessKey ?? '';
    const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };
    const run = await t.engine.start(
      t.engine.prepare('disable-key', { positional: [keyId], options: {} }, requester),
      requester,
    );
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    // The card says where the cutoff will be.
    expect(JSON.stringify(run.plan)).toContain('+ 5 minutes (IAM propagation)');

    // The attacker, straight to moto with the leaked key, once the approval is in and the key still works.
    const minted: Date[] = [];
    beforeExecute = async () => {
      const sts = new STSClient({
        region: 'us-east-1',
        endpoint: inject('motoUrl'),
        credentials: { accessKeyId: keyId, secretAccessKey: secret },
      });
      const out = await sts.send(new GetSessionTokenCommand({ DurationSeconds: SESSION_SECONDS }));
      sts.destroy();
      const expiration = out.Credentials?.Expiration;
      if (!expiration) throw new Error('moto minted no session');
      minted.push(new Date(expiration.getTime() - SESSION_SECONDS * 1000)); // when moto issued it
    };
    const done = await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL).finally(() => {
      beforeExecute = undefined;
    });
    expect(done.state).toBe('succeeded');
    expect(minted).toHaveLength(1);
    expect(await keyStatus(iam, 'leaky', keyId)).toBe('Inactive');

    // The deny as moto has it.
    const policy = JSON.parse((await inlinePolicy(iam, 'leaky', revokePolicyName(keyId))) ?? '{}');
    expect(policy.Statement[0]).toMatchObject({ Effect: 'Deny', Action: '*', Resource: '*' });
    const cutoff = new Date(policy.Statement[0].Condition.DateLessThan['aws:TokenIssueTime']);
    const survivors = minted.filter((issuedAt) => !(issuedAt < cutoff));
    expect(survivors).toHaveLength(0);

    // The cutoff is later than the moment the key was confirmed Inactive: the read-back of the key (a
    // ListAccessKeys after UpdateAccessKey, seen by the proxy) ended before it, by at least the margin.
    const update = proxy.requests.find(
      (r) => r.action === 'UpdateAccessKey' && r.params.AccessKeyId === keyId,
    );
    if (!update) throw new Error('no UpdateAccessKey');
    const readBack = proxy.requests.find(
      (r) => r.action === 'ListAccessKeys' && r.params.UserName === 'leaky' && r.start >= update.end,
    );
    if (!readBack) throw new Error('the key was never read back after UpdateAccessKey');
    const confirmedBy = performance.timeOrigin + readBack.end;
    expect(cutoff.getTime()).toBeGreaterThan(confirmedBy);
    const put = proxy.requests.find((r) => r.action === 'PutUserPolicy' && r.params.UserName === 'leaky');
    expect(put?.start).toBeGreaterThanOrEqual(readBack.end); // the deny is written after the read-back
    const result = (done.result as { execute: { data: { keyConfirmedInactiveAt: string } } }).execute.data;
    const confirmedAt = Date.parse(result.keyConfirmedInactiveAt);
    expect(confirmedAt).toBeGreaterThanOrEqual(performance.timeOrigin + update.end - 5); // clocks: ms rounding
    expect(cutoff.getTime()).toBe(confirmedAt + IAM_PROPAGATION_MARGIN_MS);
    expect(cutoff.getTime()).toBeGreaterThan(done.approvedAt ?? Number.POSITIVE_INFINITY);
  });
});
