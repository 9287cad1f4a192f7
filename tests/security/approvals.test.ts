/**
 * The approval rules, attacked through the real Slack surface (signed requests into Bolt's receiver) and
 * checked against moto and the audit log. Every test counts attempts and acceptances; an acceptance is
 * a recorded decision or an execution (an UpdateAccessKey call in the audit log).
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { startTestQuell, type TestQuell, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

describe('approval rules through the Slack surface', () => {
  let t: TestQuell;
  let iam: IAMClient;
  let clockOffset = 0;
  const accountId = randomAccountId();
  let userSeq = 0;

  beforeAll(async () => {
    iam = await adminIam(accountId);
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        approvals: {
          approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3', 'S0SECLEADS'],
          expiresIn: '15m',
          breakGlass: ['U0ONCALL'],
          runbooks: { 'disable-key': { required: 1 } },
        },
      },
      { now: () => Date.now() + clockOffset },
    );
    t.slack.groups.set(
      'S0SECLEADS',
      Array.from({ length: 60 }, (_, i) => `U0GRP${String(i).padStart(3, '0')}`),
    );
  });
  afterAll(async () => {
    await t?.close();
    iam?.destroy();
  });

  /** A fresh user and key, and a pending disable-key request for it by `requester`. */
  async function pendingRequest(requester: string) {
    const user = `victim${++userSeq}`;
    const keyId = await createUserWithKey(iam, user);
    await t.command(`disable-key ${keyId}`, requester);
    const run = await waitForRunOf(t.quell, requester, ['awaiting_approval', 'plan_failed', 'failed']);
    expect(run.state).toBe('awaiting_approval');
    return { run, user, keyId };
  }

  async function executions(runId: string) {
    const entries = await t.quell.store.listAudit({ runId });
    return entries.filter(
      (e) => e.type === 'aws.call' && (e.data as { operation?: string }).operation === 'UpdateAccessKey',
    ).length;
  }

  it('rejects self-approval: 5 attempts, 0 accepted', async () => {
    const { run, user, keyId } = await pendingRequest('U0LEAD1');
    for (let i = 0; i < 5; i++) expect((await t.click('quell_approve', run.id, 'U0LEAD1')).status).toBe(200);
    await t.settle();
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(0);
    expect((await t.quell.store.getRun(run.id))?.state).toBe('awaiting_approval');
    expect(await keyStatus(iam, user, keyId)).toBe('Active');
    // The requester is told why, privately.
    expect(
      t.slack.responses.some((r) => String(r.body.text).includes('cannot approve or deny your own request')),
    ).toBe(true);
  });

  it('rejects clicks from people who are not approvers: 10 attempts, 0 accepted', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP1');
    for (const clicker of ['U0RANDOM1', 'U0RANDOM2', 'U0INTERN', 'W0GUEST', 'U0RESP2']) {
      await t.click('quell_approve', run.id, clicker);
      await t.click('quell_deny', run.id, clicker);
    }
    await t.settle();
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(0);
    expect((await t.quell.store.getRun(run.id))?.state).toBe('awaiting_approval');
    expect(await keyStatus(iam, user, keyId)).toBe('Active');
    const rejected = (await t.quell.store.listAudit({ runId: run.id })).filter(
      (e) => e.type === 'approval.rejected',
    );
    expect(rejected).toHaveLength(10);
  });

  it('checks user-group membership at click time', async () => {
    const { run } = await pendingRequest('U0RESP3');
    const members = t.slack.groups.get('S0SECLEADS') ?? [];
    t.slack.groups.set(
      'S0SECLEADS',
      members.filter((m) => m !== 'U0GRP001'),
    );
    await t.click('quell_approve', run.id, 'U0GRP001'); // removed from the group just now
    await t.settle();
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(0);
    t.slack.groups.set('S0SECLEADS', members);
    await t.click('quell_approve', run.id, 'U0GRP001'); // back in the group
    expect((await waitForRunState(t.quell, run.id, ['succeeded', 'failed'])).state).toBe('succeeded');
  });

  it('50 concurrent approve clicks execute exactly once', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP4');
    const clickers = Array.from({ length: 50 }, (_, i) =>
      i < 3 ? `U0LEAD${i + 1}` : `U0GRP${String(i).padStart(3, '0')}`,
    );
    const responses = await Promise.all(clickers.map((c) => t.click('quell_approve', run.id, c)));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    await waitForRunState(t.quell, run.id, ['succeeded', 'failed']);
    await t.settle();
    expect(await executions(run.id)).toBe(1);
    const started = (await t.quell.store.listAudit({ runId: run.id })).filter(
      (e) => e.type === 'execute.started',
    );
    expect(started).toHaveLength(1);
    // One decision reached the threshold; the rest were refused as closed (or recorded before it).
    const accepted = (await t.quell.store.listAudit({ runId: run.id })).filter(
      (e) =>
        e.type === 'approval.decision' &&
        ['approved', 'recorded'].includes(String((e.data as { outcome: { kind: string } }).outcome.kind)),
    );
    expect(accepted).toHaveLength(1);
    expect(await keyStatus(iam, user, keyId)).toBe('Inactive');
  });

  it('repeated clicks and Slack retries of the same click execute once', async () => {
    const { run } = await pendingRequest('U0RESP5');
    await Promise.all(Array.from({ length: 10 }, () => t.click('quell_approve', run.id, 'U0LEAD2')));
    await waitForRunState(t.quell, run.id, ['succeeded', 'failed']);
    await t.settle();
    expect(await executions(run.id)).toBe(1);
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(1);
  });

  it('a deny is final: 10 later approvals, 0 accepted, no execution', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP6');
    await t.click('quell_deny', run.id, 'U0LEAD3');
    await waitForRunState(t.quell, run.id, ['denied']);
    for (let i = 0; i < 10; i++)
      await t.click('quell_approve', run.id, i < 2 ? `U0LEAD${i + 1}` : `U0GRP${String(i).padStart(3, '0')}`);
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.state).toBe('denied');
    expect(await executions(run.id)).toBe(0);
    expect(await keyStatus(iam, user, keyId)).toBe('Active');
    expect((await t.quell.store.listDecisions(run.id)).map((d) => d.decision)).toEqual(['deny']);
  });

  it('approve and deny racing never execute after the deny', async () => {
    for (let i = 0; i < 5; i++) {
      const { run } = await pendingRequest(`U0RACE${i}`);
      await Promise.all([
        t.click('quell_approve', run.id, 'U0LEAD1'),
        t.click('quell_deny', run.id, 'U0LEAD2'),
      ]);
      const final = await waitForRunState(t.quell, run.id, ['denied', 'succeeded', 'failed']);
      await t.settle();
      const decisions = await t.quell.store.listDecisions(run.id);
      if (final.state === 'denied') {
        expect(await executions(run.id)).toBe(0);
      } else {
        // The approval committed first; the deny arrived after the run had closed and was refused.
        expect(decisions.map((d) => d.decision)).toEqual(['approve']);
        expect(await executions(run.id)).toBe(1);
      }
    }
  });

  it('clicks after expiry are refused and nothing runs', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP7');
    clockOffset = 16 * 60_000;
    try {
      for (const clicker of ['U0LEAD1', 'U0LEAD2', 'U0LEAD3']) {
        expect((await t.click('quell_approve', run.id, clicker)).status).toBe(200);
      }
      await t.settle();
    } finally {
      clockOffset = 0;
    }
    expect((await t.quell.store.getRun(run.id))?.state).toBe('expired');
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(0);
    expect(await executions(run.id)).toBe(0);
    expect(await keyStatus(iam, user, keyId)).toBe('Active');
    expect(
      t.slack.responses.some((r) => String(r.body.text).includes('expired before it was approved')),
    ).toBe(true);
  });

  it('forged button values: unknown, malformed and other-channel run ids are refused', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP8');
    const rejectedBefore = (await t.quell.store.listAudit()).filter(
      (e) => e.type === 'approval.rejected' && e.actor === 'U0LEAD1',
    ).length;
    const forged = [
      ['rzzzzzzzzzzzz', 'C0INCIDENT'],
      [`r${'a'.repeat(12)}`, 'C0INCIDENT'],
      ["' OR 1=1 --", 'C0INCIDENT'],
      ['x'.repeat(10_000), 'C0INCIDENT'],
      [run.id, 'C0OTHER'], // a real run, clicked from a channel it does not belong to
      [run.id, 'D0DIRECT'],
    ] as const;
    for (const [value, channel] of forged) {
      expect((await t.click('quell_approve', value, 'U0LEAD1', channel)).status).toBe(200);
    }
    await t.settle();
    expect(await t.quell.store.listDecisions(run.id)).toHaveLength(0);
    expect(await keyStatus(iam, user, keyId)).toBe('Active');
    const rejected = (await t.quell.store.listAudit()).filter(
      (e) => e.type === 'approval.rejected' && e.actor === 'U0LEAD1',
    );
    // Exactly one refusal audited per forged click, counted from this test's own clicks.
    expect(rejected.length - rejectedBefore).toBe(forged.length);
  });

  it('re-checks the plan before executing and asks again when the world changed', async () => {
    const { run, user, keyId } = await pendingRequest('U0RESP9');
    // Someone else deactivates the key while the card waits.
    const { UpdateAccessKeyCommand } = await import('@aws-sdk/client-iam');
    await iam.send(new UpdateAccessKeyCommand({ UserName: user, AccessKeyId: keyId, Status: 'Inactive' }));
    await t.click('quell_approve', run.id, 'U0LEAD1');
    const superseded = await waitForRunState(t.quell, run.id, ['superseded', 'succeeded', 'failed']);
    expect(superseded.state).toBe('superseded');
    expect(await executions(run.id)).toBe(0);
    const changed = (await t.quell.store.listAudit({ runId: run.id })).find((e) => e.type === 'plan.changed');
    expect(JSON.stringify(changed?.data)).toContain('status: Active → Inactive');
    // A new request with the new plan (already inactive: only revoke sessions) awaits approval.
    const next = await waitForRunOf(t.quell, 'U0RESP9', ['awaiting_approval']);
    expect(next.id).not.toBe(run.id);
    expect(JSON.stringify(next.plan)).toContain('already Inactive');
  });

  it('break-glass runs immediately and owes a review by someone else', async () => {
    const user = `victim${++userSeq}`;
    const keyId = await createUserWithKey(iam, user);
    await t.command(`disable-key ${keyId} reason="active exfiltration"`, 'U0ONCALL');
    const run = await waitForRunOf(t.quell, 'U0ONCALL', ['succeeded', 'failed']);
    expect(run.state).toBe('succeeded');
    expect(run.breakGlass).toBe(true);
    expect(run.reviewState).toBe('pending');
    expect(await keyStatus(iam, user, keyId)).toBe('Inactive');
    await t.click('quell_review', run.id, 'U0ONCALL'); // not by the requester
    await t.click('quell_review', run.id, 'U0RANDOM1'); // not by a non-approver
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.reviewState).toBe('pending');
    await t.click('quell_review', run.id, 'U0LEAD2');
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.reviewState).toBe('reviewed');
    const types = (await t.quell.store.listAudit({ runId: run.id })).map((e) => e.type);
    expect(types).toContain('run.break_glass');
    expect(types).toContain('run.reviewed');
  });
});
