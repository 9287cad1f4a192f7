/**
 * Lifting an isolation with fewer approvers than its Undo needs (issue 9, item 10): the Undo of an
 * isolate-vpc run is destructive and needs isolate-vpc's approvals, but `restore-vpc` makes exactly the same
 * change as a runbook of its own. With isolate-vpc requiring 2 and restore-vpc configured to 1, a
 * restore-vpc with one approval must not execute. Counted: approvals given, restore executions (a
 * ReplaceNetworkAclAssociation of the restore run in the audit log, a subnet back in moto).
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requiredApprovals } from '../../src/approvals/approval-policy.ts';
import { ConfigSchema } from '../../src/config.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { adminEc2, createTestVpc, currentAcls } from '../support/network-fixtures.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };

describe('restore-vpc needs the approvals of isolate-vpc’s Undo', () => {
  const accountId = randomAccountId();
  let ec2: EC2Client;
  let t: TestEngine;

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    t = await startTestEngine({
      accounts: [accountConfig('prod', accountId)],
      approvals: { runbooks: { 'isolate-vpc': { required: 2 }, 'restore-vpc': { required: 1 } } },
    });
  });
  afterAll(async () => {
    await t?.close();
    ec2?.destroy();
  });

  it('restore-vpc with 1 approval while isolate-vpc requires 2: 1 approval given, 0 executions', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 3, customAcls: 1 });
    const isolate = await t.engine.start(
      t.engine.prepare('isolate-vpc', { positional: [vpc.vpcId], options: {} }, requester),
      requester,
    );
    if (!isolate) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    await t.engine.decide(isolate.id, 'U0LEAD1', 'approve', CHANNEL);
    expect((await t.engine.decide(isolate.id, 'U0LEAD2', 'approve', CHANNEL)).state).toBe('succeeded');
    const isolated = await currentAcls(ec2, vpc.vpcId);

    const restore = await t.engine.start(
      t.engine.prepare('restore-vpc', { positional: [vpc.vpcId], options: {} }, requester),
      requester,
    );
    if (!restore) throw new Error(`restore not planned: ${t.told.at(-1)?.text}`);
    expect(restore.requiredApprovals).toBe(2);
    const afterOne = await t.engine.decide(restore.id, 'U0LEAD1', 'approve', CHANNEL);
    expect(afterOne.state).toBe('awaiting_approval');
    await t.engine.idle();
    const executions = (await t.store.listAudit({ runId: restore.id })).filter(
      (e) =>
        e.type === 'execute.started' ||
        (e.type === 'aws.call' &&
          (e.data as { operation?: string }).operation === 'ReplaceNetworkAclAssociation'),
    );
    expect(executions).toHaveLength(0);
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(isolated);

    // A second, distinct approver: now it runs, and every subnet is back.
    expect((await t.engine.decide(restore.id, 'U0LEAD3', 'approve', CHANNEL)).state).toBe('succeeded');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
  });

  it('counts restore-vpc approvals from isolate-vpc’s, defaults included, and never fewer than configured', () => {
    const config = (runbooks: Record<string, { required: number }>) =>
      ConfigSchema.parse({
        accounts: [accountConfig('prod', '111111111111')],
        approvals: { approvers: ['U0LEAD1'], runbooks },
        channels: {},
        storage: { url: 'sqlite::memory:' },
      });
    expect(requiredApprovals(config({}), 'restore-vpc', 'mutating')).toBe(2);
    expect(requiredApprovals(config({ 'isolate-vpc': { required: 3 } }), 'restore-vpc', 'mutating')).toBe(3);
    expect(
      requiredApprovals(
        config({ 'isolate-vpc': { required: 1 }, 'restore-vpc': { required: 3 } }),
        'restore-vpc',
        'mutating',
      ),
    ).toBe(3);
    // Everything else is unchanged.
    expect(requiredApprovals(config({}), 'disable-key', 'mutating')).toBe(1);
    expect(requiredApprovals(config({}), 'isolate-vpc', 'destructive')).toBe(2);
  });

  it('counts release-instance approvals from isolate-instance’s the same way', () => {
    const config = (runbooks: Record<string, { required: number }>) =>
      ConfigSchema.parse({
        accounts: [accountConfig('prod', '111111111111')],
        approvals: { approvers: ['U0LEAD1'], runbooks },
        channels: {},
        storage: { url: 'sqlite::memory:' },
      });
    expect(requiredApprovals(config({}), 'release-instance', 'mutating')).toBe(2);
    expect(
      requiredApprovals(config({ 'release-instance': { required: 1 } }), 'release-instance', 'mutating'),
    ).toBe(2);
    expect(
      requiredApprovals(config({ 'isolate-instance': { required: 3 } }), 'release-instance', 'mutating'),
    ).toBe(3);
    expect(requiredApprovals(config({}), 'isolate-instance', 'destructive')).toBe(2);
  });
});
