/**
 * Issue 9.10, tried through Slack as production wires it: a Retry acts under an approval given earlier,
 * so it must still pass the rules at click time (the channel's guardrail, the runbook's requester list)
 * and must not outlive the approval window; and an approval from someone who has since left the approver
 * group must not count toward the quorum. Each attack counts attempts and acceptances (a retry accepted is
 * a `run.retried` entry and the subnet moved in moto; an approval counted is an execution).
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { ec2Error, type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { adminEc2, associationOf, createTestVpc, currentAcls } from '../support/network-fixtures.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

describe('retry and quorum re-check people and rules at click time', () => {
  let t: TestQuell;
  let ec2: EC2Client;
  let iam: IAMClient;
  let proxy: FaultProxy;
  let offset = 0;
  const now = () => Date.now() + offset;
  const accountId = randomAccountId();

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    iam = await adminIam(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL_EC2 = proxy.url;
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        approvals: {
          approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3', 'S0SECLEADS'],
          expiresIn: '15m',
          runbooks: {
            'isolate-vpc': { required: 2, requesters: ['S0RESPONDERS'] },
            'disable-key': { required: 2 },
          },
        },
      },
      { now },
    );
    t.slack.groups.set('S0RESPONDERS', ['U0RESP1', 'U0RESP2', 'U0RESP3', 'U0RESP4']);
    t.slack.groups.set('S0SECLEADS', ['U0GRP001', 'U0GRP002']);
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    ec2?.destroy();
    iam?.destroy();
    delete process.env.AWS_ENDPOINT_URL_EC2;
  });

  /** An isolate-vpc run of `requester` left partially applied (one subnet refused), and that subnet. */
  async function partialRun(requester: string): Promise<{ run: RunRecord; vpcId: string; victim: string }> {
    const vpc = await createTestVpc(ec2, { subnets: 2, customAcls: 1 });
    const victim = vpc.subnetIds[1] ?? '';
    const association = await associationOf(ec2, vpc.vpcId, victim);
    proxy.intercept = (req) =>
      req.action === 'ReplaceNetworkAclAssociation' && req.params.AssociationId === association
        ? ec2Error('IncorrectState', 'The association is being changed.')
        : undefined;
    await t.command(`isolate-vpc ${vpc.vpcId}`, requester);
    const waiting = await waitForRunOf(t.quell, requester, ['awaiting_approval']);
    await t.click('quell_approve', waiting.id, 'U0LEAD1');
    await t.settle();
    await t.click('quell_approve', waiting.id, 'U0LEAD2');
    const run = await waitForRunState(t.quell, waiting.id, ['succeeded', 'partial', 'failed']);
    proxy.intercept = undefined;
    expect(run.state).toBe('partial');
    await t.settle();
    expect((await currentAcls(ec2, vpc.vpcId)).get(victim)).toBe(vpc.original.get(victim));
    return { run, vpcId: vpc.vpcId, victim };
  }

  /** What became of a run's retries: accepted (`run.retried`), refused (`retry.rejected`), its state. */
  async function retriesOf(run: RunRecord) {
    const entries = await t.quell.store.listAudit({ runId: run.id });
    return {
      retried: entries.filter((e) => e.type === 'run.retried').length,
      rejected: entries.filter((e) => e.type === 'retry.rejected').length,
      state: (await t.quell.store.getRun(run.id))?.state,
    };
  }

  it('refuses a retry the rules no longer allow at click time: 3 attempts, 0 accepted, then an allowed one runs', async () => {
    const byRequester = await partialRun('U0RESP1');
    const byChannel = await partialRun('U0RESP2');
    const byAge = await partialRun('U0RESP3');
    const originals = new Map<string, string | undefined>();
    for (const target of [byRequester, byChannel, byAge])
      originals.set(target.run.id, (await currentAcls(ec2, target.vpcId)).get(target.victim));

    // 1. The requester has left the runbook's requester group since the run was approved.
    t.slack.groups.set('S0RESPONDERS', ['U0RESP2', 'U0RESP3', 'U0RESP4']);
    await t.click('quell_retry', byRequester.run.id, 'U0LEAD3');
    await t.settle();
    t.slack.groups.set('S0RESPONDERS', ['U0RESP1', 'U0RESP2', 'U0RESP3', 'U0RESP4']);

    // 2. The channel's guardrail no longer allows isolate-vpc here (the configuration changed).
    const guardrail = t.config.channels[INCIDENT];
    if (!guardrail) throw new Error('no guardrail');
    const allowed = guardrail.runbooks;
    guardrail.runbooks = ['trail', 'drift'];
    await t.click('quell_retry', byChannel.run.id, 'U0LEAD3');
    await t.settle();
    guardrail.runbooks = allowed;

    // 3. The approval is older than the approval window (15 minutes).
    offset += 16 * 60_000;
    await t.click('quell_retry', byAge.run.id, 'U0LEAD3');
    await t.settle();
    offset -= 16 * 60_000;

    const outcomes = [];
    for (const target of [byRequester, byChannel, byAge]) {
      const seen = await retriesOf(target.run);
      const acl = (await currentAcls(ec2, target.vpcId)).get(target.victim);
      outcomes.push({ ...seen, moved: acl !== originals.get(target.run.id) });
    }
    // Accepted: 0 of 3. Each refusal is audited, and said why.
    expect(outcomes.map((o) => o.retried)).toEqual([0, 0, 0]);
    expect(outcomes.map((o) => o.moved)).toEqual([false, false, false]);
    expect(outcomes.map((o) => o.state)).toEqual(['partial', 'partial', 'partial']);
    expect(outcomes.map((o) => o.rejected)).toEqual([1, 1, 1]);
    const replies = t.slack.responses.map((r) => String(r.body.text));
    expect(replies.some((text) => text.includes('approvals.runbooks.isolate-vpc.requesters'))).toBe(true);
    expect(replies.some((text) => text.includes('may not run in this channel'))).toBe(true);
    expect(replies.some((text) => text.includes('older than the approval window'))).toBe(true);

    // With the rules as they were, the same retry is accepted and finishes the run.
    await t.click('quell_retry', byRequester.run.id, 'U0LEAD3');
    expect((await waitForRunState(t.quell, byRequester.run.id, ['succeeded', 'failed'])).state).toBe(
      'succeeded',
    );
  });

  it('does not count an approval from someone who has left the approver group: 1 attempt, 0 counted', async () => {
    const keyId = await createUserWithKey(iam, 'quorum-victim');
    await t.command(`disable-key ${keyId} reason="quorum"`, 'U0RESP4');
    const waiting = await waitForRunOf(t.quell, 'U0RESP4', ['awaiting_approval']);
    await t.click('quell_approve', waiting.id, 'U0GRP001'); // an approver through S0SECLEADS, then
    await t.settle();
    t.slack.groups.set('S0SECLEADS', ['U0GRP002']); // U0GRP001 leaves the group
    await t.click('quell_approve', waiting.id, 'U0LEAD1'); // the second approval: 1 of 2 still counts
    await t.settle();

    const afterSecond = await t.quell.store.getRun(waiting.id);
    const started = async () =>
      (await t.quell.store.listAudit({ runId: waiting.id })).filter((e) => e.type === 'execute.started')
        .length;
    expect(afterSecond?.state).toBe('awaiting_approval');
    expect(await started()).toBe(0);
    expect(await keyStatus(iam, 'quorum-victim', keyId)).toBe('Active');
    const decision = (await t.quell.store.listAudit({ runId: waiting.id })).findLast(
      (e) => e.type === 'approval.decision',
    );
    expect(decision?.data).toMatchObject({
      outcome: { kind: 'recorded', approvals: 1, required: 2 },
      notCounted: ['U0GRP001'],
    });

    // A second approver who still is one completes the quorum; the run executes once.
    await t.click('quell_approve', waiting.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, waiting.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await started()).toBe(1);
    expect(await keyStatus(iam, 'quorum-victim', keyId)).toBe('Inactive');
    t.slack.groups.set('S0SECLEADS', ['U0GRP001', 'U0GRP002']);
  });
});
