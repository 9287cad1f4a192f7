/**
 * isolate-vpc and restore-vpc through the engine against moto, with quell's AWS traffic going through a
 * loopback proxy that can fail chosen calls and counts round trips in the waves it forwards: a VPC of several
 * subnets on custom ACLs is isolated (two approvers), verified, and restored from the recorded
 * associations; a failed subnet leaves the run partially applied, Retry finishes it under the same
 * approval, restore-vpc puts everything back; the default VPC is refused without force=true; the critical
 * path takes the same number of round trips for 3 and 12 subnets.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { CreateSubnetCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import { hasQuarantineTag, listSavedAcls, TAG } from '../../src/runbooks/isolate-vpc.ts';
import { createRunLedger } from '../../src/runbooks/run-ledger.ts';
import { buildRunCard } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { ec2Error, type FaultProxy, startFaultProxy, wavesOf } from '../support/fault-proxy.ts';
import { assertIamMatchesCalls } from '../support/iam-usage.ts';
import {
  adminEc2,
  associationOf,
  createTestVpc,
  currentAcls,
  defaultVpcId,
  vpcAcls,
} from '../support/network-fixtures.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('isolate-vpc and restore-vpc through the engine against moto', () => {
  const accountId = randomAccountId();
  let ec2: EC2Client;
  let proxy: FaultProxy;
  let t: TestEngine;
  const runs: RunRecord[] = [];

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url; // quell's clients (and STS) go through the proxy
    t = await startTestEngine({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    process.env.AWS_ENDPOINT_URL = inject('motoUrl');
    ec2?.destroy();
  });

  async function request(runbook: string, positional: string[], options: Record<string, string> = {}) {
    const run = await t.engine.start(
      t.engine.prepare(runbook, { positional, options }, requester),
      requester,
    );
    if (run) runs.push(run);
    return run;
  }

  /** Two distinct approvers (isolate-vpc is destructive: 2 approvals by default). */
  async function approveTwice(runId: string) {
    const first = await t.engine.decide(runId, 'U0LEAD1', 'approve', CHANNEL);
    expect(first.state).toBe('awaiting_approval');
    return t.engine.decide(runId, 'U0LEAD2', 'approve', CHANNEL);
  }

  async function undoOf(runId: string, approvals: number) {
    const undo = await t.engine.requestUndo(runId, requester);
    if (!undo) throw new Error(`no undo: ${t.told.at(-1)?.text}`);
    runs.push(undo);
    expect(undo.state).toBe('awaiting_approval');
    let done = await t.engine.decide(undo.id, 'U0LEAD1', 'approve', CHANNEL);
    if (approvals === 2) done = await t.engine.decide(undo.id, 'U0LEAD3', 'approve', CHANNEL);
    return done;
  }

  it('plans, isolates a VPC of 4 subnets on 3 ACLs behind two approvals, verifies, and undoes from the record', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 4, customAcls: 2 });
    const run = await request('isolate-vpc', [vpc.vpcId], { allow: '10.9.0.0/24', reason: 'crypto-miner' });
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    expect(run.state).toBe('awaiting_approval');
    expect(run.requiredApprovals).toBe(2);

    // The plan names the VPC, every subnet with its current ACL, the instance and ENIs, and what is allowed.
    const view = t.shown.filter((v) => v.run.id === run.id).at(-1);
    if (!view) throw new Error('no card');
    const card = JSON.stringify(buildRunCard(view).blocks);
    for (const text of [
      vpc.vpcId,
      ...vpc.subnetIds,
      ...vpc.customAclIds,
      vpc.defaultAclId,
      vpc.instanceId,
      vpc.extraEniId,
    ]) {
      expect(card).toContain(text);
    }
    expect(card).toContain('only 10.9.0.0/24');
    expect(card).toContain('ec2:CreateNetworkAcl');
    expect(card.match(/ec2:ReplaceNetworkAclAssociation/g)).toHaveLength(4);
    // Nothing changed yet.
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);

    const done = await approveTwice(run.id);
    expect(done.state).toBe('succeeded');

    // moto: every subnet on one new quarantine ACL tagged with the run, with explicit rules both ways.
    const acls = await vpcAcls(ec2, vpc.vpcId);
    const quarantine = acls.filter((a) => hasQuarantineTag(a, vpc.vpcId));
    expect(quarantine).toHaveLength(1);
    const q = quarantine[0];
    if (!q?.NetworkAclId) throw new Error('no quarantine ACL');
    expect(q.Tags).toEqual(expect.arrayContaining([{ Key: TAG.runId, Value: run.id }]));
    const now = await currentAcls(ec2, vpc.vpcId);
    for (const subnetId of vpc.subnetIds) expect(now.get(subnetId)).toBe(q.NetworkAclId);
    const rules = (q.Entries ?? []).map(
      (e) => `${e.Egress ? 'out' : 'in'} ${e.RuleNumber} ${e.RuleAction} ${e.CidrBlock ?? e.Ipv6CidrBlock}`,
    );
    expect(rules.sort()).toEqual(
      [
        'in 100 allow 10.9.0.0/24',
        'in 32765 deny 0.0.0.0/0',
        'in 32766 deny ::/0',
        'out 100 allow 10.9.0.0/24',
        'out 32765 deny 0.0.0.0/0',
        'out 32766 deny ::/0',
      ].sort(),
    );

    // The store holds every previous association, written before the first move was even announced.
    const rows = await listSavedAcls(createRunLedger(t.store), {
      accountId,
      region: 'us-east-1',
      vpcId: vpc.vpcId,
    });
    expect(new Map(rows.map((r) => [r.subnetId, r.previousAclId]))).toEqual(vpc.original);
    expect(rows.every((r) => r.state === 'isolated' && r.quarantineAclId === q.NetworkAclId)).toBe(true);
    const audit = await t.store.listAudit({ runId: run.id });
    const intents = audit.filter(
      (e) =>
        e.type === 'aws.intent' &&
        (e.data as { operation?: string }).operation === 'ReplaceNetworkAclAssociation',
    );
    expect(intents).toHaveLength(4);
    expect(Math.max(...rows.map((r) => r.recordedAt))).toBeLessThanOrEqual(
      Math.min(...intents.map((e) => e.at)),
    );
    // Each mutating call's intent precedes its outcome.
    const kinds = audit.map((e) => `${e.type}:${(e.data as { operation?: string }).operation ?? ''}`);
    for (const op of ['CreateNetworkAcl', 'CreateNetworkAclEntry', 'ReplaceNetworkAclAssociation']) {
      expect(kinds.indexOf(`aws.intent:${op}`)).toBeGreaterThan(-1);
      expect(kinds.indexOf(`aws.intent:${op}`)).toBeLessThan(kinds.indexOf(`aws.call:${op}`));
    }

    // Undo (approval-gated, two approvers for a destructive runbook): everything back, quarantine ACL gone.
    const undone = await undoOf(run.id, 2);
    expect(undone.state).toBe('succeeded');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
    expect((await vpcAcls(ec2, vpc.vpcId)).some((a) => a.NetworkAclId === q.NetworkAclId)).toBe(false);
    const after = await listSavedAcls(createRunLedger(t.store), {
      accountId,
      region: 'us-east-1',
      vpcId: vpc.vpcId,
    });
    expect(after.every((r) => r.state === 'restored')).toBe(true);
    expect((await verifyAuditChain(await t.store.listAudit())).ok).toBe(true);
  });

  it('keeps a run with one failed subnet partially applied, retries it under the same approval, and restore-vpc puts every subnet back', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 4, customAcls: 1 });
    const victim = vpc.subnetIds[2] ?? '';
    const victimAssociation = await associationOf(ec2, vpc.vpcId, victim);
    const run = await request('isolate-vpc', [vpc.vpcId]);
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);

    // One subnet's move fails (a 400 from EC2, which the SDK does not retry).
    let injected = 0;
    proxy.intercept = (req) => {
      if (req.action === 'ReplaceNetworkAclAssociation' && req.params.AssociationId === victimAssociation) {
        injected++;
        return ec2Error('IncorrectState', 'The association is being modified.');
      }
      return undefined;
    };
    const partial = await approveTwice(run.id);
    proxy.intercept = undefined;
    expect(injected).toBe(1);
    expect(partial.state).toBe('partial');

    // Exactly which subnets are isolated and which are not: in the result, in moto, in the store.
    const result = (
      partial.result as {
        execute: {
          summary: string;
          data: {
            isolated: string[];
            failed: { subnetId: string; error: string }[];
            quarantineAclId: string;
          };
        };
      }
    ).execute;
    expect(result.data.isolated.sort()).toEqual(vpc.subnetIds.filter((s) => s !== victim).sort());
    expect(result.data.failed).toEqual([{ subnetId: victim, error: 'IncorrectState' }]);
    expect(result.summary).toContain(`NOT isolated: ${victim} (IncorrectState)`);
    const q = result.data.quarantineAclId;
    const now = await currentAcls(ec2, vpc.vpcId);
    expect(now.get(victim)).toBe(vpc.original.get(victim));
    for (const s of vpc.subnetIds.filter((x) => x !== victim)) expect(now.get(s)).toBe(q);
    const rows = await listSavedAcls(createRunLedger(t.store), {
      accountId,
      region: 'us-east-1',
      vpcId: vpc.vpcId,
      runId: run.id,
    });
    expect(rows.find((r) => r.subnetId === victim)).toMatchObject({
      state: 'failed',
      error: 'IncorrectState',
    });
    expect(t.replies.some((r) => r.runId === run.id && r.text.startsWith('Partially applied'))).toBe(true);

    // The card offers Retry and Undo, with the run id only.
    const card = buildRunCard({
      run: partial,
      decisions: await t.store.listDecisions(run.id),
      runbook: t.engine.runbooks.find((r) => r.id === 'isolate-vpc') as never,
    });
    const buttons = card.blocks
      .filter((b) => b.type === 'actions')
      .flatMap((b) => b.elements as { action_id: string; value: string }[]);
    expect(buttons.map((b) => b.action_id)).toEqual(['quell_retry', 'quell_undo']);
    expect(buttons.every((b) => b.value === run.id)).toBe(true);

    // Only the requester or an approver may retry; someone else is refused and nothing runs.
    await expect(t.engine.retry(run.id, 'U0NOBODY', CHANNEL)).rejects.toThrow(/not an approver/);
    const createsBefore = proxy.requests.filter((r) => r.action === 'CreateNetworkAcl').length;

    // Retry: the recheck sees this run's own moves as unchanged (not superseded), and only the rest moves.
    const movesBefore = proxy.requests.filter((r) => r.action === 'ReplaceNetworkAclAssociation').length;
    const retried = await t.engine.retry(run.id, 'U0RESP', CHANNEL);
    expect(retried.state).toBe('succeeded');
    expect(
      proxy.requests.filter((r) => r.action === 'ReplaceNetworkAclAssociation').length - movesBefore,
    ).toBe(1);
    expect(proxy.requests.filter((r) => r.action === 'CreateNetworkAcl').length).toBe(createsBefore);
    const rechecks = (await t.store.listAudit({ runId: run.id })).filter((e) => e.type === 'plan.rechecked');
    expect(rechecks.map((e) => (e.data as { matches: boolean }).matches)).toEqual([true, true]);
    for (const s of vpc.subnetIds) expect((await currentAcls(ec2, vpc.vpcId)).get(s)).toBe(q);
    // The record of the first failed attempt still holds the original ACL.
    const victimRow = (
      await listSavedAcls(createRunLedger(t.store), { accountId, region: 'us-east-1', vpcId: vpc.vpcId })
    ).find((r) => r.subnetId === victim);
    expect(victimRow).toMatchObject({ previousAclId: vpc.original.get(victim), state: 'isolated' });
    await expect(t.engine.retry(run.id, 'U0RESP', CHANNEL)).rejects.toThrow(/Only a partially applied run/);

    // restore-vpc (mutating, but the approvals of isolate-vpc's Undo: two) puts every subnet back and
    // deletes the quarantine ACL.
    const restore = await request('restore-vpc', [vpc.vpcId]);
    if (!restore) throw new Error(`restore not planned: ${t.told.at(-1)?.text}`);
    expect(restore.requiredApprovals).toBe(2);
    expect((await t.engine.decide(restore.id, 'U0LEAD1', 'approve', CHANNEL)).state).toBe(
      'awaiting_approval',
    );
    const restored = await t.engine.decide(restore.id, 'U0LEAD2', 'approve', CHANNEL);
    expect(restored.state).toBe('succeeded');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
    expect((await vpcAcls(ec2, vpc.vpcId)).filter((a) => hasQuarantineTag(a, vpc.vpcId))).toHaveLength(0);
    // Nothing left to restore: a second restore-vpc is refused at planning.
    expect(await request('restore-vpc', [vpc.vpcId])).toBeUndefined();
    expect(t.told.at(-1)?.text).toMatch(/nothing to restore/i);
  });

  it('supersedes a retry when the VPC changed since the approval (a new subnet appeared)', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 2, customAcls: 1 });
    const victimAssociation = await associationOf(ec2, vpc.vpcId, vpc.subnetIds[1] ?? '');
    const run = await request('isolate-vpc', [vpc.vpcId]);
    if (!run) throw new Error('not planned');
    proxy.intercept = (req) =>
      req.action === 'ReplaceNetworkAclAssociation' && req.params.AssociationId === victimAssociation
        ? ec2Error('IncorrectState', 'busy')
        : undefined;
    expect((await approveTwice(run.id)).state).toBe('partial');
    proxy.intercept = undefined;
    await ec2.send(
      new CreateSubnetCommand({
        VpcId: vpc.vpcId,
        CidrBlock: `${vpc.cidrBase}.99.0/24`,
        AvailabilityZone: 'us-east-1a',
      }),
    );
    const again = await t.engine.retry(run.id, 'U0LEAD1', CHANNEL);
    expect(again.state).toBe('superseded');
    expect(JSON.stringify(again.error)).toContain('subnets');
    // A fresh request with the current plan follows (and the restore path still works for the rest).
    await t.engine.idle();
    const [next] = await t.store.listRuns({ requester: 'U0RESP', limit: 1 });
    expect(next?.id).not.toBe(run.id);
    expect(next?.state).toBe('awaiting_approval');
    if (next) runs.push(next);
  });

  it('refuses the default VPC unless force=true, and says why', async () => {
    const vpcId = await defaultVpcId(ec2);
    expect(await request('isolate-vpc', [vpcId])).toBeUndefined();
    expect(t.told.at(-1)?.text).toMatch(/default VPC.*force=true/s);
    const forced = await request('isolate-vpc', [vpcId], { force: 'true' });
    expect(forced?.state).toBe('awaiting_approval');
    expect(JSON.stringify(forced?.plan)).toContain('forced with `force=true`');
  });

  it('names the missing IAM action and the role when AWS denies a plan read or a move', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 2, customAcls: 1 });
    const denied = (action: string, role: string) =>
      ec2Error(
        'UnauthorizedOperation',
        `You are not authorized to perform this operation. User: arn:aws:sts::${accountId}:assumed-role/${role}/quell-x is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`,
        403,
      );
    // The read role lacks DescribeNetworkAcls: the plan fails and says what to add where.
    proxy.intercept = (req) =>
      req.action === 'DescribeNetworkAcls' ? denied('ec2:DescribeNetworkAcls', 'quell-read') : undefined;
    expect(await request('isolate-vpc', [vpc.vpcId])).toBeUndefined();
    proxy.intercept = undefined;
    expect(t.told.at(-1)?.text).toContain(
      `AWS denied \`ec2:DescribeNetworkAcls\` to \`arn:aws:iam::${accountId}:role/quell-read\``,
    );

    // The respond role is denied one subnet's move: partial, and the summary says which action and role.
    const victim = await associationOf(ec2, vpc.vpcId, vpc.subnetIds[0] ?? '');
    const run = await request('isolate-vpc', [vpc.vpcId]);
    if (!run) throw new Error('not planned');
    proxy.intercept = (req) =>
      req.action === 'ReplaceNetworkAclAssociation' && req.params.AssociationId === victim
        ? denied('ec2:ReplaceNetworkAclAssociation', 'quell-respond')
        : undefined;
    const partial = await approveTwice(run.id);
    proxy.intercept = undefined;
    expect(partial.state).toBe('partial');
    const summary = (partial.result as { execute: { summary: string } }).execute.summary;
    expect(summary).toContain(`NOT isolated: ${vpc.subnetIds[0]} (AccessDenied)`);
    expect(summary).toContain(
      `AWS denied \`ec2:ReplaceNetworkAclAssociation\` to \`arn:aws:iam::${accountId}:role/quell-respond\``,
    );
    // Restore what was moved, so the account is left as found.
    expect((await undoOf(run.id, 2)).state).toBe('succeeded');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
  });

  it('refuses an unknown VPC with a message naming the account and region', async () => {
    expect(await request('isolate-vpc', ['vpc-0123456789abcdef0'])).toBeUndefined();
    expect(t.told.at(-1)?.text).toMatch(/No VPC `vpc-0123456789abcdef0` in account `prod`/);
  });

  it('takes the same number of round trips on the critical path for 3 subnets and for 12', async () => {
    const figures: Record<number, { plan: number; execute: number; requests: number }> = {};
    // The proxy holds requests until none has come for 250 ms and forwards them as one wave: each wave
    // is a round trip quell had to wait for, counted from the proxy's own record.
    proxy.waveSettleMs = 250;
    try {
      for (const n of [3, 12]) {
        const vpc = await createTestVpc(ec2, { subnets: n, customAcls: 2 });
        const planFrom = proxy.requests.length;
        const run = await request('isolate-vpc', [vpc.vpcId]);
        if (!run) throw new Error('not planned');
        const planned = proxy.requests.slice(planFrom).filter((r) => r.action !== 'AssumeRole');
        await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
        // The respond session is assumed while the card waits; a person takes seconds to click, so let it land.
        await waitFor(() =>
          proxy.requests.some(
            (r) =>
              r.action === 'AssumeRole' &&
              r.params.RoleSessionName === `quell-${run.id}` &&
              r.params.RoleArn?.endsWith('role/quell-respond') &&
              r.status === 200,
          ),
        );
        const from = proxy.requests.length;
        const done = await t.engine.decide(run.id, 'U0LEAD2', 'approve', CHANNEL);
        expect(done.state).toBe('succeeded');
        const executed = proxy.requests.slice(from);

        figures[n] = { plan: wavesOf(planned), execute: wavesOf(executed), requests: executed.length };
      }
    } finally {
      proxy.waveSettleMs = 0;
    }
    console.log(`isolate-vpc round trips (waves the proxy forwarded): ${JSON.stringify(figures)}`);
    // Plan: one wave. Execution: recheck, create ACL, its rules, every move, verify — whatever the count.
    expect(figures[3]?.plan).toBe(1);
    expect(figures[12]?.plan).toBe(1);
    expect(figures[3]?.execute).toBe(5);
    expect(figures[12]?.execute).toBe(5);
    expect((figures[12]?.requests ?? 0) - (figures[3]?.requests ?? 0)).toBe(9); // one more move per subnet
  });

  it('calls exactly the IAM actions each runbook declares (from the audit log)', async () => {
    const entries = await t.store.listAudit();
    const isolate = t.engine.runbooks.find((r) => r.id === 'isolate-vpc');
    const restore = t.engine.runbooks.find((r) => r.id === 'restore-vpc');
    if (!isolate || !restore) throw new Error('runbooks missing');
    assertIamMatchesCalls(
      isolate,
      entries,
      runs.filter((r) => r.runbook === 'isolate-vpc'),
      { implied: ['ec2:CreateTags'] },
    );
    assertIamMatchesCalls(
      restore,
      entries,
      runs.filter((r) => r.runbook === 'restore-vpc'),
    );
  });
});
