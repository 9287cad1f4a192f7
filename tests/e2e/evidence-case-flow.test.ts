/**
 * Evidence before containment and the case file, end to end through Bolt's real HTTP receiver with signed
 * requests, against moto (IAM, EC2, S3 with Object Lock) and the CloudTrail fake:
 * - disable-key and isolate-vpc attach their evidence JSON to the thread and record its SHA-256 in the audit
 *   chain BEFORE the first mutating call, and keep it in the evidence bucket under compliance-mode retention;
 * - evidence that cannot be read does not stop the containment, and the card says it is missing;
 * - `/quell case <run-id>` (and the card's button) attaches a Markdown timeline + JSON with every run,
 *   decision, AWS call with its request id, evidence hash and audit chain position; forged, unknown and
 *   other channels' ids are refused; `quell case` in the CLI writes the same.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EC2Client } from '@aws-sdk/client-ec2';
import {
  AddUserToGroupCommand,
  AttachUserPolicyCommand,
  CreateGroupCommand,
  CreatePolicyCommand,
  type IAMClient,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disableKey } from '../../src/runbooks/disable-key.ts';
import { isolateVpc } from '../../src/runbooks/isolate-vpc.ts';
import type { AuditRecord, RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeCloudTrail, generateEvents, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import type { SharedFile } from '../support/fake-slack.ts';
import { assertIamMatchesCalls } from '../support/iam-usage.ts';
import { adminEc2, createTestVpc, currentAcls } from '../support/network-fixtures.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const exec = promisify(execFile);
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
// A session token as CloudTrail quotes it in an AssumeRole response: it must never reach a file.
const LEAKED_TOKEN = `FwoGZXIvYXdzEXAMPLE${'A'.repeat(60)}`;
const OTHER = 'C0ELSEWHERE';

describe('evidence before containment, and the case file', () => {
  let t: TestQuell;
  let iam: IAMClient;
  let ec2: EC2Client;
  let trail: FakeCloudTrail;
  const s3 = new S3Client({ region: 'us-east-1' });
  const accountId = randomAccountId();
  const bucket = `quell-evidence-${accountId}`;
  let keyId: string;

  beforeAll(async () => {
    iam = await adminIam(accountId);
    ec2 = await adminEc2(accountId);
    keyId = await createUserWithKey(iam, 'mallory');
    const policy = await iam.send(
      new CreatePolicyCommand({
        PolicyName: 'mallory-s3',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
        }),
      }),
    );
    await iam.send(new AttachUserPolicyCommand({ UserName: 'mallory', PolicyArn: policy.Policy?.Arn ?? '' }));
    await iam.send(new CreateGroupCommand({ GroupName: 'developers' }));
    await iam.send(new AddUserToGroupCommand({ GroupName: 'developers', UserName: 'mallory' }));
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));

    trail = await startFakeCloudTrail();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = trail.url;
    const events = generateEvents('us-east-1', 60, { accessKeyId: keyId, username: 'mallory' });
    const first = events[0];
    if (first)
      first.record = {
        ...first.record,
        responseElements: {
          credentials: { accessKeyId: 'ASIAEXAMPLEEXAMPLE12', sessionToken: LEAKED_TOKEN },
        },
      };
    trail.events.set('us-east-1', events);

    t = await startTestQuell({
      accounts: [accountConfig('prod', accountId)],
      channels: {
        [INCIDENT]: { runbooks: ['*'], accounts: ['*'] },
        [OTHER]: { runbooks: ['*'], accounts: ['*'] },
      },
      evidence: { bucket, prefix: 'quell/evidence/', retentionDays: 7 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await trail?.close();
    delete process.env.AWS_ENDPOINT_URL_CLOUDTRAIL;
    iam?.destroy();
    ec2?.destroy();
    s3.destroy();
  });

  const runEntries = async (runId: string) => t.quell.store.listAudit({ runId });
  const first = (entries: AuditRecord[], type: string, operation?: string) =>
    entries.find(
      (e) => e.type === type && (!operation || (e.data as { operation?: string }).operation === operation),
    );
  const evidenceFile = (run: RunRecord): SharedFile | undefined =>
    t.slack.files.find((f) => f.filename === `evidence-${run.runbook}-${run.id}.json`);
  const completedAt = (file: SharedFile) =>
    t.slack
      .callsOf('files.completeUploadExternal')
      .find((c) => JSON.stringify(c.body.files).includes(file.id))?.at ?? Number.POSITIVE_INFINITY;

  /** The object's bytes and its Object Lock retention, read back from moto. */
  const storedObject = async (key: string) => {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      body: (await object.Body?.transformToString('utf8')) ?? '',
      retention: { Mode: head.ObjectLockMode, RetainUntilDate: head.ObjectLockRetainUntilDate },
    };
  };

  let disableRun: RunRecord;
  let undoRun: RunRecord;

  it('disable-key: evidence in the thread, in the chain and in the bucket before the key is touched', async () => {
    await t.command(
      `disable-key ${keyId} reason="leak [x](http://evil.example) <!channel> *bold* | pipe"`,
      'U0RESP',
    );
    const run = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    // Nothing is captured before the approval.
    expect(evidenceFile(run)).toBeUndefined();
    // The approver clicks the card once it is in the channel (its ts is the thread the evidence goes to).
    await t.settle();
    await t.click('quell_approve', run.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'failed', 'partial']);
    expect(done.state).toBe('succeeded');
    await t.settle();
    disableRun = done;
    expect(await keyStatus(iam, 'mallory', keyId)).toBe('Inactive');

    // The file is in the card's thread, and its hash is the one in the chain.
    const file = evidenceFile(done);
    if (!file) throw new Error('no evidence file in the thread');
    expect(file.threadTs).toBe(done.messageTs);
    const entries = await runEntries(done.id);
    const captured = first(entries, 'evidence.captured');
    const data = captured?.data as { sha256: string; bytes: number; key: string; bucket: string };
    expect(data.sha256).toBe(sha256(file.content));
    expect(data.bytes).toBe(Buffer.byteLength(file.content));

    // Before the first mutating call: in the chain, and at the fake Slack before the intent was written.
    const intent = first(entries, 'aws.intent', 'UpdateAccessKey');
    if (!captured || !intent) throw new Error('missing entries');
    expect(captured.seq).toBeLessThan(intent.seq);
    expect(entries.filter((e) => e.seq < captured.seq && e.type === 'aws.intent').map((e) => e.data)).toEqual(
      [],
    );
    expect(completedAt(file)).toBeLessThanOrEqual(intent.at);

    // What the responder needs later: the key as it was, its policies, groups and 24 h of CloudTrail.
    const document = JSON.parse(file.content) as {
      runId: string;
      evidence: {
        key: { status: string; userName: string };
        attachedPolicies: { name: string }[];
        groups: { name: string }[];
        cloudTrail: { eventCount: number; events: { eventName: string }[] };
      };
    };
    expect(document.runId).toBe(done.id);
    expect(document.evidence.key).toMatchObject({ status: 'Active', userName: 'mallory' });
    expect(document.evidence.attachedPolicies.map((p) => p.name)).toEqual(['mallory-s3']);
    expect(document.evidence.groups.map((g) => g.name)).toEqual(['developers']);
    expect(document.evidence.cloudTrail.eventCount).toBe(60);
    expect(file.content).not.toContain(LEAKED_TOKEN);
    expect(file.content).not.toContain('FwoGZXIvYXdz');

    // The bucket holds the same bytes, locked in compliance mode for the configured days.
    expect(data.bucket).toBe(bucket);
    const stored = await storedObject(data.key);
    expect(sha256(stored.body)).toBe(data.sha256);
    expect(stored.retention?.Mode).toBe('COMPLIANCE');
    const days = ((stored.retention?.RetainUntilDate?.getTime() ?? 0) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);

    // The card says so.
    const last = t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === done.messageTs)
      .at(-1);
    expect(JSON.stringify(last?.body.blocks)).toContain(`Evidence:* captured before any change (SHA-256`);
  });

  it('disable-key undo, then the case file from the command and the button; refusals counted', async () => {
    const run = disableRun;
    await t.click('quell_undo', run.id, 'U0RESP');
    let undo: RunRecord | undefined;
    for (let i = 0; i < 200 && undo?.state !== 'awaiting_approval'; i++) {
      [undo] = await t.quell.store.listRuns({ parentRunId: run.id, limit: 1 });
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!undo) throw new Error('no undo');
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    undoRun = await waitForRunState(t.quell, undo.id, ['succeeded', 'failed']);
    expect(undoRun.state).toBe('succeeded');
    await t.settle();
    // An undo takes no evidence of its own.
    expect(first(await runEntries(undoRun.id), 'evidence.captured')).toBeUndefined();
    // Declared IAM actions = calls made, evidence included.
    // (The undo's PutUserPolicy only restores a revocation policy that existed before the run.)
    assertIamMatchesCalls(disableKey, await t.quell.store.listAudit(), [run, undoRun], {
      implied: ['iam:PutUserPolicy'],
    });

    const ack = await t.command(`case ${undoRun.id}`, 'U0OTHER');
    expect(String(ack.json?.text)).toContain('Building the case file');
    await t.slack.waitFor(() => t.slack.files.some((f) => f.filename === `case-${run.id}.json`));
    await t.settle();
    const md = t.slack.files.find((f) => f.filename === `case-${run.id}.md`);
    const json = t.slack.files.find((f) => f.filename === `case-${run.id}.json`);
    if (!md || !json) throw new Error('no case files');
    expect(md.threadTs).toBe(run.messageTs);
    expect(json.threadTs).toBe(run.messageTs);

    const all = await t.quell.store.listAudit();
    const caseDoc = JSON.parse(json.content) as {
      runs: {
        id: string;
        decisions: { user: string; decision: string; at: string }[];
        awsCalls: { call: string; requestId: string | null; seq: number }[];
        evidence: { sha256?: string }[];
        auditSeqs: number[];
      }[];
      audit: { seq: number; hash: string; prevHash: string }[];
    };
    expect(caseDoc.runs.map((r) => r.id)).toEqual([run.id, undoRun.id]);
    const [original, undone] = caseDoc.runs;
    expect(original?.decisions).toEqual([
      expect.objectContaining({ user: 'U0LEAD1', decision: 'approve', at: expect.any(String) }),
    ]);
    expect(undone?.decisions).toEqual([expect.objectContaining({ user: 'U0LEAD2', decision: 'approve' })]);
    // Every AWS call of both runs, each with its request id.
    for (const r of [run, undoRun]) {
      const calls = all.filter((e) => e.runId === r.id && e.type === 'aws.call');
      const inFile = caseDoc.runs.find((c) => c.id === r.id)?.awsCalls ?? [];
      expect(inFile.map((c) => c.seq)).toEqual(calls.map((c) => c.seq));
      expect(inFile.every((c) => typeof c.requestId === 'string' && c.requestId.length > 0)).toBe(true);
    }
    expect(original?.awsCalls.map((c) => c.call)).toContain('iam:UpdateAccessKey');
    expect(original?.awsCalls.map((c) => c.call)).toContain('cloudtrail:LookupEvents');
    // The evidence hash, and the chain positions and hashes of every entry of both runs.
    const captured = all.find((e) => e.runId === run.id && e.type === 'evidence.captured');
    const hash = (captured?.data as { sha256: string }).sha256;
    expect(original?.evidence[0]?.sha256).toBe(hash);
    // (as they stood when the file was built: the export's own entry comes after it)
    const exportSeq = all.find((e) => e.type === 'case.exported')?.seq ?? Number.POSITIVE_INFINITY;
    const ownEntries = all.filter((e) => (e.runId === run.id || e.runId === undoRun.id) && e.seq < exportSeq);
    expect(caseDoc.audit.map((e) => [e.seq, e.hash, e.prevHash])).toEqual(
      ownEntries.map((e) => [e.seq, e.hash, e.prevHash]),
    );
    // The timeline names them too, with untrusted text escaped.
    for (const text of [run.id, undoRun.id, hash, 'U0LEAD1', 'U0LEAD2', 'UpdateAccessKey'])
      expect(md.content).toContain(text);
    for (const e of ownEntries) expect(md.content).toContain(`| ${e.seq} |`);
    expect(md.content).not.toContain('[x](http');
    expect(md.content).not.toContain('<!channel>');
    expect(md.content).toContain('\\[x\\]');
    expect(md.content).not.toContain('FwoGZXIvYXdz');
    expect(json.content).not.toContain('FwoGZXIvYXdz');
    // Recorded, and kept in the evidence bucket.
    const exported = all.filter((e) => e.type === 'case.exported');
    expect(exported).toHaveLength(1);
    const exportData = exported[0]?.data as { files: { sha256: string }[]; stored: { key: string }[] };
    expect(exportData.files.map((f) => f.sha256)).toEqual([sha256(md.content), sha256(json.content)]);
    expect(exportData.stored).toHaveLength(2);
    for (const object of exportData.stored) {
      const stored = await storedObject(object.key);
      expect(stored.retention?.Mode).toBe('COMPLIANCE');
      expect([sha256(md.content), sha256(json.content)]).toContain(sha256(stored.body));
    }

    // The card's button does the same.
    const filesBefore = t.slack.files.length;
    await t.click('quell_case_file', run.id, 'U0LEAD1');
    await t.slack.waitFor(() => t.slack.files.length === filesBefore + 2);
    await t.settle();

    // Refused: forged and unknown ids, and the run's id from another channel. Nothing is exported.
    const refusedBefore = t.slack.files.length;
    const exportsBefore = (await t.quell.store.listAudit()).filter((e) => e.type === 'case.exported').length;
    const attempts = [
      { text: 'case ../../etc/passwd', channel: INCIDENT },
      { text: 'case <!channel>', channel: INCIDENT },
      { text: 'case rzzzzzzzzzzzz', channel: INCIDENT },
      { text: 'case 1699999999.000100', channel: INCIDENT },
      { text: `case ${run.id}`, channel: OTHER },
      { text: `case ${run.messageTs}`, channel: OTHER },
    ];
    for (const a of attempts) await t.command(a.text, 'U0NOSY', a.channel);
    await t.click('quell_case_file', run.id, 'U0NOSY', OTHER);
    await t.settle();
    const replies = t.slack.responses.filter((r) => r.method === '/response/U0NOSY');
    expect(replies.filter((r) => String(r.body.text).includes('No run')).length).toBe(attempts.length + 1);
    expect(t.slack.files.length).toBe(refusedBefore);
    const exportsAfter = (await t.quell.store.listAudit()).filter((e) => e.type === 'case.exported').length;
    expect(exportsAfter).toBe(exportsBefore);
    expect(JSON.stringify(replies)).not.toContain('<!channel>');

    // The thread ts in its own channel names the same case.
    await t.command(`case ${run.messageTs}`, 'U0OTHER');
    await t.slack.waitFor(() => t.slack.files.length === refusedBefore + 2);
  });

  it('quell case in the CLI writes the same case file', async () => {
    await t.quell.idle();
    const out = mkdtempSync(join(tmpdir(), 'quell-case-'));
    try {
      const cli = await exec(process.execPath, [
        'bin/quell.js',
        'case',
        disableRun.id,
        '--db',
        t.dbUrl,
        '--out',
        out,
      ]);
      expect(cli.stdout).toContain(`case-${disableRun.id}.md`);
      const md = readFileSync(join(out, `case-${disableRun.id}.md`), 'utf8');
      const json = JSON.parse(readFileSync(join(out, `case-${disableRun.id}.json`), 'utf8')) as {
        runs: { id: string; decisions: { user: string }[]; evidence: { sha256?: string }[] }[];
        audit: { seq: number }[];
      };
      const slackJson = JSON.parse(
        t.slack.files.find((f) => f.filename === `case-${disableRun.id}.json`)?.content ?? '{}',
      ) as { runs: unknown[]; audit: { seq: number }[] };
      // The same runs, decisions, calls and evidence; the chain has grown by the bot's exports since.
      const withoutSeqs = (runs: unknown[]) =>
        (runs as { auditSeqs: number[] }[]).map(({ auditSeqs: _, ...rest }) => rest);
      expect(withoutSeqs(json.runs)).toEqual(withoutSeqs(slackJson.runs));
      expect(json.audit.slice(0, slackJson.audit.length)).toEqual(slackJson.audit);
      expect(md).toContain(disableRun.id);
      expect(md).toContain(undoRun.id);
      // Unknown ids are refused with exit 1.
      await expect(
        exec(process.execPath, ['bin/quell.js', 'case', 'rzzzzzzzzzzzz', '--db', t.dbUrl, '--out', out]),
      ).rejects.toMatchObject({ code: 1 });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('isolate-vpc: ACLs, security groups and flow logs captured before the first subnet moves', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 2, customAcls: 1 });
    await t.command(`isolate-vpc ${vpc.vpcId} reason="lateral movement"`, 'U0LEAD3');
    const run = await waitForRunOf(t.quell, 'U0LEAD3', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    await t.click('quell_approve', run.id, 'U0LEAD1');
    await t.click('quell_approve', run.id, 'U0LEAD2');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
    expect(done.state).toBe('succeeded');
    await t.settle();
    const file = evidenceFile(done);
    if (!file) throw new Error('no evidence file');
    const entries = await runEntries(done.id);
    const captured = first(entries, 'evidence.captured');
    const intent = first(entries, 'aws.intent', 'CreateNetworkAcl');
    if (!captured || !intent) throw new Error('missing entries');
    expect((captured.data as { sha256: string }).sha256).toBe(sha256(file.content));
    expect(captured.seq).toBeLessThan(intent.seq);
    expect(completedAt(file)).toBeLessThanOrEqual(intent.at);
    const document = JSON.parse(file.content) as {
      evidence: {
        networkAcls: { NetworkAclId: string; Associations: { SubnetId: string }[] }[];
        securityGroups: { VpcId: string; GroupName: string }[];
        flowLogs: unknown[];
      };
    };
    // The ACLs as they were: every subnet still on its original ACL.
    for (const [subnet, acl] of vpc.original) {
      const holder = document.evidence.networkAcls.find((a) =>
        a.Associations.some((s) => s.SubnetId === subnet),
      );
      expect(holder?.NetworkAclId).toBe(acl);
    }
    expect(document.evidence.securityGroups.some((g) => g.GroupName === 'default')).toBe(true);
    expect(document.evidence.securityGroups.every((g) => g.VpcId === vpc.vpcId)).toBe(true);
    expect(Array.isArray(document.evidence.flowLogs)).toBe(true);
    expect((await currentAcls(ec2, vpc.vpcId)).size).toBe(vpc.subnetIds.length);
    // Undo so that the declared actions of every phase were called, then compare.
    await t.click('quell_undo', done.id, 'U0LEAD3');
    let undo: RunRecord | undefined;
    for (let i = 0; i < 200 && undo?.state !== 'awaiting_approval'; i++) {
      [undo] = await t.quell.store.listRuns({ parentRunId: done.id, limit: 1 });
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!undo) throw new Error('no undo');
    await t.click('quell_approve', undo.id, 'U0LEAD1');
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    const undone = await waitForRunState(t.quell, undo.id, ['succeeded', 'failed', 'partial']);
    expect(undone.state).toBe('succeeded');
    expect(await currentAcls(ec2, vpc.vpcId)).toEqual(vpc.original);
    assertIamMatchesCalls(isolateVpc, await t.quell.store.listAudit(), [done, undone], {
      implied: ['ec2:CreateTags'],
    });
  });

  it('evidence that cannot be read does not stop the containment, and the card says it is missing', async () => {
    const other = await createUserWithKey(iam, 'trudy');
    trail.failWith({ status: 400, type: 'AccessDeniedException', message: 'not authorized' });
    try {
      await t.command(`disable-key ${other}`, 'U0RESP2');
      const run = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
      await t.click('quell_approve', run.id, 'U0LEAD1');
      const done = await waitForRunState(t.quell, run.id, ['succeeded', 'failed', 'partial']);
      expect(done.state).toBe('succeeded');
      await t.settle();
      expect(await keyStatus(iam, 'trudy', other)).toBe('Inactive');
      const entries = await runEntries(done.id);
      const missing = first(entries, 'evidence.missing');
      const intent = first(entries, 'aws.intent', 'UpdateAccessKey');
      if (!missing || !intent) throw new Error('missing entries');
      expect(missing.seq).toBeLessThan(intent.seq);
      expect(first(entries, 'evidence.captured')).toBeUndefined();
      expect(evidenceFile(done)).toBeUndefined();
      const last = t.slack
        .callsOf('chat.update')
        .filter((c) => c.body.ts === done.messageTs)
        .at(-1);
      expect(JSON.stringify(last?.body.blocks)).toContain('Evidence:* MISSING');
    } finally {
      trail.failWith(undefined);
    }
  });
});
