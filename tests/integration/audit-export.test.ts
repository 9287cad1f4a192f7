/**
 * `quell audit export` writes the chain to S3 (moto) as JSON lines in chunked objects; every line carries
 * its hash and the previous one, and a receiver that recomputes them with the chain's rule finds them all.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { hashAuditEntry } from '../../src/audit/chain.ts';
import { createLogger } from '../../src/logger.ts';
import { GENESIS_HASH } from '../../src/store/run-rows.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

const execFileAsync = promisify(execFile);

describe('quell audit export', () => {
  const s3 = new S3Client({ region: 'us-east-1' });
  const bucket = `quell-siem-${randomBytes(5).toString('hex')}`;
  let dir: string;
  let url: string;

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    dir = mkdtempSync(join(tmpdir(), 'quell-export-'));
    url = `sqlite:${join(dir, 'quell.db')}`;
    const store = new SqliteStore(url);
    await store.migrate();
    const audit = new AuditLog(store, createLogger({ level: 'silent' }));
    for (let i = 0; i < 25; i++)
      await audit.record({
        type: 'aws.call',
        runId: 'rabcdefghijkl',
        actor: null,
        data: { i, note: "it's" },
      });
    await store.close();
  });
  afterAll(() => {
    s3.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  async function exportCli(...args: string[]) {
    return execFileAsync(process.execPath, [
      'bin/quell.js',
      'audit',
      'export',
      '--bucket',
      bucket,
      '--db',
      url,
      ...args,
    ]);
  }

  async function readLines(prefix: string) {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key ?? '').sort();
    const lines: Record<string, unknown>[] = [];
    for (const key of keys) {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const text = (await res.Body?.transformToString()) ?? '';
      for (const line of text.split('\n').filter(Boolean)) lines.push(JSON.parse(line));
    }
    return { keys, lines };
  }

  it('writes the chain as JSON lines in chunks, and every line re-verifies', async () => {
    const { stdout } = await exportCli('--prefix', 'siem/', '--chunk', '10');
    expect(stdout).toContain('exported 25 entries (#1–#25)');
    const { keys, lines } = await readLines('siem/');
    expect(keys).toEqual([
      `siem/quell/${'1'.padStart(20, '0')}-${'10'.padStart(20, '0')}.jsonl`,
      `siem/quell/${'11'.padStart(20, '0')}-${'20'.padStart(20, '0')}.jsonl`,
      `siem/quell/${'21'.padStart(20, '0')}-${'25'.padStart(20, '0')}.jsonl`,
    ]);
    // A SIEM's re-verification: recompute each hash from the line and link it to the line before.
    let prev = GENESIS_HASH;
    let verified = 0;
    for (const line of lines) {
      const { seq, at, runId, type, actor, data, prevHash, hash } = line as never;
      expect(prevHash).toBe(prev);
      expect(hashAuditEntry(prev, seq, { at, runId, type, actor, data })).toBe(hash);
      prev = hash;
      verified++;
    }
    expect(verified).toBe(25);
  });

  it('starts at --from-seq, linking to the entry before it', async () => {
    const { stdout } = await exportCli('--prefix', 'from/', '--from-seq', '21');
    expect(stdout).toContain('exported 5 entries (#21–#25)');
    const { lines } = await readLines('from/');
    expect(lines.map((l) => l.seq)).toEqual([21, 22, 23, 24, 25]);
    const all = await readLines('siem/');
    expect(lines[0]?.prevHash).toBe(all.lines[19]?.hash);
  });
});
