/**
 * Issue 9 item 2: the audit chain is anchored outside the database. Attacks by someone who can write to
 * the database (and drop its append-only triggers), tried against both stores, through the library and
 * through `quell audit verify` as a process, with checkpoints in moto's S3 (Object Lock) signed by a KMS
 * key in moto (or an HMAC key from Secrets Manager). Each attack first shows that the chain on its own
 * still adds up (what verify accepted before), then that the anchored verify rejects it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorAuditLog } from '../../src/audit/anchor-audit-log.ts';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { hashAuditEntry, verifyAuditChain } from '../../src/audit/chain.ts';
import {
  type CheckpointDocument,
  checkpointKey,
  createHmacSigner,
  signCheckpoint,
} from '../../src/audit/checkpoint.ts';
import { createAuditAnchor, createKmsSigner } from '../../src/audit/s3-checkpoint-anchor.ts';
import { type AnchoredVerdict, verifyAnchoredChain } from '../../src/audit/verify-anchored-chain.ts';
import { type Config, ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { openStore } from '../../src/open-store.ts';
import type { AuditRecord, Store } from '../../src/store/store.ts';
import { accountConfig } from '../support/aws-fixtures.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { startTestQuell } from '../support/test-quell.ts';

const execFileAsync = promisify(execFile);
const log = createLogger({ level: 'silent' });
const ENTRIES = 50;
const EVERY = 10;

/** One database the attacker can also reach with raw SQL. */
interface Backend {
  /** What the config file holds (no password). */
  configUrl: string;
  url: string;
  env: Record<string, string>;
  raw(sql: string): Promise<void>;
  /** Drops the append-only triggers, as a database owner can. */
  dropTriggers(): Promise<void>;
  cleanup(): Promise<void>;
}

const BACKENDS: { name: string; create: () => Promise<Backend> }[] = [
  {
    name: 'sqlite',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'quell-anchor-'));
      const path = join(dir, 'quell.db');
      const raw = async (sql: string) => {
        const db = new DatabaseSync(path);
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      };
      return {
        configUrl: `sqlite:${path}`,
        url: `sqlite:${path}`,
        env: {},
        raw,
        dropTriggers: () =>
          raw('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;'),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'postgres',
    async create() {
      const db = await createTestDatabase('anchor');
      const raw = async (sql: string) => {
        const client = new pg.Client({ connectionString: db.url });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      };
      return {
        configUrl: db.urlWithoutPassword,
        url: db.url,
        env: { PGPASSWORD: db.password },
        raw,
        dropTriggers: () =>
          raw(
            'DROP TRIGGER IF EXISTS audit_no_update ON audit; DROP TRIGGER IF EXISTS audit_no_truncate ON audit;',
          ),
        cleanup: () => db.drop(),
      };
    },
  },
];

const s3 = new S3Client({ region: 'us-east-1' });
const kms = new KMSClient({ region: 'us-east-1' });
const secrets = new SecretsManagerClient({ region: 'us-east-1' });
let bucket: string;
let kmsKeyArn: string;
let attackerKeyArn: string;
let hmacSecretArn: string;

beforeAll(async () => {
  bucket = `quell-anchor-${randomBytes(5).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  const signing = { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' } as const;
  kmsKeyArn = (await kms.send(new CreateKeyCommand(signing))).KeyMetadata?.Arn ?? '';
  // A signing key the attacker controls (in the account they can reach): not the configured one.
  attackerKeyArn = (await kms.send(new CreateKeyCommand(signing))).KeyMetadata?.Arn ?? '';
  hmacSecretArn =
    (
      await secrets.send(
        new CreateSecretCommand({
          Name: `quell-anchor-hmac-${randomBytes(4).toString('hex')}`,
          SecretString: randomBytes(48).toString('base64'),
        }),
      )
    ).ARN ?? '';
});
afterAll(() => {
  s3.destroy();
  kms.destroy();
  secrets.destroy();
});

/** A deployment: its config (with checkpoints in a folder of its own), its store, audit log and writer. */
async function deploy(backend: Backend, signer: 'kms' | 'hmac' = 'kms') {
  const chainId = `c-${randomBytes(4).toString('hex')}`;
  const checkpoints = {
    bucket,
    prefix: 'anchors/',
    chainId,
    retentionDays: 1,
    ...(signer === 'kms' ? { kmsKeyId: kmsKeyArn } : { hmacSecretArn }),
    every: { entries: EVERY },
  };
  const input = {
    accounts: [
      {
        alias: 'prod',
        id: '111111111111',
        roles: {
          read: 'arn:aws:iam::111111111111:role/quell-read',
          respond: 'arn:aws:iam::111111111111:role/quell-respond',
        },
      },
    ],
    storage: { url: backend.configUrl },
    audit: { checkpoints },
  };
  const config: Config = ConfigSchema.parse(input);
  const store = await openStore(backend.url);
  const audit = new AuditLog(store, log);
  const writer = await anchorAuditLog(config, audit, log);
  if (!writer) throw new Error('checkpoints are configured');
  const dir = mkdtempSync(join(tmpdir(), 'quell-anchor-config-'));
  const configPath = join(dir, 'quell.yaml');
  writeFileSync(configPath, JSON.stringify(input)); // YAML reads JSON
  return {
    config,
    chainId,
    store,
    audit,
    writer,
    /** Appends entries; every EVERY-th is anchored before going on, so checkpoints sit at 10, 20, … */
    async append(count: number) {
      for (let i = 0; i < count; i++) {
        const record = await audit.record({
          type: 'approval.decision',
          runId: `r${String(i).padStart(12, 'a')}`,
          actor: 'U0LEAD1',
          data: { decision: i % 3 ? 'approve' : 'deny', i },
        });
        if (record.seq % EVERY === 0) {
          await new Promise((r) => setImmediate(r));
          await writer.flush();
        }
      }
    },
    async verify(): Promise<AnchoredVerdict> {
      const settings = config.audit.checkpoints;
      if (!settings) throw new Error('unreachable');
      const anchor = await createAuditAnchor(settings, 'us-east-1');
      try {
        return await verifyAnchoredChain(await store.listAudit(), {
          store: anchor.store,
          signer: anchor.signer,
          chainId,
        });
      } finally {
        anchor.destroy();
      }
    },
    async cli(): Promise<{ code: number; stdout: string }> {
      try {
        const { stdout } = await execFileAsync(process.execPath, ['bin/quell.js', 'audit', 'verify'], {
          env: { ...process.env, ...backend.env, QUELL_CONFIG: configPath },
        });
        return { code: 0, stdout };
      } catch (error) {
        const e = error as { code: number; stdout: string };
        return { code: e.code, stdout: e.stdout };
      }
    },
    async close() {
      await audit.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rewrites entry `seq`'s data and recomputes every later hash with the chain's own hash function. */
async function rewriteAndRehash(backend: Backend, store: Store, seq: number, data: Record<string, unknown>) {
  const records = await store.listAudit();
  let prevHash = records.find((r) => r.seq === seq - 1)?.hash ?? '';
  const statements: string[] = [];
  const forged: AuditRecord[] = [];
  for (const record of records.filter((r) => r.seq >= seq)) {
    const entry = record.seq === seq ? { ...record, data: data as AuditRecord['data'] } : record;
    const hash = hashAuditEntry(prevHash, entry.seq, entry);
    const json = JSON.stringify(entry.data).replaceAll("'", "''");
    statements.push(
      `UPDATE audit SET data = '${json}', prev_hash = '${prevHash}', hash = '${hash}' WHERE seq = ${entry.seq};`,
    );
    forged.push({ ...entry, prevHash, hash });
    prevHash = hash;
  }
  await backend.dropTriggers();
  await backend.raw(statements.join('\n'));
  return forged;
}

describe.each(BACKENDS)('audit anchoring ($name)', ({ create }) => {
  it('truncating the newest entries after dropping the trigger is detected', async () => {
    const backend = await create();
    const d = await deploy(backend);
    try {
      await d.append(ENTRIES);
      expect(d.writer.status()).toMatchObject({ written: ENTRIES / EVERY, failed: 0 });
      await backend.dropTriggers();
      await backend.raw('DELETE FROM audit WHERE seq > 34');

      // Before: the chain on its own still adds up, which is all verify checked.
      const alone = verifyAuditChain(await d.store.listAudit());
      expect(alone).toMatchObject({ ok: true, entries: 34 });

      const verdict = await d.verify();
      expect(verdict.ok).toBe(false);
      expect(verdict.mismatches.map((m) => m.checkpoint.seq)).toEqual([40, 50]);
      expect(verdict.mismatches.every((m) => m.found === null)).toBe(true);
      expect(verdict.anchoring).toMatchObject({ enabled: true, lastGood: { seq: 30 } });
      expect(verdict.firstSuspectSeq).toBe(31);

      const cli = await d.cli();
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('checkpoint #40');
      expect(cli.stdout).toContain('truncated');
      expect(cli.stdout).toContain('first entry after the last good checkpoint: #31');
      expect(cli.stdout).not.toContain('audit chain ok');
    } finally {
      await d.close();
      await backend.cleanup();
    }
  });

  it('rewriting an entry and recomputing every later hash is detected', async () => {
    const backend = await create();
    const d = await deploy(backend);
    try {
      await d.append(ENTRIES);
      await rewriteAndRehash(backend, d.store, 15, { decision: 'approve', i: 14, note: 'rewritten' });

      const alone = verifyAuditChain(await d.store.listAudit());
      expect(alone).toMatchObject({ ok: true, entries: ENTRIES });

      const verdict = await d.verify();
      expect(verdict.ok).toBe(false);
      expect(verdict.chain.ok).toBe(true);
      expect(verdict.mismatches.map((m) => m.checkpoint.seq)).toEqual([20, 30, 40, 50]);
      expect(verdict.anchoring).toMatchObject({ enabled: true, lastGood: { seq: 10 } });
      expect(verdict.firstSuspectSeq).toBe(11);

      const cli = await d.cli();
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('checkpoint #20');
      expect(cli.stdout).toContain('rewritten');
      expect(cli.stdout).toContain('first entry after the last good checkpoint: #11');
    } finally {
      await d.close();
      await backend.cleanup();
    }
  });

  it.each([
    'kms',
    'hmac',
  ] as const)('a forged checkpoint (bad signature) is rejected (%s): 6 attempts, 0 accepted', async (signerKind) => {
    const backend = await create();
    const d = await deploy(backend, signerKind);
    try {
      await d.append(ENTRIES);
      const rewritten = await rewriteAndRehash(backend, d.store, 15, { decision: 'approve', note: 'forged' });
      const newHash = (seq: number) => rewritten.find((r) => r.seq === seq)?.hash ?? '';

      // The attacker can add object versions to the bucket (Object Lock keeps the old ones) but does not
      // hold the key: they sign the rewritten chain's hashes with keys of their own, or not at all.
      const attackerKms = createKmsSigner(kms, attackerKeyArn);
      const attackerHmac = createHmacSigner(randomBytes(48), hmacSecretArn);
      const put = (key: string, body: string) =>
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ChecksumAlgorithm: 'SHA256' }));
      const genuine = async (seq: number) => {
        const res = await s3.send(
          new GetObjectCommand({ Bucket: bucket, Key: checkpointKey('anchors/', d.chainId, seq) }),
        );
        return JSON.parse((await res.Body?.transformToString()) ?? '') as CheckpointDocument;
      };
      const forge = async (seq: number, signer: typeof attackerKms) =>
        signCheckpoint({ chainId: d.chainId, seq, hash: newHash(seq), at: Date.now() }, signer);
      const forgeries: CheckpointDocument[] = [
        await forge(20, attackerKms),
        await forge(30, attackerHmac),
        { ...(await forge(40, attackerKms)), signature: randomBytes(64).toString('base64') },
        // The genuine checkpoint of #50, its claim edited to the new hash, the real signature kept.
        { ...(await genuine(50)), hash: newHash(50) },
      ];
      for (const f of forgeries) await put(checkpointKey('anchors/', d.chainId, f.seq), JSON.stringify(f));
      // And two that are not checkpoints at all.
      await put(checkpointKey('anchors/', d.chainId, 51), 'not json');
      await put(checkpointKey('anchors/', d.chainId, 52), JSON.stringify({ v: 1, seq: 52 }));
      const attempts = forgeries.length + 2;

      const verdict = await d.verify();
      const accepted = attempts - verdict.forged.length;
      expect({ attempts, accepted }).toEqual({ attempts: 6, accepted: 0 });
      expect(verdict.ok).toBe(false);
      // Only the genuine checkpoints count, and the rewrite they pin is still found.
      expect(verdict.anchoring).toMatchObject({ enabled: true, checkpoints: 5, lastGood: { seq: 10 } });
      expect(verdict.mismatches.map((m) => m.checkpoint.seq)).toEqual([20, 30, 40, 50]);
      expect(verdict.firstSuspectSeq).toBe(11);

      const cli = await d.cli();
      expect(cli.code).toBe(1);
      expect(cli.stdout.match(/FORGED checkpoint/g)?.length).toBe(6);
      expect(cli.stdout).toContain('first entry after the last good checkpoint: #11');
    } finally {
      await d.close();
      await backend.cleanup();
    }
  });

  it('an untouched chain verifies with 0 false alarms', async () => {
    const backend = await create();
    const d = await deploy(backend);
    try {
      let alarms = 0;
      let checks = 0;
      for (const count of [EVERY, ENTRIES - EVERY, 7]) {
        await d.append(count);
        const verdict = await d.verify();
        checks++;
        if (!verdict.ok || verdict.forged.length + verdict.mismatches.length > 0) alarms++;
      }
      expect({ checks, alarms }).toEqual({ checks: 3, alarms: 0 });
      const verdict = await d.verify();
      expect(verdict.anchoring).toMatchObject({
        enabled: true,
        checkpoints: 5,
        lastCheckpoint: { seq: 50 },
        unanchored: 7,
      });

      const cli = await d.cli();
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain(`audit chain ok: ${ENTRIES + 7} entries`);
      expect(cli.stdout).toContain('not yet anchored (7 entries): #51–#57');
      expect(cli.stdout).toContain('verdict: ok');
      expect(cli.stdout).not.toMatch(/FORGED|BROKEN|UNANCHORED/);

      // Closing anchors what is left: then nothing is unanchored.
      await d.audit.close();
      expect((await d.verify()).anchoring).toMatchObject({ unanchored: 0, lastCheckpoint: { seq: 57 } });
    } finally {
      await d.close();
      await backend.cleanup();
    }
  });
});

describe('the bot with audit.checkpoints', () => {
  it('anchors what it wrote when it stops and posts the checkpoint with its full hash to the audit channel', async () => {
    const chainId = `bot-${randomBytes(4).toString('hex')}`;
    const t = await startTestQuell({
      accounts: [accountConfig('prod', '111111111111')],
      audit: { checkpoints: { bucket, prefix: 'anchors/', chainId, retentionDays: 1, kmsKeyId: kmsKeyArn } },
    });
    let head: AuditRecord | undefined;
    try {
      await t.command('no-such-runbook', 'U0ALICE');
      await t.settle();
      head = (await t.quell.store.listAudit()).at(-1);
    } finally {
      await t.close();
    }
    if (!head) throw new Error('the rejected command wrote no audit entry');
    const res = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: checkpointKey('anchors/', chainId, head.seq) }),
    );
    const document = JSON.parse((await res.Body?.transformToString()) ?? '') as CheckpointDocument;
    expect(document).toMatchObject({ chainId, seq: head.seq, hash: head.hash, signer: { kind: 'kms' } });
    expect(res.ObjectLockMode).toBe('COMPLIANCE');
    const texts = t.slack.callsOf('chat.postMessage').map((c) => String(c.body.text));
    expect(texts.some((x) => x.includes(`audit checkpoint \`#${head?.seq}\` hash \`${head?.hash}\``))).toBe(
      true,
    );
  });
});
