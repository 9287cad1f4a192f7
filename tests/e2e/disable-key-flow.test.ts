/**
 * End to end through Bolt's real HTTP receiver with signed requests: the command → the approval card
 * with the plan → an approver's click → the key disabled in moto → the card updated → the audit chain
 * verifying (through the `quell audit verify` CLI as a process) → undo, approved, restoring both.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IAM_PROPAGATION_MARGIN_MS, revokePolicyName } from '../../src/runbooks/disable-key.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  inlinePolicy,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { SIGNING_SECRET } from '../support/slack-requests.ts';
import {
  BOT_TOKEN,
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunState,
} from '../support/test-quell.ts';

const run = promisify(execFile);

describe('disable-key from Slack to AWS and the audit log', () => {
  let t: TestQuell;
  let iam: IAMClient;
  let keyId: string;
  const accountId = randomAccountId();

  beforeAll(async () => {
    iam = await adminIam(accountId);
    keyId = await createUserWithKey(iam, 'alice');
    t = await startTestQuell({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    iam?.destroy();
  });

  it('plans, asks for approval, disables on one approval, verifies, audits, and undoes', async () => {
    const ack = await t.command(`disable-key ${keyId} reason="key pasted in a public gist"`, 'U0RESP');
    expect(ack.status).toBe(200);
    expect(String(ack.json?.text)).toContain('Planning `disable-key`');

    // The approval card, posted to the channel with the plan.
    await t.slack.waitFor((calls) =>
      calls.some((c) => c.method === 'chat.postMessage' && c.body.channel === INCIDENT),
    );
    const card = t.slack.callsOf('chat.postMessage').find((c) => c.body.channel === INCIDENT);
    const blocks = JSON.stringify(card?.body.blocks);
    expect(blocks).toContain(`prod (${accountId})`);
    expect(blocks).toContain(keyId);
    expect(blocks).toContain('alice');
    expect(blocks).toContain('Last used');
    expect(blocks).toContain('iam:UpdateAccessKey UserName=alice');
    expect(blocks).toContain('iam:PutUserPolicy');
    expect(blocks).toContain('key pasted in a public gist');
    expect(blocks).toContain('<@U0RESP>');
    expect(blocks).toContain('Expires');
    const runRecord = await t.latestRun();
    if (!runRecord) throw new Error('no run');
    expect(runRecord.state).toBe('awaiting_approval');
    // The buttons carry only the run id.
    const buttons = (
      (card?.body.blocks ?? []) as { type: string; elements?: { value?: string; action_id?: string }[] }[]
    )
      .filter((b) => b.type === 'actions')
      .flatMap((b) => b.elements ?? []);
    expect(buttons.map((b) => b.value)).toEqual([runRecord.id, runRecord.id]);
    expect(await keyStatus(iam, 'alice', keyId)).toBe('Active');

    const click = await t.click('quell_approve', runRecord.id, 'U0LEAD1');
    expect(click.status).toBe(200);
    const done = await waitForRunState(t.quell, runRecord.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');

    // AWS changed in moto.
    expect(await keyStatus(iam, 'alice', keyId)).toBe('Inactive');
    const policy = await inlinePolicy(iam, 'alice', revokePolicyName(keyId));
    expect(policy).not.toBeNull();
    const statement = JSON.parse(policy ?? '{}').Statement[0];
    expect(statement.Effect).toBe('Deny');
    // The cutoff is the moment the key read back Inactive plus the propagation margin, after the approval.
    const confirmedAt = (done.result as { execute: { data: { keyConfirmedInactiveAt: string } } }).execute
      .data.keyConfirmedInactiveAt;
    expect(Date.parse(confirmedAt)).toBeGreaterThanOrEqual(done.approvedAt ?? Number.POSITIVE_INFINITY);
    expect(statement.Condition.DateLessThan['aws:TokenIssueTime']).toBe(
      new Date(Date.parse(confirmedAt) + IAM_PROPAGATION_MARGIN_MS).toISOString(),
    );

    // The card was updated with the outcome, and the result went into its thread.
    await t.quell.idle();
    const updates = t.slack.callsOf('chat.update').filter((c) => c.body.ts === done.messageTs);
    expect(updates.some((u) => JSON.stringify(u.body.blocks).includes('Succeeded'))).toBe(true);
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === done.messageTs);
    expect(thread.some((c) => String(c.body.text).startsWith('Done'))).toBe(true);
    // The audit channel got a copy.
    expect(
      t.slack
        .callsOf('chat.postMessage')
        .some((c) => c.body.channel === 'C0AUDIT' && String(c.body.text).includes('run.finished')),
    ).toBe(true);

    // The intent of each mutating call is written before the call's outcome.
    const entries = await t.quell.store.listAudit({ runId: runRecord.id });
    const types = entries.map((e) => `${e.type}:${(e.data as { operation?: string }).operation ?? ''}`);
    expect(types.indexOf('aws.intent:UpdateAccessKey')).toBeGreaterThan(-1);
    expect(types.indexOf('aws.intent:UpdateAccessKey')).toBeLessThan(
      types.indexOf('aws.call:UpdateAccessKey'),
    );
    for (const type of [
      'command.received',
      'plan.created',
      'approval.requested',
      'approval.decision',
      'run.approved',
      'plan.rechecked',
      'execute.started',
      'execute.finished',
      'verify.finished',
      'run.finished',
    ]) {
      expect(entries.map((e) => e.type)).toContain(type);
    }
    const assume = entries.find(
      (e) => e.type === 'aws.call' && (e.data as { operation?: string }).operation === 'AssumeRole',
    );
    expect(assume?.data).toMatchObject({ service: 'sts', account: accountId, outcome: 'ok' });

    // Undo: requested from the card, approved by someone else, restores both.
    await t.click('quell_undo', runRecord.id, 'U0RESP');
    const undo = await (async () => {
      for (let i = 0; i < 200; i++) {
        const [candidate] = await t.quell.store.listRuns({ parentRunId: runRecord.id, limit: 1 });
        if (candidate?.state === 'awaiting_approval') return candidate;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('no undo request appeared');
    })();
    expect(undo.kind).toBe('undo');
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'alice', keyId)).toBe('Active');
    expect(await inlinePolicy(iam, 'alice', revokePolicyName(keyId))).toBeNull();

    // `status` shows the run where it was requested, and nowhere else.
    await t.command(`status ${runRecord.id}`, 'U0OTHER');
    await t.command(`status ${runRecord.id}`, 'U0OTHER', 'C0ELSEWHERE');
    await t.settle();
    const statusReplies = t.slack.responses.filter((r) => r.method === '/response/U0OTHER');
    expect(statusReplies.some((r) => JSON.stringify(r.body.blocks ?? '').includes('Succeeded'))).toBe(true);
    expect(statusReplies.some((r) => String(r.body.text).includes(`No run \`${runRecord.id}\` here`))).toBe(
      true,
    );

    // The chain verifies, checked by the CLI as a separate process.
    await t.quell.idle();
    const verify = await run(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);

    // Nothing secret anywhere: logs, Slack calls, audit entries.
    const everything = [
      t.logLines.join('\n'),
      JSON.stringify(t.slack.calls),
      JSON.stringify(t.slack.responses),
      JSON.stringify(await t.quell.store.listAudit()),
    ].join('\n');
    expect(t.slack.calls.every((c) => c.body.authorized === true)).toBe(true);
    expect(everything).not.toContain(BOT_TOKEN);
    expect(everything).not.toContain(SIGNING_SECRET);
    expect(everything).not.toMatch(
      /"(SecretAccessKey|secretAccessKey|SessionToken|sessionToken)":"(?!\[redacted\])/,
    );
  });
});
