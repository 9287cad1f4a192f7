/**
 * The embedded store: SQLite through Node's built-in `node:sqlite`, so nothing is installed beside
 * quell. Transactions are `BEGIN IMMEDIATE`, which takes the write lock up front: two processes sharing
 * the file serialise on it, and within one process the synchronous driver cannot interleave.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { StorageError } from '../errors.ts';
import {
  fromJson,
  GENESIS_HASH,
  patchEntries,
  toFindingRecord,
  toJson,
  toLedgerRecord,
  toRun,
} from './run-rows.ts';
import type {
  AuditInput,
  AuditRecord,
  DecisionEvaluator,
  DecisionRecord,
  FindingClaim,
  FindingRecord,
  Json,
  LedgerRecord,
  LedgerRecordWrite,
  RunFilter,
  RunPatch,
  RunRecord,
  RunState,
  ScheduleSlot,
  SnoozeRecord,
  Store,
} from './store.ts';

/** Versioned migrations; append only, never edit an applied one. */
export const MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        runbook TEXT NOT NULL,
        kind TEXT NOT NULL,
        parent_run_id TEXT REFERENCES runs(id),
        state TEXT NOT NULL,
        source TEXT NOT NULL,
        requester TEXT NOT NULL,
        channel TEXT NOT NULL,
        reason TEXT,
        input TEXT NOT NULL,
        account_alias TEXT,
        account_id TEXT,
        region TEXT,
        plan TEXT,
        plan_hash TEXT,
        required_approvals INTEGER NOT NULL,
        break_glass INTEGER NOT NULL,
        review_state TEXT,
        expires_at INTEGER,
        approved_at INTEGER,
        message_ts TEXT,
        result TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX runs_requester ON runs(requester, created_at);
      CREATE INDEX runs_channel ON runs(channel, created_at);
      CREATE INDEX runs_state ON runs(state);
      CREATE TABLE decisions (
        run_id TEXT NOT NULL REFERENCES runs(id),
        user_id TEXT NOT NULL,
        decision TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (run_id, user_id)
      );
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        run_id TEXT,
        type TEXT NOT NULL,
        actor TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_run ON audit(run_id, seq);
      -- Append-only: the application never edits or deletes an entry. (Anyone with the file can still
      -- drop these triggers; the hash chain is what makes such an edit detectable.)
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE schedule_slots (
        schedule_id TEXT NOT NULL,
        slot INTEGER NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        finished_at INTEGER,
        summary TEXT,
        PRIMARY KEY (schedule_id, slot)
      );
      CREATE TABLE snoozes (
        account_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        until INTEGER NOT NULL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (account_id, key_id)
      );
    `,
  },
  {
    // isolate-vpc: each subnet's network-ACL association before the run moved it (restore reads it back).
    version: 3,
    sql: `
      CREATE TABLE acl_associations (
        run_id TEXT NOT NULL REFERENCES runs(id),
        subnet_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        vpc_id TEXT NOT NULL,
        previous_acl_id TEXT NOT NULL,
        quarantine_acl_id TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        recorded_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, subnet_id)
      );
      CREATE INDEX acl_associations_vpc ON acl_associations(account_id, region, vpc_id, recorded_at);
    `,
  },
  {
    // Several replicas: which replica works on an in-flight run, and when it last showed it is alive.
    version: 4,
    sql: `
      ALTER TABLE runs ADD COLUMN executor TEXT;
      ALTER TABLE runs ADD COLUMN heartbeat_at INTEGER;
      CREATE INDEX runs_executor ON runs(executor, state);
    `,
  },
  {
    // The generic run ledger replaces isolate-vpc's own table: each recorded subnet becomes the entry
    // `acl/<account>/<region>/<vpc>/<subnet>` of its run, with the same value, state and times.
    version: 5,
    sql: `
      CREATE TABLE run_ledger (
        run_id TEXT NOT NULL REFERENCES runs(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, key)
      );
      CREATE INDEX run_ledger_recorded ON run_ledger(recorded_at);
      INSERT INTO run_ledger (run_id, key, value, recorded_at, updated_at)
        SELECT run_id, 'acl/' || account_id || '/' || region || '/' || vpc_id || '/' || subnet_id,
          json_object('subnetId', subnet_id, 'previousAclId', previous_acl_id,
            'quarantineAclId', quarantine_acl_id, 'state', state, 'error', error),
          recorded_at, updated_at
        FROM acl_associations;
      DROP TABLE acl_associations;
    `,
  },
  {
    // Security findings from the findings queue: one card per finding id, whichever replica receives it.
    version: 6,
    sql: `
      CREATE TABLE security_findings (
        id TEXT PRIMARY KEY,
        ref TEXT NOT NULL UNIQUE,
        finding TEXT NOT NULL,
        channel TEXT NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_at INTEGER NOT NULL,
        posted_at INTEGER,
        message_ts TEXT
      );
    `,
  },
];

/** A run some replica must still act on (the same predicate in every store; see Store.heartbeatRuns). */
const IN_FLIGHT =
  "(state IN ('planning', 'approved', 'running') OR (state = 'awaiting_approval' AND message_ts IS NULL))";
/** Neither beaten nor changed since the first parameter (given twice). */
const STALE = 'COALESCE(heartbeat_at, 0) < ? AND updated_at < ?';

type Row = Record<string, string | number | bigint | null | Uint8Array>;

/** SQLite implementation of Store. `url` is `sqlite:<path>` or `sqlite::memory:`. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;

  constructor(url: string) {
    const path = url.replace(/^sqlite:/, '');
    try {
      // Inside the try: an unwritable directory (a read-only root filesystem) is a StorageError, not a crash.
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      this.#db = new DatabaseSync(path);
      this.#db.exec(
        'PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;',
      );
    } catch (cause) {
      throw new StorageError(`Cannot open the SQLite database at ${path}.`, { cause });
    }
  }

  async migrate(): Promise<void> {
    this.#transaction(() => {
      this.#db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
      );
      const applied = new Set(
        this.#db
          .prepare('SELECT version FROM schema_migrations')
          .all()
          .map((r) => Number(r.version)),
      );
      for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
        if (applied.has(m.version)) continue;
        this.#db.exec(m.sql);
        this.#db
          .prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)')
          .run(m.version, Date.now());
      }
    });
  }

  async ping(): Promise<void> {
    this.#guard(() => this.#db.prepare('SELECT 1').get());
  }

  async createRun(run: RunRecord): Promise<void> {
    this.#guard(() =>
      this.#db
        .prepare(
          `INSERT INTO runs (id, runbook, kind, parent_run_id, state, source, requester, channel, reason, input,
             account_alias, account_id, region, plan, plan_hash, required_approvals, break_glass, review_state,
             expires_at, approved_at, message_ts, result, error, created_at, updated_at, executor, heartbeat_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          run.id,
          run.runbook,
          run.kind,
          run.parentRunId,
          run.state,
          run.source,
          run.requester,
          run.channel,
          run.reason,
          JSON.stringify(run.input),
          run.accountAlias,
          run.accountId,
          run.region,
          toJson(run.plan),
          run.planHash,
          run.requiredApprovals,
          run.breakGlass ? 1 : 0,
          run.reviewState,
          run.expiresAt,
          run.approvedAt,
          run.messageTs,
          toJson(run.result),
          toJson(run.error),
          run.createdAt,
          run.updatedAt,
          run.executor ?? null,
          run.heartbeatAt ?? null,
        ),
    );
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    return this.#guard(() => {
      const row = this.#db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Row | undefined;
      return row ? toRun(row) : undefined;
    });
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    return this.#guard(() => {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (filter.requester) {
        where.push('requester = ?');
        params.push(filter.requester);
      }
      if (filter.channel) {
        where.push('channel = ?');
        params.push(filter.channel);
      }
      if (filter.parentRunId) {
        where.push('parent_run_id = ?');
        params.push(filter.parentRunId);
      }
      if (filter.states && filter.states.length > 0) {
        where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
        params.push(...filter.states);
      }
      const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`;
      return (this.#db.prepare(sql).all(...params, filter.limit) as Row[]).map(toRun);
    });
  }

  async listOwedReviews(): Promise<RunRecord[]> {
    return this.#guard(() =>
      (
        this.#db
          .prepare(
            `SELECT * FROM runs WHERE break_glass = 1 AND review_state = 'pending' ORDER BY created_at DESC, id`,
          )
          .all() as Row[]
      ).map(toRun),
    );
  }

  async transition(
    id: string,
    from: readonly RunState[],
    to: RunState,
    patch: RunPatch = {},
    now = Date.now(),
  ): Promise<boolean> {
    return this.#guard(() => {
      const { sets, params } = patchColumns(patch);
      const sql = `UPDATE runs SET state = ?, updated_at = ?${sets.map((s) => `, ${s}`).join('')}
                   WHERE id = ? AND state IN (${from.map(() => '?').join(', ')})`;
      const result = this.#db.prepare(sql).run(to, now, ...params, id, ...from);
      return Number(result.changes) === 1;
    });
  }

  async patchRun(id: string, patch: RunPatch, now = Date.now()): Promise<void> {
    const { sets, params } = patchColumns(patch);
    if (sets.length === 0) return;
    this.#guard(() =>
      this.#db
        .prepare(`UPDATE runs SET updated_at = ?, ${sets.join(', ')} WHERE id = ?`)
        .run(now, ...params, id),
    );
  }

  async decide(decision: DecisionRecord, evaluate: DecisionEvaluator) {
    return this.#transaction(() => {
      const row = this.#db.prepare('SELECT * FROM runs WHERE id = ?').get(decision.runId) as Row | undefined;
      if (!row) throw new StorageError(`Run ${decision.runId} vanished during a decision.`);
      const run = toRun(row);
      const decisions = this.#listDecisions(decision.runId);
      const judged = evaluate(run, decisions, decision);
      if (judged.record) {
        this.#db
          .prepare('INSERT INTO decisions (run_id, user_id, decision, at) VALUES (?, ?, ?, ?)')
          .run(decision.runId, decision.userId, decision.decision, decision.at);
      }
      if (judged.nextState && judged.nextState !== run.state) {
        const approvedAt = judged.nextState === 'approved' ? decision.at : run.approvedAt;
        this.#db
          .prepare('UPDATE runs SET state = ?, approved_at = ?, updated_at = ? WHERE id = ? AND state = ?')
          .run(judged.nextState, approvedAt, decision.at, run.id, run.state);
        run.state = judged.nextState;
        run.approvedAt = approvedAt;
      }
      return { outcome: judged.outcome, run };
    });
  }

  async listDecisions(runId: string): Promise<DecisionRecord[]> {
    return this.#guard(() => this.#listDecisions(runId));
  }

  async appendAudit(
    entry: AuditInput,
    chain: (prevHash: string, seq: number, entry: AuditInput) => string,
  ): Promise<AuditRecord> {
    return this.#transaction(() => {
      const last = this.#db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get() as
        | Row
        | undefined;
      const seq = last ? Number(last.seq) + 1 : 1;
      const prevHash = last ? String(last.hash) : GENESIS_HASH;
      const hash = chain(prevHash, seq, entry);
      this.#db
        .prepare(
          'INSERT INTO audit (seq, at, run_id, type, actor, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(seq, entry.at, entry.runId, entry.type, entry.actor, JSON.stringify(entry.data), prevHash, hash);
      return { ...entry, seq, prevHash, hash };
    });
  }

  async listAudit(
    filter: { runId?: string; afterSeq?: number; limit?: number } = {},
  ): Promise<AuditRecord[]> {
    return this.#guard(() => {
      const where: string[] = ['seq > ?'];
      const params: (string | number)[] = [filter.afterSeq ?? 0];
      if (filter.runId) {
        where.push('run_id = ?');
        params.push(filter.runId);
      }
      const rows = this.#db
        .prepare(`SELECT * FROM audit WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`)
        .all(...params, filter.limit ?? -1) as Row[];
      return rows.map((r) => ({
        seq: Number(r.seq),
        at: Number(r.at),
        runId: r.run_id === null ? null : String(r.run_id),
        type: String(r.type),
        actor: r.actor === null ? null : String(r.actor),
        data: JSON.parse(String(r.data)) as Json,
        prevHash: String(r.prev_hash),
        hash: String(r.hash),
      }));
    });
  }

  async claimScheduleSlot(
    scheduleId: string,
    slot: number,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    return this.#transaction(() => {
      const inserted = this.#db
        .prepare(
          'INSERT INTO schedule_slots (schedule_id, slot, claimed_by, claimed_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(scheduleId, slot, owner, now);
      if (Number(inserted.changes) === 1) return true;
      const taken = this.#db
        .prepare(
          `UPDATE schedule_slots SET claimed_by = ?, claimed_at = ?
           WHERE schedule_id = ? AND slot = ? AND finished_at IS NULL AND claimed_at < ?`,
        )
        .run(owner, now, scheduleId, slot, now - leaseMs);
      return Number(taken.changes) === 1;
    });
  }

  async finishScheduleSlot(scheduleId: string, slot: number, summary: Json, now: number): Promise<void> {
    this.#guard(() =>
      this.#db
        .prepare('UPDATE schedule_slots SET finished_at = ?, summary = ? WHERE schedule_id = ? AND slot = ?')
        .run(now, JSON.stringify(summary), scheduleId, slot),
    );
  }

  async lastScheduleSlot(scheduleId: string): Promise<ScheduleSlot | undefined> {
    return this.#guard(() => {
      const row = this.#db
        .prepare('SELECT * FROM schedule_slots WHERE schedule_id = ? ORDER BY slot DESC LIMIT 1')
        .get(scheduleId) as Row | undefined;
      if (!row) return undefined;
      return {
        scheduleId: String(row.schedule_id),
        slot: Number(row.slot),
        claimedBy: String(row.claimed_by),
        claimedAt: Number(row.claimed_at),
        finishedAt: row.finished_at === null ? null : Number(row.finished_at),
        summary: fromJson(row.summary),
      };
    });
  }

  async heartbeatRuns(owner: string, ids: readonly string[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.#guard(() =>
      Number(
        this.#db
          .prepare(
            `UPDATE runs SET heartbeat_at = ? WHERE executor = ? AND id IN (${ids.map(() => '?').join(', ')}) AND ${IN_FLIGHT}`,
          )
          .run(now, owner, ...ids).changes,
      ),
    );
  }

  async listOrphanedRuns(staleBefore: number, limit: number): Promise<RunRecord[]> {
    return this.#guard(() =>
      (
        this.#db
          .prepare(`SELECT * FROM runs WHERE ${IN_FLIGHT} AND ${STALE} ORDER BY updated_at, id LIMIT ?`)
          .all(staleBefore, staleBefore, limit) as Row[]
      ).map(toRun),
    );
  }

  async claimOrphanedRun(id: string, owner: string, now: number, staleBefore: number): Promise<boolean> {
    return this.#guard(
      () =>
        Number(
          this.#db
            .prepare(
              `UPDATE runs SET executor = ?, heartbeat_at = ? WHERE id = ? AND ${IN_FLIGHT} AND ${STALE}`,
            )
            .run(owner, now, id, staleBefore, staleBefore).changes,
        ) === 1,
    );
  }

  async putSnooze(snooze: SnoozeRecord): Promise<void> {
    this.#guard(() =>
      this.#db
        .prepare(
          `INSERT INTO snoozes (account_id, key_id, until, reason, by, at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (account_id, key_id) DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by, at = excluded.at`,
        )
        .run(snooze.accountId, snooze.keyId, snooze.until, snooze.reason, snooze.by, snooze.at),
    );
  }

  async activeSnoozes(now: number): Promise<SnoozeRecord[]> {
    return this.#guard(() =>
      (
        this.#db
          .prepare('SELECT * FROM snoozes WHERE until > ? ORDER BY account_id, key_id')
          .all(now) as Row[]
      ).map((r) => ({
        accountId: String(r.account_id),
        keyId: String(r.key_id),
        until: Number(r.until),
        reason: String(r.reason),
        by: String(r.by),
        at: Number(r.at),
      })),
    );
  }

  async putLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void> {
    if (entries.length === 0) return;
    this.#transaction(() => {
      // DO NOTHING: the first write of a key in a run holds the original; a retry must not replace it.
      const insert = this.#db.prepare(
        `INSERT INTO run_ledger (run_id, key, value, recorded_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (run_id, key) DO NOTHING`,
      );
      for (const e of entries) insert.run(e.runId, e.key, toJson(e.value) ?? 'null', now, now);
    });
  }

  async updateLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void> {
    if (entries.length === 0) return;
    this.#transaction(() => {
      const update = this.#db.prepare(
        'UPDATE run_ledger SET value = ?, updated_at = ? WHERE run_id = ? AND key = ?',
      );
      for (const e of entries) update.run(toJson(e.value) ?? 'null', now, e.runId, e.key);
    });
  }

  async listLedgerEntries(filter: { runId?: string; prefix?: string }): Promise<LedgerRecord[]> {
    return this.#guard(() => {
      const where: string[] = [];
      const params: string[] = [];
      if (filter.runId !== undefined) {
        where.push('run_id = ?');
        params.push(filter.runId);
      }
      if (filter.prefix) {
        // substr, not LIKE: a key may hold % or _.
        where.push('substr(key, 1, length(?)) = ?');
        params.push(filter.prefix, filter.prefix);
      }
      const rows = this.#db
        .prepare(
          `SELECT * FROM run_ledger ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY recorded_at, run_id, key`,
        )
        .all(...params) as Row[];
      return rows.map(toLedgerRecord);
    });
  }

  async claimFinding(
    finding: Pick<FindingRecord, 'id' | 'ref' | 'finding' | 'channel'>,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<FindingClaim> {
    return this.#transaction(() => {
      const inserted = this.#db
        .prepare(
          `INSERT INTO security_findings (id, ref, finding, channel, claimed_by, claimed_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING`,
        )
        .run(finding.id, finding.ref, JSON.stringify(finding.finding), finding.channel, owner, now);
      if (Number(inserted.changes) === 1) return 'claimed';
      const taken = this.#db
        .prepare(
          `UPDATE security_findings SET claimed_by = ?, claimed_at = ?, finding = ?, channel = ?
           WHERE id = ? AND posted_at IS NULL AND claimed_at < ?`,
        )
        .run(owner, now, JSON.stringify(finding.finding), finding.channel, finding.id, now - leaseMs);
      if (Number(taken.changes) === 1) return 'claimed';
      const row = this.#db.prepare('SELECT posted_at FROM security_findings WHERE id = ?').get(finding.id) as
        | Row
        | undefined;
      return row && row.posted_at !== null ? 'posted' : 'held';
    });
  }

  async markFindingPosted(id: string, owner: string, messageTs: string, now: number): Promise<boolean> {
    return this.#guard(
      () =>
        Number(
          this.#db
            .prepare(
              `UPDATE security_findings SET posted_at = ?, message_ts = ?
               WHERE id = ? AND claimed_by = ? AND posted_at IS NULL`,
            )
            .run(now, messageTs, id, owner).changes,
        ) === 1,
    );
  }

  async releaseFinding(id: string, owner: string): Promise<void> {
    this.#guard(() =>
      this.#db
        .prepare('DELETE FROM security_findings WHERE id = ? AND claimed_by = ? AND posted_at IS NULL')
        .run(id, owner),
    );
  }

  async getFindingByRef(ref: string): Promise<FindingRecord | undefined> {
    return this.#guard(() => {
      const row = this.#db.prepare('SELECT * FROM security_findings WHERE ref = ?').get(ref) as
        | Row
        | undefined;
      return row ? toFindingRecord(row) : undefined;
    });
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }

  #listDecisions(runId: string): DecisionRecord[] {
    return (
      this.#db.prepare('SELECT * FROM decisions WHERE run_id = ? ORDER BY at, user_id').all(runId) as Row[]
    ).map((r) => ({
      runId: String(r.run_id),
      userId: String(r.user_id),
      decision: r.decision === 'deny' ? 'deny' : 'approve',
      at: Number(r.at),
    }));
  }

  #transaction<T>(work: () => T): T {
    return this.#guard(() => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = work();
        this.#db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  #guard<T>(work: () => T): T {
    try {
      return work();
    } catch (cause) {
      if (cause instanceof StorageError) throw cause;
      throw new StorageError('The database refused the operation.', { cause });
    }
  }
}

function patchColumns(patch: RunPatch): { sets: string[]; params: (string | number | null)[] } {
  const entries = patchEntries(patch);
  return {
    sets: entries.map(([column]) => `${column} = ?`),
    // node:sqlite has no boolean type: store 1/0.
    params: entries.map(([, value]) =>
      typeof value === 'boolean' ? (value ? 1 : 0) : (value as string | number | null),
    ),
  };
}
