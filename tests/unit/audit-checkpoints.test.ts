/**
 * Audit checkpoint configuration, the writer's behaviour when the bucket is unusable (runs go on, the
 * failure is logged and posted, the retry anchors the chain once the bucket works), the audit-channel
 * lines (full hashes), and the IAM statements `quell iam-policy` prints for them.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { createHmacSigner } from '../../src/audit/checkpoint.ts';
import { type CheckpointEvent, CheckpointWriter } from '../../src/audit/checkpoint-writer.ts';
import { createS3CheckpointStore } from '../../src/audit/s3-checkpoint-anchor.ts';
import { buildAuditVerifierPolicy, buildBotPolicy } from '../../src/aws/build-iam-policies.ts';
import { parseConfig } from '../../src/config.ts';
import type { ConfigInvalidError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createAuditChannelSink, describeCheckpoint } from '../../src/slack/audit-channel-sink.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

const BASE = `
accounts:
  - alias: prod
    id: "111111111111"
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
`;
const KEY = 'arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('audit.checkpoints configuration', () => {
  it('is off when absent', () => {
    expect(parseConfig(BASE).audit.checkpoints).toBeUndefined();
  });

  it('takes a KMS key with defaults for prefix, chain id and interval', () => {
    const config = parseConfig(
      `${BASE}audit:\n  checkpoints:\n    bucket: quell-audit\n    retentionDays: 400\n    kmsKeyId: ${KEY}\n`,
    );
    expect(config.audit.checkpoints).toMatchObject({
      bucket: 'quell-audit',
      prefix: 'quell/checkpoints/',
      chainId: 'quell',
      retentionDays: 400,
      kmsKeyId: KEY,
      every: { entries: 100, time: 300_000 },
    });
  });

  it('refuses both signers, neither, a missing retention and a short interval, naming each', () => {
    const both = `${BASE}audit:\n  checkpoints:\n    bucket: quell-audit\n    kmsKeyId: ${KEY}\n    hmacSecretArn: arn:aws:secretsmanager:us-east-1:111111111111:secret:x\n    every: { time: 1s }\n`;
    let problems: string[] = [];
    try {
      parseConfig(both);
    } catch (error) {
      problems = (error as ConfigInvalidError).problems;
    }
    expect(problems.join('\n')).toMatch(/audit\.checkpoints\.retentionDays/);
    expect(problems.join('\n')).toMatch(/audit\.checkpoints\.every\.time.*at least 10s/);
    const signers = (extra: string) => {
      try {
        parseConfig(`${BASE}audit:\n  checkpoints:\n    bucket: quell-audit\n    retentionDays: 1\n${extra}`);
        return [];
      } catch (error) {
        return (error as ConfigInvalidError).problems;
      }
    };
    const exactlyOne = /audit\.checkpoints\.kmsKeyId.*exactly one of kmsKeyId/;
    expect(signers('').join('\n')).toMatch(exactlyOne);
    expect(
      signers(
        `    kmsKeyId: ${KEY}\n    hmacSecretArn: arn:aws:secretsmanager:us-east-1:111111111111:secret:x\n`,
      ).join('\n'),
    ).toMatch(exactlyOne);
  });
});

describe('checkpoint writer', () => {
  const s3 = new S3Client({ region: 'us-east-1' });
  afterAll(() => s3.destroy());

  it('a bucket that does not work never blocks the audit log; the failure is visible and the retry anchors', async () => {
    const bucket = `quell-late-${randomBytes(5).toString('hex')}`;
    const store = new SqliteStore('sqlite::memory:');
    await store.migrate();
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(line) } as never,
    });
    const audit = new AuditLog(store, log);
    const writer = new CheckpointWriter({
      chainId: 'quell',
      signer: createHmacSigner(randomBytes(32), 'arn:aws:secretsmanager:us-east-1:111111111111:secret:k'),
      store: createS3CheckpointStore(s3, { bucket, prefix: 'a/', chainId: 'quell', retentionDays: 1 }),
      everyEntries: 3,
      log,
      retryMs: 50,
      maxRetryMs: 200,
    });
    const events: CheckpointEvent[] = [];
    writer.addListener((e) => events.push(e));
    const posted: string[] = [];
    const client = { chat: { postMessage: async (m: { text: string }) => posted.push(m.text) } };
    const mirror = createAuditChannelSink(client as never, 'C0AUDIT', log);
    writer.addListener(mirror.checkpoint);
    audit.addSink(writer.sink, () => writer.stop());

    // Every record resolves although the bucket does not exist yet.
    let recorded = 0;
    for (let i = 0; i < 4; i++) {
      await audit.record({ type: 'command.received', actor: 'U0ALICE', data: { i } });
      recorded++;
    }
    expect(recorded).toBe(4);
    for (let i = 0; i < 100 && !events.some((e) => e.kind === 'failed'); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(events[0]).toMatchObject({ kind: 'failed', error: 'NoSuchBucket', lastAnchoredSeq: 0 });
    expect(lines.some((l) => l.includes('audit checkpoint failed'))).toBe(true);

    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    for (let i = 0; i < 200 && writer.status().written === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    const head = (await store.listAudit()).at(-1);
    expect(writer.status()).toMatchObject({ written: 1, lastAnchored: { seq: 4, hash: head?.hash } });
    await audit.close();
    await mirror.drain();
    expect(posted.some((t) => t.includes('could not be written (NoSuchBucket'))).toBe(true);
    expect(posted.some((t) => t.includes(`hash \`${head?.hash}\``))).toBe(true);
    await store.close();
  });

  it('the audit-channel line carries the full hash', () => {
    const hash = 'ab'.repeat(32);
    const text = describeCheckpoint({
      kind: 'written',
      document: {
        v: 1,
        chainId: 'quell',
        seq: 7,
        hash,
        at: 0,
        time: '1970-01-01T00:00:00.000Z',
        signer: { kind: 'kms', keyRef: KEY, algorithm: 'ECDSA_SHA_256' },
        signature: 'AA==',
      },
      location: 's3://b/quell/checkpoints/quell/',
      key: 'k',
      versionId: null,
    });
    expect(text).toContain(`\`#7\` hash \`${hash}\``);
  });
});

describe('iam-policy for checkpoints', () => {
  const settings = { bucket: 'quell-audit', prefix: 'cp/', chainId: 'prod', kmsKeyId: KEY };

  it('adds one statement to the bot: put with retention under the chain folder, sign with the key, nothing else', () => {
    const policy = buildBotPolicy([], [], { settings, region: 'us-east-1' });
    expect(policy.Statement.at(-1)).toEqual({
      Sid: 'WriteAuditCheckpoints',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:PutObjectRetention', 'kms:DescribeKey', 'kms:Sign'],
      Resource: ['arn:aws:s3:::quell-audit/cp/prod/*', KEY],
    });
    expect(JSON.stringify(policy)).not.toMatch(/Delete|BypassGovernance|PutBucket/);
  });

  it('with a role of its own, the bot may only assume it; the verifier may only read and verify', () => {
    const roleArn = 'arn:aws:iam::333333333333:role/quell-audit-anchor';
    const policy = buildBotPolicy([], [], { settings: { ...settings, roleArn }, region: 'us-east-1' });
    expect(policy.Statement.at(-1)).toEqual({
      Sid: 'AssumeAuditCheckpointRole',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: [roleArn],
    });
    const verifier = JSON.stringify(buildAuditVerifierPolicy(settings, 'us-east-1'));
    expect(verifier).toContain('kms:Verify');
    expect(verifier).not.toMatch(/PutObject|kms:Sign"/);
  });
});
