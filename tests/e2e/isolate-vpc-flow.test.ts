/**
 * isolate-vpc end to end through Bolt's real HTTP receiver with signed requests: the command → the
 * approval card with the plan → the requester cannot approve, two distinct approvers must → every subnet
 * on the quarantine ACL in moto → the result in the thread → Undo (approved again) → every subnet back →
 * the audit chain verifying (the CLI, as a process). A failed subnet shows the run as partially applied
 * with Retry and Undo, and Retry from the card finishes it. Hostile input is refused before anything runs.
 *
 * EC2 traffic goes through a loopback proxy in front of moto (AWS_ENDPOINT_URL_EC2) that can fail one
 * ReplaceNetworkAclAssociation; STS is moto directly.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasQuarantineTag } from '../../src/runbooks/isolate-vpc.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import { ec2Error, type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { adminEc2, associationOf, createTestVpc, currentAcls, vpcAcls } from '../support/network-fixtures.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const exec = promisify(execFile);

describe('isolate-vpc from Slack to EC2 and back', () => {
  let t: TestQuell;
  let ec2: EC2Client;
  let proxy: FaultProxy;
  const accountId = randomAccountId();

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL_EC2 = proxy.url;
    t = await startTestQuell({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    ec2?.destroy();
    delete process.env.AWS_ENDPOINT_URL_EC2;
  });

  const cardOf = (run: RunRecord): SlackCall | undefined =>
    t.slack
      .callsOf('chat.postMessage')
      .find((c) => c.body.channel === INCIDENT && JSON.stringify(c.body.blocks).includes(run.id));
  const lastUpdate = (run: RunRecord): SlackCall | undefined =>
    t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === run.messageTs)
      .at(-1);
  const buttonsOf = (call: SlackCall | undefined) =>
    ((call?.body.blocks ?? []) as Block[])
      .filter((b) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string }[]);
  const thread = (run: RunRecord) =>
    t.slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts === run.messageTs)
      .map((c) => String(c.body.text));

  async function undoRequestOf(parentId: string): Promise<RunRecord> {
    for (let i = 0; i < 400; i++) {
      const [undo] = await t.quell.store.listRuns({ parentRunId: parentId, limit: 1 });
      if (undo && undo.state !== 'planning') return undo;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('no undo request appeared');
  }

  it('command → plan card → two approvers (not the requester) → isolated → thread → Undo → restored → chain verifies', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 3, customAcls: 1 });
    const ack = await t.command(
      `isolate-vpc ${vpc.vpcId} allow=10.9.0.0/24 reason="beaconing to a known C2"`,
      'U0LEAD3',
    );
    expect(ack.status).toBe(200);
    expect(ack.json?.response_type).toBe('ephemeral');
    expect(String(ack.json?.text)).toContain('Planning `isolate-vpc`');
    const run = await waitForRunOf(t.quell, 'U0LEAD3', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    await t.settle();

    // The card shows the plan: the VPC, each subnet and its ACL, the instance, what stays allowed, 0/2.
    const card = cardOf(run);
    const blocks = JSON.stringify(card?.body.blocks);
    for (const text of [
      vpc.vpcId,
      ...vpc.subnetIds,
      ...vpc.customAclIds,
      vpc.instanceId,
      'only 10.9.0.0/24',
      'beaconing to a known C2',
    ]) {
      expect(blocks).toContain(text);
    }
    expect(blocks).toContain('Approvals:* 0/2');
    expect(buttonsOf(card).map((b) => [b.action_id, b.value])).toEqual([
      ['quell_approve', run.id],
      ['quell_deny', run.id],
    ]);

    // The requester (an approver too) cannot approve their own request; one approver is not enough; the
    // second distinct one runs it.
    await t.click('quell_approve', run.id, 'U0LEAD3');
    await t.settle();
    expect(
      t.slack.responses.some((r) => String(r.body.text).includes('cannot approve or deny your own request')),
    ).toBe(true);
    await t.click('quell_approve', run.id, 'U0LEAD1');
    await t.settle();
    const waiting = await t.quell.store.getRun(run.id);
    expect(waiting?.state).toBe('awaiting_approval');
    if (!waiting) throw new Error('run vanished');
    expect(JSON.stringify(lastUpdate(waiting)?.body.blocks)).toContain('Approvals:* 1/2');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
    await t.click('quell_approve', run.id, 'U0LEAD2');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
    expect(done.state).toBe('succeeded');
    await t.settle();

    const quarantine = (await vpcAcls(ec2, vpc.vpcId)).find((a) => hasQuarantineTag(a, vpc.vpcId));
    for (const s of vpc.subnetIds)
      expect((await currentAcls(ec2, vpc.vpcId)).get(s)).toBe(quarantine?.NetworkAclId);
    expect(thread(done).some((text) => text.startsWith(`Done: Isolated 3 subnet(s) of ${vpc.vpcId}`))).toBe(
      true,
    );
    expect(JSON.stringify(lastUpdate(done)?.body.blocks)).toContain('Succeeded');
    expect(buttonsOf(lastUpdate(done)).map((b) => b.action_id)).toEqual(['quell_undo']);

    // Undo from the card: a new approval-gated run (two approvers again), every subnet back, ACL deleted.
    await t.click('quell_undo', run.id, 'U0LEAD3');
    const undo = await undoRequestOf(run.id);
    expect(undo.state).toBe('awaiting_approval');
    await t.click('quell_approve', undo.id, 'U0LEAD1');
    await t.settle();
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'partial', 'failed'])).state).toBe(
      'succeeded',
    );
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
    expect((await vpcAcls(ec2, vpc.vpcId)).some((a) => hasQuarantineTag(a, vpc.vpcId))).toBe(false);

    await t.settle();
    const verify = await exec(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);
    const audit = await t.quell.store.listAudit({ runId: run.id });
    expect(audit.filter((e) => e.type === 'approval.decision').map((e) => e.actor)).toEqual([
      'U0LEAD3',
      'U0LEAD1',
      'U0LEAD2',
    ]);
  });

  it('shows a run with a failed subnet as partially applied, with Retry and Undo; Retry from the card finishes it', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 3, customAcls: 1 });
    const victim = vpc.subnetIds[1] ?? '';
    const association = await associationOf(ec2, vpc.vpcId, victim);
    proxy.intercept = (req) =>
      req.action === 'ReplaceNetworkAclAssociation' && req.params.AssociationId === association
        ? ec2Error('IncorrectState', 'The association is being changed.')
        : undefined;
    await t.command(`isolate-vpc ${vpc.vpcId}`, 'U0RESP2');
    const run = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
    await t.click('quell_approve', run.id, 'U0LEAD1');
    await t.settle();
    await t.click('quell_approve', run.id, 'U0LEAD2');
    const partial = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
    proxy.intercept = undefined;
    expect(partial.state).toBe('partial');
    await t.settle();

    const card = JSON.stringify(lastUpdate(partial)?.body.blocks);
    expect(card).toContain('Partially applied');
    expect(card).toContain(`NOT isolated: ${victim} (IncorrectState)`);
    expect(buttonsOf(lastUpdate(partial)).map((b) => [b.action_id, b.value])).toEqual([
      ['quell_retry', run.id],
      ['quell_undo', run.id],
    ]);
    expect(thread(partial).some((text) => text.startsWith('Partially applied'))).toBe(true);
    expect((await currentAcls(ec2, vpc.vpcId)).get(victim)).toBe(vpc.original.get(victim));

    // Someone who is neither the requester nor an approver cannot retry.
    await t.click('quell_retry', run.id, 'U0STRANGER');
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.state).toBe('partial');
    expect(t.slack.responses.some((r) => String(r.body.text).includes('not an approver'))).toBe(true);

    await t.click('quell_retry', run.id, 'U0LEAD3');
    const retried = await waitForRunState(t.quell, run.id, ['succeeded', 'failed', 'superseded']);
    expect(retried.state).toBe('succeeded');
    const now = await currentAcls(ec2, vpc.vpcId);
    expect(new Set(vpc.subnetIds.map((s) => now.get(s))).size).toBe(1);
    await t.settle();
    expect(thread(retried).some((text) => text.startsWith('Done: Isolated 3 subnet(s)'))).toBe(true);
    const retriedBy = (await t.quell.store.listAudit({ runId: run.id })).find(
      (e) => e.type === 'run.retried',
    );
    expect(retriedBy?.actor).toBe('U0LEAD3');
  });

  it('refuses hostile or malformed input in the acknowledgement, and nothing runs', async () => {
    const before = (await t.quell.store.listAudit()).length;
    const runsBefore = (await t.quell.store.listRuns({ limit: 100 })).length;
    for (const text of [
      'isolate-vpc vpc-xyz',
      'isolate-vpc vpc-0abc1234 allow=10.0.0.0/33',
      'isolate-vpc vpc-0abc1234 allow=300.0.0.0/8',
      'isolate-vpc vpc-0abc1234 allow=0.0.0.0/0',
      'isolate-vpc vpc-0abc1234 account="prod; rm -rf /"',
      'isolate-vpc <!channel> <@U0LEAD1>',
      'restore-vpc vpc-0abc1234 force=true',
      'rotate-secret "prod; rm -rf /"',
      `rotate-secret ${'x'.repeat(900)}$`,
    ]) {
      const res = await t.command(text, 'U0FUZZ');
      expect(res.status).toBe(200);
      expect(res.json?.response_type).toBe('ephemeral');
      expect(String(res.json?.text), text).toContain('That did not run');
      expect(String(res.json?.text)).not.toMatch(/<!channel>|<@U0LEAD1>/);
    }
    await t.settle();
    expect((await t.quell.store.listRuns({ limit: 100 })).length).toBe(runsBefore);
    const after = (await t.quell.store.listAudit()).slice(before);
    expect(after.filter((e) => e.type.startsWith('aws.') || e.type === 'command.received')).toEqual([]);
  });
});
