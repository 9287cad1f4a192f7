/**
 * trail end to end through Bolt's real HTTP receiver with signed requests: the command → no approval
 * (read-only) → CloudTrail looked up in both configured regions with the read role → the card updated
 * with the summary → the CSV and JSON attached to the thread through Slack's external upload flow →
 * every LookupEvents call in the audit log, and the chain verifying. Also the "Look up this key's
 * activity" button of a succeeded disable-key card, which goes through the same guardrails.
 *
 * CloudTrail: moto does not implement LookupEvents, so quell's CloudTrail clients reach a local fake
 * (AWS_ENDPOINT_URL_CLOUDTRAIL) that serves 50 events per page and answers ThrottlingException when a
 * region gets more than 2 requests in any 1-second window. STS and IAM are moto, as everywhere else.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPermissionsPolicy } from '../../src/aws/build-iam-policies.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { trail } from '../../src/runbooks/trail.ts';
import { ACTION, type Block } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, adminIam, createUserWithKey, randomAccountId } from '../support/aws-fixtures.ts';
import { type FakeCloudTrail, generateEvents, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const exec = promisify(execFile);
const KEYS_ONLY = 'C0KEYS'; // a channel whose guardrail allows disable-key but not trail
const HOSTILE_AGENT = '<!channel> <@U0LEAD1> <https://evil.example|click here>';

describe('trail from Slack to CloudTrail and back to the thread', () => {
  let t: TestQuell;
  let ct: FakeCloudTrail;
  let iam: IAMClient;
  const accountId = randomAccountId();
  const KEY = 'AKIAIOSFODNN7EXAMPLE';

  beforeAll(async () => {
    ct = await startFakeCloudTrail();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = ct.url;
    iam = await adminIam(accountId);
    t = await startTestQuell({
      accounts: [accountConfig('prod', accountId)],
      channels: {
        [INCIDENT]: { runbooks: ['*'], accounts: ['*'] },
        [KEYS_ONLY]: { runbooks: ['disable-key'], accounts: ['*'] },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await ct?.close();
    iam?.destroy();
  });

  const cardUpdates = (run: RunRecord): SlackCall[] =>
    t.slack.callsOf('chat.update').filter((c) => c.body.ts === run.messageTs);
  const buttonsOf = (call: SlackCall | undefined) =>
    ((call?.body.blocks ?? []) as Block[])
      .filter((b) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string }[]);

  it('looks the key up in every region without approval, summarises on the card, attaches CSV and JSON', async () => {
    const now = new Date();
    ct.events.set('us-east-1', generateEvents('us-east-1', 130, { newest: now, accessKeyId: KEY }));
    const eu = generateEvents('eu-west-1', 40, { newest: now, accessKeyId: KEY });
    const [first] = eu;
    // Untrusted values from CloudTrail: a hostile identity (shown among the top identities) and agent.
    if (first)
      first.record = {
        ...first.record,
        userAgent: HOSTILE_AGENT,
        sourceIPAddress: '=cmd|"/c calc"!A1',
        userIdentity: { type: 'IAMUser', arn: HOSTILE_AGENT },
      };
    ct.events.set('eu-west-1', eu);
    // Older than the window: not returned.
    ct.events.get('us-east-1')?.push(
      ...generateEvents('us-east-1', 3, {
        newest: new Date(now.getTime() - 2 * 86_400_000),
        accessKeyId: KEY,
      }).map((e) => ({ ...e, eventId: `old-${e.eventId}` })),
    );

    const ack = await t.command(`trail key=${KEY} since=24h`, 'U0RESP');
    expect(ack.status).toBe(200);
    expect(String(ack.json?.text)).toContain('Planning `trail`… The result will appear in this channel.');
    const run = await waitForRunOf(t.quell, 'U0RESP', ['succeeded', 'failed']);
    expect(run.state).toBe('succeeded');
    expect(run.requiredApprovals).toBe(0);
    await t.settle();

    // The card: the lookup as the plan, then the summary as facts; escaped untrusted values.
    const card = t.slack
      .callsOf('chat.postMessage')
      .find(
        (c) =>
          c.body.ts === undefined &&
          c.body.channel === INCIDENT &&
          JSON.stringify(c.body.blocks).includes('trail: Look up CloudTrail events'),
      );
    expect(JSON.stringify(card?.body.blocks)).toContain(`AccessKeyId = ${KEY}`);
    expect(JSON.stringify(card?.body.blocks)).toContain('cloudtrail:LookupEvents Region=us-east-1');
    const final = cardUpdates(run).at(-1);
    const finalBlocks = JSON.stringify(final?.body.blocks);
    expect(finalBlocks).toContain('Succeeded');
    expect(finalBlocks).toContain('*Events*\\n170 (us-east-1 130 · eu-west-1 40)');
    expect(finalBlocks).toContain('*Top events*');
    expect(finalBlocks).toContain('`AccessDenied` ×');
    expect(finalBlocks).toContain('arn:aws:iam::111111111111:user/alice');
    expect(finalBlocks).toContain(
      '&lt;!channel&gt; &lt;@U0LEAD1&gt; &lt;https://evil.example|click here&gt;',
    );
    // No live mention, channel ping or link made it into any message.
    const everythingPosted = JSON.stringify([
      ...t.slack.callsOf('chat.postMessage'),
      ...t.slack.callsOf('chat.update'),
    ]);
    expect(everythingPosted).not.toContain('<!channel>');
    expect(everythingPosted).not.toContain('<https://evil.example');
    expect(buttonsOf(final)).toEqual([]); // read-only: no undo, no approval

    // The files: uploaded into the card's thread through getUploadURLExternal → upload → complete.
    expect(t.slack.callsOf('files.getUploadURLExternal')).toHaveLength(2);
    expect(t.slack.files.map((f) => f.filename).sort()).toEqual([
      `trail-${run.id}.csv`,
      `trail-${run.id}.json`,
    ]);
    for (const f of t.slack.files) {
      expect(f.channel).toBe(INCIDENT);
      expect(f.threadTs).toBe(run.messageTs);
      expect(Buffer.byteLength(f.content)).toBe(t.slack.uploads.get(f.id)?.length);
    }
    const csv = t.slack.files.find((f) => f.filename.endsWith('.csv'))?.content ?? '';
    const rows = csv.trimEnd().split('\r\n');
    expect(rows).toHaveLength(171);
    expect(rows[0]).toMatch(/^eventTime,region,eventName,/);
    expect(csv).toContain(`,"'=cmd|""/c calc""!A1",`);
    const json = JSON.parse(t.slack.files.find((f) => f.filename.endsWith('.json'))?.content ?? '{}');
    expect(json.events).toHaveLength(170);
    expect(json.truncated).toBe(false);
    expect(new Set(json.events.map((e: { eventId: string }) => e.eventId)).size).toBe(170);

    // The thread says it is done.
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === run.messageTs);
    expect(thread.some((c) => String(c.body.text).startsWith('Done: Found 170 CloudTrail events'))).toBe(
      true,
    );

    // Every LookupEvents call is in the audit log, with the read role; nothing else but AssumeRole was called.
    const entries = await t.quell.store.listAudit({ runId: run.id });
    const calls = entries.filter((e) => e.type === 'aws.call').map((e) => e.data as Record<string, unknown>);
    const lookups = calls.filter((c) => c.operation === 'LookupEvents');
    expect(lookups).toHaveLength(4); // us-east-1: 3 pages, eu-west-1: 1
    expect(
      lookups.every((c) => c.outcome === 'ok' && c.role === `arn:aws:iam::${accountId}:role/quell-read`),
    ).toBe(true);
    expect(new Set(lookups.map((c) => c.region))).toEqual(new Set(['us-east-1', 'eu-west-1']));
    expect(entries.map((e) => e.type)).not.toContain('approval.requested');
    expect(entries.map((e) => e.type)).not.toContain('aws.intent');
    expect(ct.maxServedPerWindow('us-east-1')).toBeLessThanOrEqual(2);

    // Declared IAM actions = the calls made, and the generated read-role policy grants them.
    const used = new Set(calls.filter((c) => c.service !== 'sts').map((c) => `${c.service}:${c.operation}`));
    expect([...used].sort()).toEqual([...trail.iam.plan, ...trail.iam.execute].sort());
    const statement = buildPermissionsPolicy(RUNBOOKS, 'read').Statement.find((s) => s.Sid === 'Trail');
    expect(statement?.Action).toEqual([...used].sort());

    const verify = await exec(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);
  });

  it('says so in the thread when the limit cut the result short', async () => {
    const now = new Date();
    ct.events.set(
      'us-east-1',
      generateEvents('us-east-1', 120, { newest: now, accessKeyId: 'AKIAIOSFODNN7EXAMPL2' }),
    );
    await t.command('trail key=AKIAIOSFODNN7EXAMPL2 region=us-east-1 limit=60', 'U0LIMIT');
    const run = await waitForRunOf(t.quell, 'U0LIMIT', ['succeeded', 'failed']);
    expect(run.state).toBe('succeeded');
    await t.settle();
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === run.messageTs);
    expect(thread.map((c) => String(c.body.text)).join('\n')).toMatch(
      /Found 60 CloudTrail events .* The limit of 60 cut the result short: more events exist, and it is complete only from \d{4}-/,
    );
    expect(JSON.stringify(cardUpdates(run).at(-1)?.body.blocks)).toContain('limit reached, more exist');
  });

  it('offers "Look up this key\'s activity" on a succeeded disable-key card, reading the key from the run', async () => {
    const keyId = await createUserWithKey(iam, 'mallory');
    ct.events.set('us-east-1', generateEvents('us-east-1', 7, { accessKeyId: keyId, username: 'mallory' }));
    ct.events.set('eu-west-1', []);
    await t.command(`disable-key ${keyId} reason="leaked in CI logs"`, 'U0RESP2');
    const disable = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval']);
    await t.click(ACTION.approve, disable.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, disable.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    await t.settle();
    const lookUp = buttonsOf(cardUpdates(done).at(-1)).find((b) => b.action_id === ACTION.trailKey);
    expect(lookUp?.value).toBe(done.id); // only the run id

    await t.click(ACTION.trailKey, done.id, 'U0RESP3');
    const lookup = await waitForRunOf(t.quell, 'U0RESP3', ['succeeded', 'failed']);
    expect(lookup.state).toBe('succeeded');
    expect(lookup.runbook).toBe('trail');
    expect(lookup.channel).toBe(INCIDENT);
    expect(lookup.accountAlias).toBe('prod');
    expect(lookup.input).toMatchObject({
      attribute: { key: 'AccessKeyId', value: keyId },
      since: { ago: 86_400_000 },
    });
    const received = (await t.quell.store.listAudit({ runId: lookup.id })).find(
      (e) => e.type === 'command.received',
    );
    expect(received?.actor).toBe('U0RESP3');
    await t.settle();
    expect(
      t.slack.files.some(
        (f) => f.filename === `trail-${lookup.id}.csv` && f.content.split('\r\n').length === 9,
      ),
    ).toBe(true);
  });

  it('refuses the button on other runs, forged ids, and in a channel whose guardrail does not allow trail', async () => {
    const before = (await t.quell.store.listRuns({ limit: 100 })).length;
    const [someTrail] = await t.quell.store.listRuns({ requester: 'U0RESP', limit: 1 });
    if (!someTrail) throw new Error('no trail run');
    await t.click(ACTION.trailKey, someTrail.id, 'U0RESP4');
    await t.click(ACTION.trailKey, 'rforgedforged', 'U0RESP4');
    await t.click(ACTION.trailKey, 'AKIAIOSFODNN7EXAMPLE', 'U0RESP4');

    // A disable-key run in a channel that allows disable-key but not trail.
    const keyId = await createUserWithKey(iam, 'trudy');
    await t.command(`disable-key ${keyId}`, 'U0RESP5', KEYS_ONLY);
    const disable = await waitForRunOf(t.quell, 'U0RESP5', ['awaiting_approval']);
    await t.click(ACTION.approve, disable.id, 'U0LEAD2', KEYS_ONLY);
    expect((await waitForRunState(t.quell, disable.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    await t.click(ACTION.trailKey, disable.id, 'U0RESP5', KEYS_ONLY);
    await t.settle();

    const told = t.slack.responses
      .filter((r) => r.method.endsWith('/U0RESP4') || r.method.endsWith('/U0RESP5'))
      .map((r) => String(r.body.text));
    expect(told.some((m) => m.includes('is not a succeeded `disable-key` run'))).toBe(true);
    expect(told.filter((m) => m.includes('No run `'))).toHaveLength(2);
    expect(told.some((m) => /trail/.test(m) && /not allowed|may not|guardrail|channel/i.test(m))).toBe(true);
    // Only the disable-key run was added; no lookup started.
    const runs = await t.quell.store.listRuns({ limit: 100 });
    expect(runs.length).toBe(before + 1);
    expect(runs.filter((r) => r.runbook === 'trail' && ['U0RESP4', 'U0RESP5'].includes(r.requester))).toEqual(
      [],
    );
  });
});
