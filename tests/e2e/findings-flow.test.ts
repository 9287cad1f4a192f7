/**
 * Findings into the channel, end to end: EventBridge-shaped GuardDuty and Security Hub events on a moto
 * SQS queue → quell (as production builds it, polling the queue) → a card in the findings channel of the
 * fake Slack → the message deleted only once the card is posted. Duplicates give one card, the severity
 * filter holds, Slack refusing the card keeps the message until a later delivery posts it (once), poison
 * goes to the dead-letter queue and the audit channel, and a card's button starts disable-key (or a
 * stand-in registered under isolate-instance / revoke-role-sessions) through the same approvals.
 */
import { randomUUID } from 'node:crypto';
import type { IAMClient } from '@aws-sdk/client-iam';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import { asffInstance, asffRole, guardDutyKeyEvent, securityHubEvent } from '../support/findings-fixtures.ts';
import { isolateInstanceStandIn, revokeRoleSessionsStandIn } from '../support/fixtures/finding-runbooks.ts';
import { INCIDENT, startTestQuell, type TestQuell, waitForRunOf } from '../support/test-quell.ts';

const FINDINGS = 'C0FINDINGS';
const STAND_INS = [isolateInstanceStandIn, revokeRoleSessionsStandIn];

/** Waits (bounded) until `check` resolves true. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('security findings from an SQS queue into the channel', () => {
  let t: TestQuell;
  let sqs: SQSClient;
  let iam: IAMClient;
  let queueUrl: string;
  let dlqUrl: string;
  let keyId: string;
  const accountId = randomAccountId();

  const send = (body: unknown) =>
    sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    );
  /** Messages on the queue, visible or in flight. */
  const onQueue = async (url: string) => {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };
  /** chat.postMessage calls to the findings channel about `findingId` (posted or refused). */
  const cardCalls = (findingId: string): SlackCall[] =>
    t.slack
      .callsOf('chat.postMessage')
      .filter(
        (c) =>
          c.body.channel === FINDINGS &&
          !c.body.thread_ts &&
          JSON.stringify(c.body.blocks ?? '').includes(findingId),
      );
  const buttonsOf = (call: SlackCall | undefined) =>
    ((call?.body.blocks ?? []) as Block[]).flatMap((b) =>
      b.accessory ? [b.accessory as { action_id: string; value: string }] : [],
    );
  const auditOf = async (type: string) => (await t.quell.store.listAudit()).filter((e) => e.type === type);

  beforeAll(async () => {
    iam = await adminIam(accountId);
    keyId = await createUserWithKey(iam, 'mallory');
    sqs = new SQSClient({ region: 'us-east-1' });
    const suffix = randomUUID().slice(0, 8);
    dlqUrl =
      (await sqs.send(new CreateQueueCommand({ QueueName: `quell-findings-dlq-${suffix}` }))).QueueUrl ?? '';
    queueUrl =
      (await sqs.send(new CreateQueueCommand({ QueueName: `quell-findings-${suffix}` }))).QueueUrl ?? '';
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        channels: {
          [INCIDENT]: { runbooks: ['*'], accounts: ['*'] },
          [FINDINGS]: { runbooks: ['*'], accounts: ['*'] },
        },
        findings: {
          queueUrl,
          region: 'us-east-1',
          channel: FINDINGS,
          minSeverity: 'medium',
          dlqUrl,
          pollSeconds: 1,
          visibilitySeconds: 2,
        },
      },
      {
        runbooks: [...RUNBOOKS.filter((r) => !STAND_INS.some((s) => s.id === r.id)), ...STAND_INS],
      },
    );
  });
  afterAll(async () => {
    await t?.close();
    sqs?.destroy();
    iam?.destroy();
  });

  it('posts a GuardDuty access-key finding as an escaped card with a Disable button, then deletes the message', async () => {
    const findingId = `gd-key-${randomUUID()}`;
    await send(
      guardDutyKeyEvent({
        findingId,
        accountId,
        accessKeyId: keyId,
        userName: 'mallory',
        title: 'Key used <!channel> <@U0ADMIN> <https://evil.example|click here>',
      }),
    );
    await until('the card is posted', () => cardCalls(findingId).length > 0);
    await until('the message is deleted', async () => (await onQueue(queueUrl)) === 0);
    const [card] = cardCalls(findingId);
    const blocks = JSON.stringify(card?.body.blocks);
    expect(blocks).toContain('&lt;!channel&gt;');
    expect(blocks).not.toContain('<!channel>');
    expect(blocks).not.toContain('<@U0ADMIN>');
    expect(blocks).not.toContain('<https://evil.example');
    expect(String(card?.body.text)).not.toContain('<!channel>');
    expect(blocks).toContain(`prod (${accountId})`);
    expect(blocks).toContain('HIGH (8)');
    // One button, carrying only the finding's reference and the resource's index.
    const buttons = buttonsOf(card);
    expect(buttons).toHaveLength(1);
    expect(buttons[0]?.action_id).toBe('quell_sf_disable_key');
    expect(buttons[0]?.value).toMatch(/^f[0-9a-f]{20}\.0$/);
    expect(buttons[0]?.value).not.toContain(keyId);
    const posted = await auditOf('finding.posted');
    expect(posted.map((e) => (e.data as { findingId: string }).findingId)).toContain(findingId);
    await t.settle();
    expect(
      t.slack
        .callsOf('chat.postMessage')
        .some((c) => c.body.channel === 'C0AUDIT' && String(c.body.text).includes('finding.posted')),
    ).toBe(true);
  });

  it('posts one card for a finding delivered three times', async () => {
    const findingId = `gd-dup-${randomUUID()}`;
    const event = guardDutyKeyEvent({ findingId, accountId, accessKeyId: keyId, userName: 'mallory' });
    await Promise.all([send(event), send(event)]);
    await until('the card is posted', () => cardCalls(findingId).length > 0);
    await send({ ...event, time: '2026-11-23T10:30:00Z' }); // GuardDuty republishes an updated finding
    await until('every copy is deleted', async () => (await onQueue(queueUrl)) === 0);
    expect(cardCalls(findingId)).toHaveLength(1);
  });

  it('leaves out findings below findings.minSeverity and closed ones, and deletes their messages', async () => {
    const low = `gd-low-${randomUUID()}`;
    const info = `sh-info-${randomUUID()}`;
    const resolved = `sh-resolved-${randomUUID()}`;
    const medium = `gd-medium-${randomUUID()}`;
    await send(
      guardDutyKeyEvent({ findingId: low, accountId, accessKeyId: keyId, userName: 'mallory', severity: 2 }),
    );
    await send(securityHubEvent({ findingId: info, accountId, label: 'INFORMATIONAL', resources: [] }));
    await send(
      securityHubEvent({
        findingId: resolved,
        accountId,
        label: 'HIGH',
        resources: [],
        workflowStatus: 'RESOLVED',
      }),
    );
    await send(
      guardDutyKeyEvent({
        findingId: medium,
        accountId,
        accessKeyId: keyId,
        userName: 'mallory',
        severity: 4,
      }),
    );
    await until('the medium finding is posted', () => cardCalls(medium).length > 0);
    await until('every message is deleted', async () => (await onQueue(queueUrl)) === 0);
    expect(cardCalls(low)).toEqual([]);
    expect(cardCalls(info)).toEqual([]);
    expect(cardCalls(resolved)).toEqual([]);
    expect(cardCalls(medium)).toHaveLength(1);
  });

  it('keeps the message while Slack refuses the card, and posts it once on a later delivery', async () => {
    const findingId = `gd-refused-${randomUUID()}`;
    let refused = 0;
    t.slack.fail = (method, body) =>
      method === 'chat.postMessage' && JSON.stringify(body.blocks ?? '').includes(findingId) && refused++ < 2
        ? 'internal_error'
        : undefined;
    try {
      await send(guardDutyKeyEvent({ findingId, accountId, accessKeyId: keyId, userName: 'mallory' }));
      await until('Slack refused the card once', () => refused >= 1);
      expect(await onQueue(queueUrl)).toBe(1); // still there, invisible until its timeout
      await until(
        'Slack refused it twice, then took it',
        () => refused >= 3 && cardCalls(findingId).length === 3,
      );
      await until('the message is deleted', async () => (await onQueue(queueUrl)) === 0);
    } finally {
      t.slack.fail = undefined;
    }
    // Three attempts, one card: the two refused ones left no record of a posted card.
    expect(cardCalls(findingId)).toHaveLength(3);
    const posted = (await auditOf('finding.posted')).filter(
      (e) => (e.data as { findingId: string }).findingId === findingId,
    );
    expect(posted).toHaveLength(1);
  });

  it('sends poison to the dead-letter queue and the audit channel, and never retries it', async () => {
    const before = (await auditOf('finding.poisoned')).length;
    const notJson = `not json {${randomUUID()}`;
    const otherEvent = JSON.stringify({
      version: '0',
      'detail-type': 'AWS API Call via CloudTrail',
      source: 'aws.iam',
      detail: { eventName: 'CreateUser' },
    });
    const noAccount = JSON.stringify({
      'detail-type': 'GuardDuty Finding',
      source: 'aws.guardduty',
      detail: { id: 'x', severity: 8 },
    });
    await send(notJson);
    await send(otherEvent);
    await send(noAccount);
    await until(
      'three poison entries',
      async () => (await auditOf('finding.poisoned')).length === before + 3,
    );
    await until('the queue is empty', async () => (await onQueue(queueUrl)) === 0);
    const dead = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    expect((dead.Messages ?? []).map((m) => m.Body).sort()).toEqual([notJson, otherEvent, noAccount].sort());
    for (const m of dead.Messages ?? [])
      expect(m.MessageAttributes?.['quell-reason']?.StringValue).toBeTruthy();
    const entries = (await auditOf('finding.poisoned')).slice(before);
    expect(entries.map((e) => (e.data as { reason: string }).reason)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('not JSON'),
        expect.stringContaining('unknown event type "AWS API Call via CloudTrail"'),
        expect.stringContaining('not a GuardDuty finding event'),
      ]),
    );
    await t.settle();
    expect(
      t.slack
        .callsOf('chat.postMessage')
        .filter((c) => c.body.channel === 'C0AUDIT' && String(c.body.text).includes('finding.poisoned')),
    ).toHaveLength(before + 3);
    // Nothing of them reached the findings channel.
    expect(t.slack.callsOf('chat.postMessage').some((c) => JSON.stringify(c.body).includes(notJson))).toBe(
      false,
    );
  });

  it("starts disable-key from the card's button, awaiting approval, with the key from the finding", async () => {
    const findingId = `gd-click-${randomUUID()}`;
    await send(guardDutyKeyEvent({ findingId, accountId, accessKeyId: keyId, userName: 'mallory' }));
    await until('the card is posted', () => cardCalls(findingId).length > 0);
    const [button] = buttonsOf(cardCalls(findingId)[0]);
    if (!button) throw new Error('no button');
    const runsBefore = (await t.quell.store.listRuns({ limit: 1000 })).length;

    // Forged or misplaced clicks start nothing.
    await t.click('quell_sf_disable_key', 'f00000000000000000000.0', 'U0MALLORY', FINDINGS);
    await t.click('quell_sf_disable_key', button.value, 'U0MALLORY', INCIDENT);
    await t.click('quell_sf_disable_key', button.value.replace(/\.0$/, '.3'), 'U0MALLORY', FINDINGS);
    await t.click('quell_sf_isolate_instance', button.value, 'U0MALLORY', FINDINGS);
    await t.settle();
    expect((await t.quell.store.listRuns({ limit: 1000 })).length).toBe(runsBefore);
    const told = t.slack.responses.filter((r) => r.method.endsWith('/U0MALLORY'));
    expect(told).toHaveLength(4);
    expect(told.every((r) => String(r.body.text).includes('not known in this channel'))).toBe(true);

    await t.click('quell_sf_disable_key', button.value, 'U0RESP', FINDINGS);
    const run = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed', 'failed']);
    expect(run).toMatchObject({
      state: 'awaiting_approval',
      runbook: 'disable-key',
      requester: 'U0RESP',
      channel: FINDINGS,
      accountAlias: 'prod',
    });
    expect(JSON.stringify(run.input)).toContain(keyId);
    expect(run.reason).toContain('UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS');
    expect(await keyStatus(iam, 'mallory', keyId)).toBe('Active'); // nothing happens before approval
    await t.settle();
    const approvalCard = t.slack
      .callsOf('chat.postMessage')
      .find((c) => c.body.channel === FINDINGS && JSON.stringify(c.body.blocks ?? '').includes(run.id));
    expect(JSON.stringify(approvalCard?.body.blocks)).toContain('iam:UpdateAccessKey');
    const thread = t.slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts !== undefined && String(c.body.text).includes(run.id));
    expect(thread.some((c) => String(c.body.text).includes('started `disable-key`'))).toBe(true);
  });

  it('offers Isolate and Revoke for a Security Hub finding when runbooks of those ids are registered', async () => {
    const findingId = `arn:aws:securityhub:us-east-1:${accountId}:subscription/sh-${randomUUID()}`;
    const other = randomAccountId();
    await send(
      securityHubEvent({
        findingId,
        accountId,
        label: 'CRITICAL',
        resources: [
          asffInstance(accountId, 'i-0abc1234def567890', 'eu-west-1'),
          asffRole(accountId, 'web-app'),
          asffRole(other, 'elsewhere'), // an account quell does not know: no button
          { Type: 'AwsS3Bucket', Id: 'arn:aws:s3:::example-bucket', Partition: 'aws', Region: 'us-east-1' },
        ],
      }),
    );
    await until('the card is posted', () => cardCalls(findingId).length > 0);
    const buttons = buttonsOf(cardCalls(findingId)[0]);
    expect(buttons.map((b) => b.action_id)).toEqual([
      'quell_sf_isolate_instance',
      'quell_sf_revoke_role_sessions',
    ]);
    expect(buttons.map((b) => b.value.split('.')[1])).toEqual(['0', '1']);
    expect(JSON.stringify(cardCalls(findingId)[0]?.body.blocks)).toContain('AwsS3Bucket');

    await t.click('quell_sf_isolate_instance', buttons[0]?.value ?? '', 'U0RESP2', FINDINGS);
    const isolate = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed', 'failed']);
    expect(isolate).toMatchObject({
      state: 'awaiting_approval',
      runbook: 'isolate-instance',
      region: 'eu-west-1',
      accountAlias: 'prod',
      channel: FINDINGS,
    });
    expect(isolate.input).toMatchObject({ instanceId: 'i-0abc1234def567890' });
    expect(isolate.requiredApprovals).toBeGreaterThanOrEqual(1);

    await t.click('quell_sf_revoke_role_sessions', buttons[1]?.value ?? '', 'U0RESP3', FINDINGS);
    const revoke = await waitForRunOf(t.quell, 'U0RESP3', ['awaiting_approval', 'plan_failed', 'failed']);
    expect(revoke).toMatchObject({ state: 'awaiting_approval', runbook: 'revoke-role-sessions' });
    expect(revoke.input).toMatchObject({ roleArn: `arn:aws:iam::${accountId}:role/web-app` });
  });
});
