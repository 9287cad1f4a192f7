/**
 * The audit log is append-only in the store and tamper-evident by its hash chain: an edited, deleted or
 * reordered entry is detected and named, by the library and by `quell audit verify` as a process.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, sanitizeAuditData } from '../../src/audit/audit-log.ts';
import { createLogger } from '../../src/logger.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

const execFileAsync = promisify(execFile);

describe('audit hash chain', () => {
  let dir: string;
  let url: string;
  let store: SqliteStore;
  let audit: AuditLog;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quell-audit-'));
    url = `sqlite:${join(dir, 'audit.db')}`;
    store = new SqliteStore(url);
    await store.migrate();
    audit = new AuditLog(store, createLogger({ level: 'silent' }));
    for (let i = 0; i < 20; i++) {
      await audit.record({
        type: 'approval.decision',
        runId: `r${i}`,
        actor: 'U0LEAD1',
        data: { decision: i % 2 ? 'approve' : 'deny', i },
      });
    }
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A raw connection with the append-only triggers dropped, as an attacker with the file would do. */
  function tamper(sql: string, ...params: (string | number)[]) {
    const db = new DatabaseSync(join(dir, 'audit.db'));
    db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
    db.prepare(sql).run(...params);
    db.close();
  }

  async function cliVerify(): Promise<{ code: number; stdout: string }> {
    try {
      const { stdout } = await execFileAsync(process.execPath, [
        'bin/quell.js',
        'audit',
        'verify',
        '--db',
        url,
      ]);
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, stdout: e.stdout };
    }
  }

  it('verifies an untouched chain', async () => {
    const verdict = await audit.verify();
    expect(verdict).toMatchObject({ ok: true, entries: 20 });
    const cli = await cliVerify();
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('audit chain ok: 20 entries');
  });

  it('refuses updates and deletes through SQL: 2 attempts, 0 accepted', () => {
    const db = new DatabaseSync(join(dir, 'audit.db'));
    let refused = 0;
    for (const sql of ["UPDATE audit SET data = '{}' WHERE seq = 3", 'DELETE FROM audit WHERE seq = 3']) {
      try {
        db.exec(sql);
      } catch {
        refused++;
      }
    }
    db.close();
    expect(refused).toBe(2);
  });

  it('detects an edited entry and names it', async () => {
    tamper(`UPDATE audit SET data = '{"decision":"approve","i":6}' WHERE seq = 7`);
    expect(await audit.verify()).toMatchObject({
      ok: false,
      badSeq: 7,
      reason: expect.stringContaining('edited'),
    });
    const cli = await cliVerify();
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('BROKEN at entry #7');
  });

  it('detects an edited actor', async () => {
    tamper(`UPDATE audit SET actor = 'U0OTHER' WHERE seq = 12`);
    expect(await audit.verify()).toMatchObject({ ok: false, badSeq: 12 });
  });

  it('detects a deleted entry', async () => {
    tamper('DELETE FROM audit WHERE seq = 5');
    expect(await audit.verify()).toMatchObject({
      ok: false,
      badSeq: 6,
      reason: expect.stringContaining('missing'),
    });
  });

  it('detects reordered entries', async () => {
    tamper('UPDATE audit SET seq = -1 WHERE seq = 8');
    tamper('UPDATE audit SET seq = 8 WHERE seq = 9');
    tamper('UPDATE audit SET seq = 9 WHERE seq = -1');
    expect(await audit.verify()).toMatchObject({ ok: false, badSeq: 8 });
  });

  it('detects a re-hashed edit that does not re-chain what follows', async () => {
    // Even recomputing the edited row's own hash breaks the link of the next entry.
    const [entry] = await store.listAudit({ afterSeq: 9, limit: 1 });
    if (!entry) throw new Error('no entry');
    tamper(`UPDATE audit SET hash = ? WHERE seq = 10`, 'f'.repeat(64));
    expect(await audit.verify()).toMatchObject({ ok: false, badSeq: 10 });
  });

  it('never stores secret-named fields or token-shaped text', async () => {
    const data = sanitizeAuditData({
      SecretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      nested: { sessionToken: 'abc', note: 'token xoxb-1234567890-abcdefghij in text' },
      ClientRequestToken: 'quell-r123-rotation',
    });
    const text = JSON.stringify(data);
    expect(text).not.toContain('wJalrXUtnFEMI');
    expect(text).not.toContain('xoxb-1234567890');
    expect(text).toContain('quell-r123-rotation');
  });
});
