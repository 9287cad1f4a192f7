/**
 * The store for several replicas: PostgreSQL through `pg`'s connection pool. Everything that must happen
 * once is decided by the database, never by a replica's memory: a decision locks the run's row
 * (`SELECT … FOR UPDATE`) for its whole transaction; transitions and claims are conditional updates; audit
 * appends take a transaction-scoped advisory lock, so replicas appending at once still write one chain;
 * migrations run under a session advisory lock, so replicas starting at once apply each one once. The
 * pool reconnects by itself when the database comes back; until then every call fails with StorageError
 * (fail closed).
 */
import pg from 'pg';
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

/**
 * Versioned migrations, append only; each version is the same change as the SQLite store's migration of
 * that number (the dialects differ, the schema does not).
 */
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
        break_glass BOOLEAN NOT NULL,
        review_state TEXT,
        expires_at BIGINT,
        approved_at BIGINT,
        message_ts TEXT,
        result TEXT,
        error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX runs_requester ON runs(requester, created_at);
      CREATE INDEX runs_channel ON runs(channel, created_at);
      CREATE INDEX runs_state ON runs(state);
      CREATE TABLE decisions (
        run_id TEXT NOT NULL REFERENCES runs(id),
        user_id TEXT NOT NULL,
        decision TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (run_id, user_id)
      );
      -- JSON is kept as the exact text that was hashed (jsonb would reorder keys and refuse \\u0000).
      CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        at BIGINT NOT NULL,
        run_id TEXT,
        type TEXT NOT NULL,
        actor TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_run ON audit(run_id, seq);
      -- Append-only: the application never edits or deletes an entry. (A superuser can still drop these
      -- triggers; the hash chain is what makes such an edit detectable.)
      CREATE FUNCTION quell_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit log is append-only'; END
      $$;
      CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION quell_audit_append_only();
      CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION quell_audit_append_only();
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE schedule_slots (
        schedule_id TEXT NOT NULL,
        slot BIGINT NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_at BIGINT NOT NULL,
        finished_at BIGINT,
        summary TEXT,
        PRIMARY KEY (schedule_id, slot)
      );
      CREATE TABLE snoozes (
        account_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        "until" BIGINT NOT NULL,
        reason TEXT NOT NULL,
        "by" TEXT NOT NULL,
        at BIGINT NOT NULL,
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
        recorded_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
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
      ALTER TABLE runs ADD COLUMN heartbeat_at BIGINT;
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
        recorded_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, key)
      );
      CREATE INDEX run_ledger_recorded ON run_ledger(recorded_at);
      INSERT INTO run_ledger (run_id, key, value, recorded_at, updated_at)
        SELECT run_id, 'acl/' || account_id || '/' || region || '/' || vpc_id || '/' || subnet_id,
          json_build_object('subnetId', subnet_id, 'previousAclId', previous_acl_id,
            'quarantineAclId', quarantine_acl_id, 'state', state, 'error', error)::text,
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
        claimed_at BIGINT NOT NULL,
        posted_at BIGINT,
        message_ts TEXT
      );
    `,
  },
];

// Advisory lock keys (0x7175656c6c01 and …02: "quell" in ASCII, then a number), one for migrations and
// one for the audit chain. Advisory locks are per database, so two deployments in one cluster never meet.
const MIGRATION_LOCK = '124749026716673';
export const AUDIT_LOCK = '124749026716674';

/** A run some replica must still act on (the same predicate as the SQLite store's). */
const IN_FLIGHT =
  "(state IN ('planning', 'approved', 'running') OR (state = 'awaiting_approval' AND message_ts IS NULL))";

type Row = Record<string, unknown>;
type Queryable = Pick<pg.PoolClient, 'query'>;

/** Tuning of the connection pool. */
export interface PostgresStoreOptions {
  /** Connections per replica (default 10). */
  poolSize?: number;
  /** How long to wait for a connection before failing closed (default 5 s). */
  connectTimeoutMs?: number;
  /** Longest a single query may take (default 30 s). */
  queryTimeoutMs?: number;
  /**
   * The password, read for each new connection (PGPASSWORD_SECRET_ARN); without it the driver uses
   * the URL's or PGPASSWORD.
   */
  password?: () => Promise<string>;
}

/** PostgreSQL implementation of Store. `url` is `postgres://` or `postgresql://` (libpq-style parameters). */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #guarded = new WeakSet<pg.PoolClient>();
  #closed = false;

  constructor(url: string, options: PostgresStoreOptions = {}) {
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      query_timeout: options.queryTimeoutMs ?? 30_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'quell',
      ...(options.password ? { Client: clientReadingPassword(options.password) } : {}),
    });
    // An idle connection that drops (the database restarted) is only discarded; the next query opens a
    // new one. Without a listener the error would end the process.
    this.#pool.on('error', () => undefined);
  }

  async migrate(): Promise<void> {
    const client = await this.#connect();
    let broken: unknown;
    try {
      await client.query("SET lock_timeout = '60s'");
      // Session-level: held across the migrations' own transactions, released when we unlock or when the
      // connection closes (a replica killed mid-migration blocks nobody).
      // pg honours a per-query `query_timeout` (its types omit it): longer than lock_timeout, so the
      // database's own message is what a replica reports when another one holds the lock too long.
      await client.query({
        text: `SELECT pg_advisory_lock(${MIGRATION_LOCK})`,
        query_timeout: 70_000,
      } as pg.QueryConfig);
      try {
        await client.query(
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
        );
        const applied = new Set(
          (await client.query('SELECT version FROM schema_migrations')).rows.map((r: Row) =>
            Number(r.version),
          ),
        );
        for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
          if (applied.has(m.version)) continue;
          await client.query('BEGIN');
          try {
            await client.query(m.sql);
            await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
              m.version,
              Date.now(),
            ]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK').catch(() => undefined);
            throw error;
          }
        }
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`).catch(() => undefined);
        await client.query('RESET lock_timeout').catch(() => undefined);
      }
    } catch (error) {
      broken = error;
      throw toStorageError(error, 'Could not apply the database migrations.');
    } finally {
      client.release(isConnectionError(broken) ? (broken as Error) : undefined);
    }
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async createRun(run: RunRecord): Promise<void> {
    await this.#query(
      `INSERT INTO runs (id, runbook, kind, parent_run_id, state, source, requester, channel, reason, input,
         account_alias, account_id, region, plan, plan_hash, required_approvals, break_glass, review_state,
         expires_at, approved_at, message_ts, result, error, created_at, updated_at, executor, heartbeat_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
         $22, $23, $24, $25, $26, $27)`,
      [
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
        run.breakGlass,
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
      ],
    );
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const { rows } = await this.#query('SELECT * FROM runs WHERE id = $1', [id]);
    return rows[0] ? toRun(rows[0]) : undefined;
  }

  async listRuns(filter: RunFilter): Promise<RunRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.requester) add('requester = ?', filter.requester);
    if (filter.channel) add('channel = ?', filter.channel);
    if (filter.parentRunId) add('parent_run_id = ?', filter.parentRunId);
    if (filter.states && filter.states.length > 0) add('state = ANY(?)', [...filter.states]);
    params.push(filter.limit);
    const { rows } = await this.#query(
      `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT $${params.length}`,
      params,
    );
    return rows.map(toRun);
  }

  async listOwedReviews(): Promise<RunRecord[]> {
    const { rows } = await this.#query(
      `SELECT * FROM runs WHERE break_glass AND review_state = 'pending' ORDER BY created_at DESC, id`,
    );
    return rows.map(toRun);
  }

  async transition(
    id: string,
    from: readonly RunState[],
    to: RunState,
    patch: RunPatch = {},
    now = Date.now(),
  ): Promise<boolean> {
    const { sets, params } = patchColumns(patch, 3);
    const result = await this.#query(
      `UPDATE runs SET state = $1, updated_at = $2${sets.map((s) => `, ${s}`).join('')}
       WHERE id = $${params.length + 3} AND state = ANY($${params.length + 4})`,
      [to, now, ...params, id, [...from]],
    );
    return result.rowCount === 1;
  }

  async patchRun(id: string, patch: RunPatch, now = Date.now()): Promise<void> {
    const { sets, params } = patchColumns(patch, 2);
    if (sets.length === 0) return;
    await this.#query(
      `UPDATE runs SET updated_at = $1, ${sets.join(', ')} WHERE id = $${params.length + 2}`,
      [now, ...params, id],
    );
  }

  async decide(decision: DecisionRecord, evaluate: DecisionEvaluator) {
    return this.#transaction(async (c) => {
      // The row lock serialises every decision on this run, across replicas, until COMMIT.
      const { rows } = await c.query('SELECT * FROM runs WHERE id = $1 FOR UPDATE', [decision.runId]);
      if (!rows[0]) throw new StorageError(`Run ${decision.runId} vanished during a decision.`);
      const run = toRun(rows[0]);
      const decisions = await listDecisionsWith(c, decision.runId);
      const judged = evaluate(run, decisions, decision);
      if (judged.record) {
        await c.query('INSERT INTO decisions (run_id, user_id, decision, at) VALUES ($1, $2, $3, $4)', [
          decision.runId,
          decision.userId,
          decision.decision,
          decision.at,
        ]);
      }
      if (judged.nextState && judged.nextState !== run.state) {
        const approvedAt = judged.nextState === 'approved' ? decision.at : run.approvedAt;
        await c.query(
          'UPDATE runs SET state = $1, approved_at = $2, updated_at = $3 WHERE id = $4 AND state = $5',
          [judged.nextState, approvedAt, decision.at, run.id, run.state],
        );
        run.state = judged.nextState;
        run.approvedAt = approvedAt;
      }
      return { outcome: judged.outcome, run };
    });
  }

  async listDecisions(runId: string): Promise<DecisionRecord[]> {
    return this.#withClient((c) => listDecisionsWith(c, runId));
  }

  async appendAudit(
    entry: AuditInput,
    chain: (prevHash: string, seq: number, entry: AuditInput) => string,
  ): Promise<AuditRecord> {
    return this.#transaction(async (c) => {
      // One appender at a time in the whole database, until COMMIT or ROLLBACK (or the connection dies).
      await c.query(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK})`);
      const { rows } = await c.query('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
      const last = rows[0];
      const seq = last ? Number(last.seq) + 1 : 1;
      const prevHash = last ? String(last.hash) : GENESIS_HASH;
      const hash = chain(prevHash, seq, entry);
      await c.query(
        'INSERT INTO audit (seq, at, run_id, type, actor, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [seq, entry.at, entry.runId, entry.type, entry.actor, JSON.stringify(entry.data), prevHash, hash],
      );
      return { ...entry, seq, prevHash, hash };
    });
  }

  async listAudit(
    filter: { runId?: string; afterSeq?: number; limit?: number } = {},
  ): Promise<AuditRecord[]> {
    const params: unknown[] = [filter.afterSeq ?? 0];
    let where = 'seq > $1';
    if (filter.runId) {
      params.push(filter.runId);
      where += ' AND run_id = $2';
    }
    params.push(filter.limit ?? null);
    const { rows } = await this.#query(
      `SELECT * FROM audit WHERE ${where} ORDER BY seq LIMIT $${params.length}`,
      params,
    );
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
  }

  async claimScheduleSlot(
    scheduleId: string,
    slot: number,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    // One statement: insert the claim, or take over an unfinished one whose lease ran out. Concurrent
    // claimers wait on the row and re-check the condition, so exactly one gets a row back.
    const result = await this.#query(
      `INSERT INTO schedule_slots (schedule_id, slot, claimed_by, claimed_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (schedule_id, slot) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at
       WHERE schedule_slots.finished_at IS NULL AND schedule_slots.claimed_at < $5`,
      [scheduleId, slot, owner, now, now - leaseMs],
    );
    return result.rowCount === 1;
  }

  async finishScheduleSlot(scheduleId: string, slot: number, summary: Json, now: number): Promise<void> {
    await this.#query(
      'UPDATE schedule_slots SET finished_at = $1, summary = $2 WHERE schedule_id = $3 AND slot = $4',
      [now, JSON.stringify(summary), scheduleId, slot],
    );
  }

  async lastScheduleSlot(scheduleId: string): Promise<ScheduleSlot | undefined> {
    const { rows } = await this.#query(
      'SELECT * FROM schedule_slots WHERE schedule_id = $1 ORDER BY slot DESC LIMIT 1',
      [scheduleId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      scheduleId: String(row.schedule_id),
      slot: Number(row.slot),
      claimedBy: String(row.claimed_by),
      claimedAt: Number(row.claimed_at),
      finishedAt: row.finished_at === null ? null : Number(row.finished_at),
      summary: fromJson(row.summary),
    };
  }

  async heartbeatRuns(owner: string, ids: readonly string[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.#query(
      `UPDATE runs SET heartbeat_at = $1 WHERE executor = $2 AND id = ANY($3) AND ${IN_FLIGHT}`,
      [now, owner, [...ids]],
    );
    return result.rowCount ?? 0;
  }

  async listOrphanedRuns(staleBefore: number, limit: number): Promise<RunRecord[]> {
    const { rows } = await this.#query(
      `SELECT * FROM runs WHERE ${IN_FLIGHT} AND COALESCE(heartbeat_at, 0) < $1 AND updated_at < $1
       ORDER BY updated_at, id LIMIT $2`,
      [staleBefore, limit],
    );
    return rows.map(toRun);
  }

  async claimOrphanedRun(id: string, owner: string, now: number, staleBefore: number): Promise<boolean> {
    const result = await this.#query(
      `UPDATE runs SET executor = $1, heartbeat_at = $2
       WHERE id = $3 AND ${IN_FLIGHT} AND COALESCE(heartbeat_at, 0) < $4 AND updated_at < $4`,
      [owner, now, id, staleBefore],
    );
    return result.rowCount === 1;
  }

  async putLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void> {
    if (entries.length === 0) return;
    await this.#transaction(async (c) => {
      // DO NOTHING: the first write of a key in a run holds the original; a retry must not replace it.
      for (const e of entries) {
        await c.query(
          `INSERT INTO run_ledger (run_id, key, value, recorded_at, updated_at) VALUES ($1, $2, $3, $4, $4)
           ON CONFLICT (run_id, key) DO NOTHING`,
          [e.runId, e.key, toJson(e.value) ?? 'null', now],
        );
      }
    });
  }

  async updateLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void> {
    if (entries.length === 0) return;
    await this.#transaction(async (c) => {
      for (const e of entries) {
        await c.query('UPDATE run_ledger SET value = $1, updated_at = $2 WHERE run_id = $3 AND key = $4', [
          toJson(e.value) ?? 'null',
          now,
          e.runId,
          e.key,
        ]);
      }
    });
  }

  async listLedgerEntries(filter: { runId?: string; prefix?: string }): Promise<LedgerRecord[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.runId !== undefined) {
      params.push(filter.runId);
      where.push(`run_id = $${params.length}`);
    }
    if (filter.prefix) {
      // left(), not LIKE: a key may hold % or _.
      params.push(filter.prefix);
      where.push(`left(key, char_length($${params.length})) = $${params.length}`);
    }
    // COLLATE "C": the same byte order as SQLite, whatever the database's collation.
    const { rows } = await this.#query(
      `SELECT * FROM run_ledger ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY recorded_at, run_id COLLATE "C", key COLLATE "C"`,
      params,
    );
    return rows.map(toLedgerRecord);
  }

  async putSnooze(snooze: SnoozeRecord): Promise<void> {
    await this.#query(
      `INSERT INTO snoozes (account_id, key_id, "until", reason, "by", at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (account_id, key_id) DO UPDATE
         SET "until" = excluded."until", reason = excluded.reason, "by" = excluded."by", at = excluded.at`,
      [snooze.accountId, snooze.keyId, snooze.until, snooze.reason, snooze.by, snooze.at],
    );
  }

  async activeSnoozes(now: number): Promise<SnoozeRecord[]> {
    const { rows } = await this.#query(
      'SELECT * FROM snoozes WHERE "until" > $1 ORDER BY account_id, key_id',
      [now],
    );
    return rows.map((r) => ({
      accountId: String(r.account_id),
      keyId: String(r.key_id),
      until: Number(r.until),
      reason: String(r.reason),
      by: String(r.by),
      at: Number(r.at),
    }));
  }

  async claimFinding(
    finding: Pick<FindingRecord, 'id' | 'ref' | 'finding' | 'channel'>,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<FindingClaim> {
    // One statement: insert the claim, or take over one never posted whose lease ran out. Concurrent
    // claimers wait on the row and re-check the condition, so exactly one gets a row back.
    const claim = () =>
      this.#query(
        `INSERT INTO security_findings (id, ref, finding, channel, claimed_by, claimed_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at,
           finding = excluded.finding, channel = excluded.channel
         WHERE security_findings.posted_at IS NULL AND security_findings.claimed_at < $7`,
        [
          finding.id,
          finding.ref,
          JSON.stringify(finding.finding),
          finding.channel,
          owner,
          now,
          now - leaseMs,
        ],
      );
    let claimed: pg.QueryResult<Row>;
    try {
      claimed = await claim();
    } catch (error) {
      // Two replicas inserting the same new finding at once: ON CONFLICT arbitrates on the id only, so
      // the one that waited can trip the ref's unique index instead (the ref is the id's hash). The other's
      // row is committed by then: once more, and the id's conflict decides. A different id with the same
      // ref (a hash collision) trips it again and stays an error.
      if (!isUniqueViolation(error, 'security_findings_ref_key')) throw error;
      claimed = await claim();
    }
    if (claimed.rowCount === 1) return 'claimed';
    const { rows } = await this.#query('SELECT posted_at FROM security_findings WHERE id = $1', [finding.id]);
    return rows[0] && rows[0].posted_at !== null ? 'posted' : 'held';
  }

  async markFindingPosted(id: string, owner: string, messageTs: string, now: number): Promise<boolean> {
    const result = await this.#query(
      `UPDATE security_findings SET posted_at = $1, message_ts = $2
       WHERE id = $3 AND claimed_by = $4 AND posted_at IS NULL`,
      [now, messageTs, id, owner],
    );
    return result.rowCount === 1;
  }

  async releaseFinding(id: string, owner: string): Promise<void> {
    await this.#query(
      'DELETE FROM security_findings WHERE id = $1 AND claimed_by = $2 AND posted_at IS NULL',
      [id, owner],
    );
  }

  async getFindingByRef(ref: string): Promise<FindingRecord | undefined> {
    const { rows } = await this.#query('SELECT * FROM security_findings WHERE ref = $1', [ref]);
    return rows[0] ? toFindingRecord(rows[0]) : undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  async #connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (cause) {
      throw toStorageError(cause);
    }
    // A connection that drops between two queries of a transaction emits 'error' on the checked-out
    // client; the failing query reports it, so the event itself only needs a listener.
    if (!this.#guarded.has(client)) {
      client.on('error', () => undefined);
      this.#guarded.add(client);
    }
    return client;
  }

  async #query(text: string, params: unknown[] = []): Promise<pg.QueryResult<Row>> {
    return this.#withClient((c) => c.query<Row>(text, params));
  }

  async #withClient<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let failure: unknown;
    try {
      return await work(client);
    } catch (error) {
      failure = error;
      throw toStorageError(error);
    } finally {
      client.release(isConnectionError(failure) ? (failure as Error) : undefined);
    }
  }

  async #transaction<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    return this.#withClient(async (c) => {
      await c.query('BEGIN');
      try {
        const result = await work(c);
        await c.query('COMMIT');
        return result;
      } catch (error) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }
}

async function listDecisionsWith(c: Queryable, runId: string): Promise<DecisionRecord[]> {
  const { rows } = await c.query<Row>('SELECT * FROM decisions WHERE run_id = $1 ORDER BY at, user_id', [
    runId,
  ]);
  return rows.map((r) => ({
    runId: String(r.run_id),
    userId: String(r.user_id),
    decision: r.decision === 'deny' ? 'deny' : 'approve',
    at: Number(r.at),
  }));
}

// Connection-level failures (as opposed to the database refusing a statement): node's socket errors,
// libpq's SQLSTATE class 08, and the server shutting down (57P01–57P03).
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
]);

/** Whether an error means the database could not be reached (rather than that it refused a statement). */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable/i.test(
    error.message,
  );
}

/** Whether `error` (as #query throws it) is PostgreSQL's unique violation of `constraint`. */
function isUniqueViolation(error: unknown, constraint: string): boolean {
  const cause = error instanceof StorageError ? error.cause : error;
  const e = cause as { code?: unknown; constraint?: unknown } | undefined;
  return e?.code === '23505' && e.constraint === constraint;
}

function toStorageError(cause: unknown, refused = 'The database refused the operation.'): StorageError {
  if (cause instanceof StorageError) return cause;
  if (isConnectionError(cause)) return new StorageError('quell cannot reach its database.', { cause });
  return new StorageError(refused, { cause });
}

/**
 * A pg Client that asks `password` for the password of each new connection. Set after the constructor:
 * pg lets a connection string without a password replace a `password` option with an empty string.
 */
function clientReadingPassword(password: () => Promise<string>): typeof pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      (this as unknown as { password: () => Promise<string> }).password = password;
    }
  };
}

/** `column = $n` for each patched field, numbering parameters from `first`. */
function patchColumns(patch: RunPatch, first: number): { sets: string[]; params: unknown[] } {
  const entries = patchEntries(patch);
  return {
    sets: entries.map(([column], i) => `${column} = $${first + i}`),
    params: entries.map(([, value]) => value),
  };
}
