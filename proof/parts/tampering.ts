/**
 * Audit tampering by someone who can write to the database: each kind × both stores × the library
 * (verifyAnchoredChain) and the CLI (`quell audit verify` as a process). Checkpoints are configured
 * (signed by a KMS key in moto, stored in an Object Lock bucket in moto's S3), since truncation and
 * re-hashing leave a chain that adds up on its own and only an outside anchor can catch them. Every
 * deployment is verified untouched first (the false-alarm checks), then tampered with, then verified.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { anchorAuditLog } from '../../src/audit/anchor-audit-log.ts';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { hashAuditEntry } from '../../src/audit/chain.ts';
import { createAuditAnchor } from '../../src/audit/s3-checkpoint-anchor.ts';
import { verifyAnchoredChain } from '../../src/audit/verify-anchored-chain.ts';
import { ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { openStore } from '../../src/open-store.ts';
import { GENESIS_HASH } from '../../src/store/run-rows.ts';
import type { AuditRecord } from '../../src/store/store.ts';
import { createTestDatabase } from '../../tests/support/postgres.ts';
import { n, type Part } from '../support/part.ts';

const execFileAsync = promisify(execFile);
const log = createLogger({ level: 'silent' });
const ENTRIES = 40;
const EVERY = 10;
const REPO = new URL('../..', import.meta.url).pathname;

const KINDS = [
  'edit',
  'delete',
  'reorder',
  'insert',
  'truncate',
  'recomputed re-hash',
  'dropped trigger',
] as const;
type Kind = (typeof KINDS)[number];
const STORES = ['sqlite', 'postgres'] as const;

interface Backend {
  configUrl: string;
  url: string;
  env: Record<string, string>;
  raw(sql: string): Promise<void>;
  dropTriggers(): Promise<void>;
  cleanup(): Promise<void>;
}

async function createBackend(kind: (typeof STORES)[number]): Promise<Backend> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'quell-proof-tamper-'));
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
  }
  const db = await createTestDatabase('tamper');
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
}

const q = (s: string | null | undefined) =>
  s === null || s === undefined ? 'NULL' : `'${s.replaceAll("'", "''")}'`;

/** SQL that rewrites `records` (already re-hashed) in place. */
function rewriteSql(records: AuditRecord[]): string {
  return records
    .map(
      (r) =>
        `UPDATE audit SET data = ${q(JSON.stringify(r.data))}, actor = ${q(r.actor)}, prev_hash = '${r.prevHash}', hash = '${r.hash}' WHERE seq = ${r.seq};`,
    )
    .join('\n');
}

/** Re-hashes `records` from `prevHash` on, as an attacker with the chain's hash function would. */
function rehash(records: AuditRecord[], prevHash: string): AuditRecord[] {
  let prev = prevHash;
  return records.map((r) => {
    const hash = hashAuditEntry(prev, r.seq, r);
    const out = { ...r, prevHash: prev, hash };
    prev = hash;
    return out;
  });
}

/** Applies one kind of tampering at a random place; the triggers are dropped first, as a DB owner can. */
async function tamper(kind: Kind, backend: Backend, records: AuditRecord[]): Promise<string> {
  const at = (seq: number) => records.find((r) => r.seq === seq) as AuditRecord;
  await backend.dropTriggers();
  const k = randomInt(2, ENTRIES - 2);
  switch (kind) {
    case 'edit':
      await backend.raw(
        `UPDATE audit SET data = ${q(JSON.stringify({ decision: 'approve', forged: true }))} WHERE seq = ${k};`,
      );
      return `#${k} edited`;
    case 'delete':
      await backend.raw(`DELETE FROM audit WHERE seq = ${k};`);
      return `#${k} deleted`;
    case 'reorder': {
      const other = randomInt(k + 1, ENTRIES + 1);
      await backend.raw(
        `UPDATE audit SET seq = -1 WHERE seq = ${k}; UPDATE audit SET seq = ${k} WHERE seq = ${other}; UPDATE audit SET seq = ${other} WHERE seq = -1;`,
      );
      return `#${k} and #${other} swapped`;
    }
    case 'insert': {
      const before = at(k);
      const forged: AuditRecord = {
        ...before,
        seq: k + 1,
        actor: 'U0LEAD9',
        data: { decision: 'approve', inserted: true },
      };
      forged.prevHash = before.hash;
      forged.hash = hashAuditEntry(before.hash, forged.seq, forged);
      await backend.raw(
        `UPDATE audit SET seq = seq + 100000 WHERE seq > ${k}; UPDATE audit SET seq = seq - 99999 WHERE seq > 100000;
         INSERT INTO audit (seq, at, run_id, type, actor, data, prev_hash, hash) VALUES (${forged.seq}, ${forged.at}, ${q(forged.runId)}, ${q(forged.type)}, ${q(forged.actor)}, ${q(JSON.stringify(forged.data))}, '${forged.prevHash}', '${forged.hash}');`,
      );
      return `an entry inserted after #${k}`;
    }
    case 'truncate':
      await backend.raw(`DELETE FROM audit WHERE seq > ${k};`);
      return `entries after #${k} deleted`;
    case 'recomputed re-hash': {
      const edited = records
        .filter((r) => r.seq >= k)
        .map((r) => (r.seq === k ? { ...r, data: { decision: 'approve', rewritten: true } } : r));
      await backend.raw(rewriteSql(rehash(edited, at(k - 1).hash)));
      return `#${k} rewritten, every later hash recomputed`;
    }
    case 'dropped trigger': {
      // The whole chain rewritten from the genesis hash: nothing in the database is left to disagree.
      const edited = records.map((r) => (r.seq === 1 ? { ...r, actor: 'U0LEAD9' } : r));
      await backend.raw(rewriteSql(rehash(edited, GENESIS_HASH)));
      return 'triggers dropped, the whole chain rewritten from #1 and re-hashed';
    }
  }
}

export function tamperingPart(): Part {
  const cells = new Map<string, { tried: number; detected: number }>();
  const cell = (key: string) => {
    let c = cells.get(key);
    if (!c) {
      c = { tried: 0, detected: 0 };
      cells.set(key, c);
    }
    return c;
  };
  let cleanChecks = 0;
  let falseAlarms = 0;
  return {
    name: 'tampering',
    budgetSeconds: 90,
    async run(ctx) {
      const s3 = new S3Client({ region: 'us-east-1' });
      const kms = new KMSClient({ region: 'us-east-1' });
      ctx.onCleanup(() => {
        s3.destroy();
        kms.destroy();
      });
      const bucket = `quell-proof-${randomBytes(5).toString('hex')}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
      const key = await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
      const kmsKeyId = key.KeyMetadata?.Arn ?? '';
      const libraryTrials = Math.max(1, Math.round(2 * ctx.scale));

      const deploy = async (backend: Backend) => {
        const chainId = `proof-${randomBytes(4).toString('hex')}`;
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
          audit: {
            checkpoints: {
              bucket,
              prefix: 'anchors/',
              chainId,
              retentionDays: 1,
              kmsKeyId,
              every: { entries: EVERY },
            },
          },
        };
        const config = ConfigSchema.parse(input);
        const store = await openStore(backend.url);
        const audit = new AuditLog(store, log);
        const writer = await anchorAuditLog(config, audit, log);
        if (!writer) throw new Error('checkpoints are configured');
        for (let i = 0; i < ENTRIES; i++) {
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
        const dir = mkdtempSync(join(tmpdir(), 'quell-proof-tamper-config-'));
        const configPath = join(dir, 'quell.yaml');
        writeFileSync(configPath, JSON.stringify(input));
        const settings = config.audit.checkpoints;
        if (!settings) throw new Error('unreachable');
        return {
          store,
          async library() {
            const anchor = await createAuditAnchor(settings, 'us-east-1');
            try {
              return (
                await verifyAnchoredChain(await store.listAudit(), {
                  store: anchor.store,
                  signer: anchor.signer,
                  chainId,
                })
              ).ok;
            } finally {
              anchor.destroy();
            }
          },
          async cli() {
            try {
              const { stdout } = await execFileAsync(process.execPath, ['bin/quell.js', 'audit', 'verify'], {
                cwd: REPO,
                env: { ...process.env, ...backend.env, QUELL_CONFIG: configPath, QUELL_LOG_LEVEL: 'silent' },
              });
              ctx.canaries.scan('cli output', stdout);
              return stdout.includes('verdict: ok');
            } catch (error) {
              ctx.canaries.scan('cli output', String((error as { stdout?: string }).stdout ?? ''));
              return false;
            }
          },
          async close() {
            await audit.close();
            await store.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      };

      outer: for (const storeKind of STORES) {
        for (const kind of KINDS) {
          for (let trial = 0; trial < libraryTrials; trial++) {
            if (Date.now() > ctx.softDeadline) break outer;
            const viaCli = trial === 0;
            const backend = await createBackend(storeKind);
            const d = await deploy(backend);
            try {
              // Untouched first: any alarm here is a false one.
              cleanChecks++;
              if (!(await d.library())) falseAlarms++;
              if (viaCli && kind === KINDS[0]) {
                cleanChecks++;
                if (!(await d.cli())) falseAlarms++;
              }
              await tamper(kind, backend, await d.store.listAudit());
              const lib = cell(`${kind}|${storeKind}|library`);
              lib.tried++;
              if (!(await d.library())) lib.detected++;
              if (viaCli) {
                const cli = cell(`${kind}|${storeKind}|cli`);
                cli.tried++;
                if (!(await d.cli())) cli.detected++;
              }
              ctx.canaries.scan('audit', JSON.stringify(await d.store.listAudit()));
            } finally {
              await d.close();
              await backend.cleanup();
            }
          }
        }
      }
    },
    report(cutOff) {
      const rows = KINDS.map((kind) => {
        const parts = STORES.flatMap((s) =>
          (['library', 'cli'] as const).map((via) => ({ s, via, c: cells.get(`${kind}|${s}|${via}`) })),
        );
        const tried = parts.reduce((a, p) => a + (p.c?.tried ?? 0), 0);
        const detected = parts.reduce((a, p) => a + (p.c?.detected ?? 0), 0);
        const covered = parts.every((p) => (p.c?.tried ?? 0) > 0);
        const detail = parts
          .map((p) => `${p.s}/${p.via} ${p.c?.detected ?? 0}/${p.c?.tried ?? 0}`)
          .join(', ');
        return {
          goal: `audit tampering — ${kind}: detected by library and CLI on both stores, 100%`,
          tried: `${n(tried)}${cutOff ? ' (cut off)' : ''}`,
          result: `${tried ? Math.floor((detected / tried) * 100) : 0}% detected (${detail})`,
          pass: covered && detected === tried,
        };
      });
      rows.push({
        goal: 'audit tampering — untouched chains: 0 false alarms (library and CLI, both stores)',
        tried: n(cleanChecks),
        result: `${falseAlarms} false alarms`,
        pass: cleanChecks > 0 && falseAlarms === 0,
      });
      return rows;
    },
  };
}
