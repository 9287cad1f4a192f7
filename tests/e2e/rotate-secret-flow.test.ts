/**
 * rotate-secret end to end through Bolt's real HTTP receiver with signed requests: the command → the
 * approval card with the secret's rotation facts → one approver → the new version AWSCURRENT in moto →
 * the result in the thread → the audit chain verifying (the CLI, as a process). The secret's value is
 * never read: no GetSecretValue in the audit log, and the value appears in no Slack call, log line or
 * audit entry.
 *
 * moto rotates without a rotation Lambda (real Secrets Manager refuses) and leaves the new version empty,
 * so the command needs force=true here; what moto cannot show is listed in
 * tests/integration/rotate-secret-engine.test.ts and covered there.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotationToken } from '../../src/runbooks/rotate-secret.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { adminSecrets } from '../support/network-fixtures.ts';
import {
  BOT_TOKEN,
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const exec = promisify(execFile);
const SECRET_VALUE = '{"username":"app","password":"Vq7-hunter2-do-not-leak-93kd"}';

describe('rotate-secret from Slack to Secrets Manager and back', () => {
  let t: TestQuell;
  let sm: SecretsManagerClient;
  const accountId = randomAccountId();

  beforeAll(async () => {
    sm = await adminSecrets(accountId);
    t = await startTestQuell({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    sm?.destroy();
  });

  it('refuses without rotation configured, then rotates with force=true after one approval, never reading the value', async () => {
    const created = await sm.send(
      new CreateSecretCommand({ Name: 'prod/payments-db', SecretString: SECRET_VALUE }),
    );
    const before = created.VersionId ?? '';

    // Without a rotation Lambda the plan refuses and says what to do.
    await t.command('rotate-secret prod/payments-db', 'U0RESP');
    await waitForRunOf(t.quell, 'U0RESP', ['plan_failed']);
    await t.settle();
    expect(t.slack.responses.some((r) => String(r.body.text).includes('has no rotation configured'))).toBe(
      true,
    );

    const ack = await t.command(
      'rotate-secret prod/payments-db force=true reason="password in a CI log"',
      'U0RESP',
    );
    expect(String(ack.json?.text)).toContain('Planning `rotate-secret`');
    const run = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    expect(run.requiredApprovals).toBe(1);
    await t.settle();
    const card = t.slack
      .callsOf('chat.postMessage')
      .find((c) => c.body.channel === INCIDENT && JSON.stringify(c.body.blocks).includes(run.id));
    const blocks = JSON.stringify(card?.body.blocks);
    for (const text of [
      created.ARN ?? '',
      'not configured',
      `${before}: AWSCURRENT`,
      `ClientRequestToken=${rotationToken(run.id)}`,
      'force=true',
    ]) {
      expect(blocks).toContain(text);
    }

    await t.click('quell_approve', run.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    const stages = (await sm.send(new DescribeSecretCommand({ SecretId: 'prod/payments-db' })))
      .VersionIdsToStages;
    expect(stages).toEqual({ [rotationToken(run.id)]: ['AWSCURRENT'], [before]: ['AWSPREVIOUS'] });
    await t.settle();
    const thread = t.slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts === done.messageTs)
      .map((c) => String(c.body.text));
    expect(
      thread.some((text) =>
        text.startsWith(`Done: Rotated prod/payments-db: version ${rotationToken(run.id)} is AWSCURRENT`),
      ),
    ).toBe(true);
    expect(thread.some((text) => text.includes('Rotation of prod/payments-db started'))).toBe(true);
    // Irreversible: no Undo button on the finished card.
    const last = t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === done.messageTs)
      .at(-1);
    expect(JSON.stringify(last?.body.blocks)).not.toContain('quell_undo');

    const verify = await exec(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);

    // Never read, never shown.
    const audit = await t.quell.store.listAudit();
    const operations = audit
      .filter((e) => e.type === 'aws.call')
      .map((e) => (e.data as { operation: string }).operation);
    expect(operations).toContain('RotateSecret');
    expect(operations).not.toContain('GetSecretValue');
    const everything = [
      t.logLines.join('\n'),
      JSON.stringify(t.slack.calls),
      JSON.stringify(t.slack.responses),
      JSON.stringify(audit),
    ].join('\n');
    expect(everything).toContain('prod/payments-db');
    expect(everything).not.toContain('hunter2');
    expect(everything).not.toContain(SECRET_VALUE);
    expect(everything).not.toContain(BOT_TOKEN);
  });
});
