/**
 * One suite, both stores: every Store method against SQLite (a temporary file) and PostgreSQL (a fresh
 * database in the run's throwaway cluster), including what only matters with several replicas: several
 * store instances on one database deciding, appending to the audit chain, claiming schedule slots and
 * taking over orphaned runs at the same time; and the run ledger, including the rows an older database
 * kept in isolate-vpc's own table, which the migration moves into it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluateDecision } from '../../src/approvals/evaluate-decision.ts';
import { hashAuditEntry, verifyAuditChain } from '../../src/audit/chain.ts';
import { StorageError } from '../../src/errors.ts';
import { openStore } from '../../src/open-store.ts';
import { listSavedAcls } from '../../src/runbooks/isolate-vpc.ts';
import { createRunLedger } from '../../src/runbooks/run-ledger.ts';
import { MIGRATIONS as POSTGRES_MIGRATIONS } from '../../src/store/postgres-store.ts';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/store/sqlite-store.ts';
import type { AuditInput, DecisionOutcome, RunRecord, Store } from '../../src/store/store.ts';
import { createTestDatabase } from '../support/postgres.ts';

/** A database for one test: its URL, raw SQL for tampering checks, and cleanup. */
interface Backend {
  url: string;
  raw(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

const BACKENDS: { name: string; create: () => Promise<Backend> }[] = [
  {
    name: 'sqlite',
    async create() {
      const dir = mkdtempSync(join(tmpdir(), 'quell-store-'));
      const path = join(dir, 'quell.db');
      return {
        url: `sqlite:${path}`,
        async raw(sql) {
          const db = new DatabaseSync(path);
          try {
            db.exec(sql);
          } finally {
            db.close();
          }
        },
        async cleanup() {
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async create() {
      const db = await createTestDatabase('store');
      return {
        url: db.url,
        async raw(sql) {
          const client = new pg.Client({ connectionString: db.url });
          await client.connect();
          try {
            await client.query(sql);
          } finally {
            await client.end();
          }
        },
        cleanup: () => db.drop(),
      };
    },
  },
];

let counter = 0;
/** A run record with sensible defaults. */
function makeRun(overrides: Partial<RunRecord> = {}): RunRecord {
  counter++;
  const now = 1_700_000_000_000 + counter;
  return {
    id: `r${String(counter).padStart(12, 'a')}`,
    runbook: 'disable-key',
    kind: 'run',
    parentRunId: null,
    state: 'awaiting_approval',
    source: 'slack',
    requester: 'U0RESP',
    channel: 'C0INCIDENT',
    reason: null,
    input: { key: 'AKIAEXAMPLE' },
    accountAlias: 'prod',
    accountId: '111111111111',
    region: 'us-east-1',
    plan: null,
    planHash: null,
    requiredApprovals: 1,
    breakGlass: false,
    reviewState: null,
    expiresAt: null,
    approvedAt: null,
    messageTs: '1.0001',
    result: null,
    error: null,
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

describe.each(BACKENDS)('$name store', ({ name, create }) => {
  let backend: Backend;
  let store: Store;
  const extra: Store[] = [];

  /** Another store on the same database, as another replica would open it. */
  async function replica(): Promise<Store> {
    const s = await openStore(backend.url);
    extra.push(s);
    return s;
  }

  beforeEach(async () => {
    backend = await create();
    store = await openStore(backend.url);
  });
  afterEach(async () => {
    for (const s of extra.splice(0)) await s.close();
    await store.close();
    await backend.cleanup();
  });

  it('migrates idempotently, also when several replicas start at once', async () => {
    await store.migrate();
    const others = await Promise.all(Array.from({ length: 4 }, () => openStore(backend.url)));
    extra.push(...others);
    await Promise.all([store.migrate(), ...others.map((s) => s.migrate())]);
    await store.ping();
    const run = makeRun();
    await store.createRun(run);
    expect((await others[0]?.getRun(run.id))?.id).toBe(run.id);
  });

  it('round-trips a run, including JSON with control characters, unicode and booleans', async () => {
    const run = makeRun({
      reason: 'pasted in a gist — 🔑',
      input: { key: 'AKIA', nested: { list: [1, 2.5, null, true], text: 'nul\u0000 and \n newline' } },
      plan: { summary: 's', calls: [] },
      planHash: 'a'.repeat(64),
      breakGlass: true,
      reviewState: 'pending',
      expiresAt: 1_800_000_000_000,
      approvedAt: 1_700_000_000_500,
      result: { ok: true },
      error: { code: 'x', message: 'y' },
      executor: 'replica-a',
      heartbeatAt: 1_700_000_000_900,
    });
    await store.createRun(run);
    expect(await store.getRun(run.id)).toEqual(run);
    expect(await store.getRun('rnonexistent00')).toBeUndefined();
    const minimal = makeRun();
    await store.createRun(minimal);
    expect(await store.getRun(minimal.id)).toEqual({ ...minimal, executor: null, heartbeatAt: null });
  });

  it('refuses a second run with the same id', async () => {
    const run = makeRun();
    await store.createRun(run);
    await expect(store.createRun(run)).rejects.toBeInstanceOf(StorageError);
  });

  it('lists runs newest first, by requester, channel, parent and state, up to the limit', async () => {
    const a = makeRun({ requester: 'U0A', channel: 'C0ONE', state: 'succeeded' });
    const b = makeRun({ requester: 'U0A', channel: 'C0TWO', state: 'awaiting_approval' });
    const c = makeRun({ requester: 'U0B', channel: 'C0ONE', state: 'failed' });
    const undo = makeRun({
      kind: 'undo',
      parentRunId: a.id,
      requester: 'U0B',
      channel: 'C0ONE',
      state: 'planning',
    });
    for (const r of [a, b, c, undo]) await store.createRun(r);
    const ids = (runs: RunRecord[]) => runs.map((r) => r.id);
    expect(ids(await store.listRuns({ limit: 10 }))).toEqual([undo.id, c.id, b.id, a.id]);
    expect(ids(await store.listRuns({ requester: 'U0A', limit: 10 }))).toEqual([b.id, a.id]);
    expect(ids(await store.listRuns({ channel: 'C0ONE', limit: 10 }))).toEqual([undo.id, c.id, a.id]);
    expect(ids(await store.listRuns({ parentRunId: a.id, limit: 10 }))).toEqual([undo.id]);
    expect(ids(await store.listRuns({ states: ['succeeded', 'failed'], limit: 10 }))).toEqual([c.id, a.id]);
    expect(ids(await store.listRuns({ requester: 'U0B', states: ['failed'], limit: 10 }))).toEqual([c.id]);
    expect(ids(await store.listRuns({ limit: 2 }))).toEqual([undo.id, c.id]);
  });

  it('lists every owed break-glass review, newest first, however many newer runs there are', async () => {
    const oldest = makeRun({ breakGlass: true, reviewState: 'pending', state: 'succeeded' });
    const reviewed = makeRun({ breakGlass: true, reviewState: 'reviewed', state: 'succeeded' });
    const normal = makeRun({ state: 'succeeded' });
    const failed = makeRun({ breakGlass: true, reviewState: 'pending', state: 'failed' });
    for (const r of [oldest, reviewed, normal, failed]) await store.createRun(r);
    for (let i = 0; i < 510; i++) await store.createRun(makeRun({ state: 'succeeded' }));
    expect((await store.listOwedReviews()).map((r) => r.id)).toEqual([failed.id, oldest.id]);
    await store.patchRun(failed.id, { reviewState: 'reviewed' });
    expect((await store.listOwedReviews()).map((r) => r.id)).toEqual([oldest.id]);
  });

  it('transitions only from the expected states, with the patch', async () => {
    const run = makeRun({ state: 'approved' });
    await store.createRun(run);
    expect(await store.transition(run.id, ['awaiting_approval'], 'running', {}, 5)).toBe(false);
    expect((await store.getRun(run.id))?.state).toBe('approved');
    expect(
      await store.transition(
        run.id,
        ['approved'],
        'running',
        { executor: 'replica-a', heartbeatAt: 10, result: { started: true } },
        10,
      ),
    ).toBe(true);
    const running = await store.getRun(run.id);
    expect(running).toMatchObject({
      state: 'running',
      updatedAt: 10,
      executor: 'replica-a',
      heartbeatAt: 10,
      result: { started: true },
    });
    expect(await store.transition(run.id, ['approved'], 'running')).toBe(false);
    expect(await store.transition('rmissing00000', ['approved'], 'running')).toBe(false);
  });

  it('claims a run for execution exactly once under 30 concurrent transitions from 3 replicas', async () => {
    const run = makeRun({ state: 'approved' });
    await store.createRun(run);
    const stores = [store, await replica(), await replica()];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        stores[i % 3]?.transition(run.id, ['approved'], 'running', { executor: `replica-${i % 3}` }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('patches fields other than the state', async () => {
    const run = makeRun({ messageTs: null });
    await store.createRun(run);
    await store.patchRun(run.id, { messageTs: '123.456', reviewState: 'reviewed', breakGlass: true }, 42);
    await store.patchRun(run.id, {}, 99);
    expect(await store.getRun(run.id)).toMatchObject({
      messageTs: '123.456',
      reviewState: 'reviewed',
      breakGlass: true,
      updatedAt: 42,
      state: 'awaiting_approval',
    });
    await store.patchRun(run.id, { plan: null, error: { message: 'x' } }, 43);
    expect(await store.getRun(run.id)).toMatchObject({ plan: null, error: { message: 'x' } });
  });

  it('records decisions in one transaction with the evaluator', async () => {
    const run = makeRun({ requiredApprovals: 2 });
    await store.createRun(run);
    const first = await store.decide(
      { runId: run.id, userId: 'U0LEAD1', decision: 'approve', at: 100 },
      evaluateDecision,
    );
    expect(first.outcome).toEqual({ kind: 'recorded', approvals: 1, required: 2 });
    const self = await store.decide(
      { runId: run.id, userId: 'U0RESP', decision: 'approve', at: 101 },
      evaluateDecision,
    );
    expect(self.outcome).toMatchObject({ kind: 'rejected', reason: 'self' });
    const duplicate = await store.decide(
      { runId: run.id, userId: 'U0LEAD1', decision: 'approve', at: 102 },
      evaluateDecision,
    );
    expect(duplicate.outcome).toMatchObject({ kind: 'rejected', reason: 'duplicate' });
    const second = await store.decide(
      { runId: run.id, userId: 'U0LEAD2', decision: 'approve', at: 103 },
      evaluateDecision,
    );
    expect(second.outcome).toEqual({ kind: 'approved', approvals: 2, required: 2 });
    expect(second.run).toMatchObject({ state: 'approved', approvedAt: 103 });
    expect(await store.getRun(run.id)).toMatchObject({ state: 'approved', approvedAt: 103, updatedAt: 103 });
    expect(await store.listDecisions(run.id)).toEqual([
      { runId: run.id, userId: 'U0LEAD1', decision: 'approve', at: 100 },
      { runId: run.id, userId: 'U0LEAD2', decision: 'approve', at: 103 },
    ]);
    const late = await store.decide(
      { runId: run.id, userId: 'U0LEAD3', decision: 'deny', at: 104 },
      evaluateDecision,
    );
    expect(late.outcome).toMatchObject({ kind: 'rejected', reason: 'closed' });
    await expect(
      store.decide({ runId: 'rmissing00000', userId: 'U0X', decision: 'approve', at: 1 }, evaluateDecision),
    ).rejects.toBeInstanceOf(StorageError);
  });

  it('50 concurrent decisions from 3 replicas: exactly one approved outcome', async () => {
    const run = makeRun({ requiredApprovals: 1 });
    await store.createRun(run);
    const stores = [store, await replica(), await replica()];
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (stores[i % 3] as Store).decide(
          { runId: run.id, userId: `U0APPR${String(i).padStart(3, '0')}`, decision: 'approve', at: 1000 + i },
          evaluateDecision,
        ),
      ),
    );
    const kinds = outcomes.map((o) => o.outcome.kind);
    expect(kinds.filter((k) => k === 'approved')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'rejected')).toHaveLength(49);
    expect(await store.listDecisions(run.id)).toHaveLength(1);
    expect((await store.getRun(run.id))?.state).toBe('approved');
  });

  it('50 concurrent decisions needing 3 approvals: exactly 3 accepted, one of them approving', async () => {
    const run = makeRun({ requiredApprovals: 3 });
    await store.createRun(run);
    const stores = [store, await replica(), await replica()];
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (stores[i % 3] as Store).decide(
          { runId: run.id, userId: `U0APPR${String(i).padStart(3, '0')}`, decision: 'approve', at: 1000 + i },
          evaluateDecision,
        ),
      ),
    );
    const kinds = outcomes.map((o) => o.outcome.kind);
    expect(kinds.filter((k) => k === 'approved')).toHaveLength(1);
    expect(kinds.filter((k) => k === 'recorded')).toHaveLength(2);
    expect(await store.listDecisions(run.id)).toHaveLength(3);
  });

  it('an approve and a deny racing (20 times): never approved once denied, never both', async () => {
    const stores = [store, await replica()];
    for (let i = 0; i < 20; i++) {
      const run = makeRun();
      await store.createRun(run);
      const [approve, deny] = await Promise.all([
        (stores[i % 2] as Store).decide(
          { runId: run.id, userId: 'U0LEAD1', decision: 'approve', at: 10 },
          evaluateDecision,
        ),
        (stores[(i + 1) % 2] as Store).decide(
          { runId: run.id, userId: 'U0LEAD2', decision: 'deny', at: 10 },
          evaluateDecision,
        ),
      ]);
      const accepted = [approve, deny].filter((o) => o.outcome.kind !== 'rejected');
      expect(accepted).toHaveLength(1);
      const final = await store.getRun(run.id);
      expect(final?.state).toBe(deny.outcome.kind === 'denied' ? 'denied' : 'approved');
      expect(await store.listDecisions(run.id)).toHaveLength(1);
    }
  });

  it('appends a hash chain that verifies, and lists it by run, position and limit', async () => {
    const entries: AuditInput[] = [
      { at: 1, runId: 'rone000000000', type: 'command.received', actor: 'U0A', data: { text: 'nul\u0000' } },
      { at: 2, runId: null, type: 'approval.rejected', actor: null, data: { n: 1.5, ok: false } },
      { at: 3, runId: 'rone000000000', type: 'run.finished', actor: null, data: { nested: { a: [1] } } },
    ];
    const written = [];
    for (const e of entries) written.push(await store.appendAudit(e, hashAuditEntry));
    expect(written.map((w) => w.seq)).toEqual([1, 2, 3]);
    expect(written[1]?.prevHash).toBe(written[0]?.hash);
    const all = await store.listAudit();
    expect(all).toEqual(written);
    expect(verifyAuditChain(all)).toMatchObject({ ok: true, entries: 3 });
    expect((await store.listAudit({ runId: 'rone000000000' })).map((e) => e.seq)).toEqual([1, 3]);
    expect((await store.listAudit({ afterSeq: 1 })).map((e) => e.seq)).toEqual([2, 3]);
    expect((await store.listAudit({ limit: 2 })).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('keeps one valid chain when 3 replicas append 120 entries at once', async () => {
    const stores = [store, await replica(), await replica()];
    await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        (stores[i % 3] as Store).appendAudit(
          { at: i, runId: null, type: 'test.entry', actor: `replica-${i % 3}`, data: { i } },
          hashAuditEntry,
        ),
      ),
    );
    const chain = await store.listAudit();
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(verifyAuditChain(chain)).toMatchObject({ ok: true, entries: 120 });
    expect(new Set(chain.map((e) => (e.data as { i: number }).i)).size).toBe(120);
  });

  it('refuses to edit or delete an audit entry', async () => {
    await store.appendAudit({ at: 1, runId: null, type: 't', actor: null, data: {} }, hashAuditEntry);
    await expect(backend.raw("UPDATE audit SET type = 'edited'")).rejects.toThrow(/append-only/);
    await expect(backend.raw('DELETE FROM audit')).rejects.toThrow(/append-only/);
    expect(await store.listAudit()).toHaveLength(1);
  });

  it('claims a schedule slot once, lets another replica take over after the lease, never after finish', async () => {
    const b = await replica();
    expect(await store.claimScheduleSlot('reminder-0', 1000, 'replica-a', 1000, 60_000)).toBe(true);
    // Replica b, within the lease: refused (a is alive and working).
    expect(await b.claimScheduleSlot('reminder-0', 1000, 'replica-b', 30_000, 60_000)).toBe(false);
    // a dies without finishing; once the lease has run out b takes over.
    expect(await b.claimScheduleSlot('reminder-0', 1000, 'replica-b', 61_001, 60_000)).toBe(true);
    expect(await store.lastScheduleSlot('reminder-0')).toMatchObject({
      slot: 1000,
      claimedBy: 'replica-b',
      claimedAt: 61_001,
      finishedAt: null,
      summary: null,
    });
    await b.finishScheduleSlot('reminder-0', 1000, { posted: 3 }, 62_000);
    expect(await store.claimScheduleSlot('reminder-0', 1000, 'replica-c', 999_999, 60_000)).toBe(false);
    expect(await store.lastScheduleSlot('reminder-0')).toMatchObject({
      claimedBy: 'replica-b',
      finishedAt: 62_000,
      summary: { posted: 3 },
    });
    // A later slot is the last one; another schedule is separate.
    expect(await store.claimScheduleSlot('reminder-0', 2000, 'replica-a', 2000, 60_000)).toBe(true);
    expect((await store.lastScheduleSlot('reminder-0'))?.slot).toBe(2000);
    expect(await store.lastScheduleSlot('reminder-1')).toBeUndefined();
  });

  it('20 replicas claiming one slot (fresh, then after the lease): exactly one wins each time', async () => {
    const stores = [store, await replica(), await replica()];
    const claim = (now: number) =>
      Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (stores[i % 3] as Store).claimScheduleSlot('daily', 5000, `replica-${i}`, now, 1000),
        ),
      );
    expect((await claim(5000)).filter(Boolean)).toHaveLength(1);
    expect((await claim(5500)).filter(Boolean)).toHaveLength(0);
    expect((await claim(7000)).filter(Boolean)).toHaveLength(1);
  });

  it('claims a finding once, lets a claim be released or taken over after its lease, never after it is posted', async () => {
    const b = await replica();
    const finding = {
      id: 'gd-1',
      ref: 'f0123456789abcdef0123',
      finding: { title: 'x' },
      channel: 'C0FINDINGS',
    };
    expect(await store.claimFinding(finding, 'replica-a', 1000, 60_000)).toBe('claimed');
    // Another replica (or another delivery) within the lease: held, nothing posted twice.
    expect(await b.claimFinding(finding, 'replica-b', 2000, 60_000)).toBe('held');
    // a could not post: it releases its claim, and the next delivery claims it.
    await store.releaseFinding('gd-1', 'replica-a');
    expect(await b.claimFinding(finding, 'replica-b', 3000, 60_000)).toBe('claimed');
    // b dies without posting; after the lease a takes over, and b can no longer record a post.
    expect(await store.claimFinding(finding, 'replica-a', 70_000, 60_000)).toBe('claimed');
    expect(await b.markFindingPosted('gd-1', 'replica-b', '1.1', 70_001)).toBe(false);
    expect(await store.markFindingPosted('gd-1', 'replica-a', '1700000000.000100', 70_002)).toBe(true);
    expect(await b.claimFinding(finding, 'replica-b', 999_999, 60_000)).toBe('posted');
    await b.releaseFinding('gd-1', 'replica-a'); // a posted finding is never released
    expect(await b.getFindingByRef('f0123456789abcdef0123')).toEqual({
      ...finding,
      claimedBy: 'replica-a',
      claimedAt: 70_000,
      postedAt: 70_002,
      messageTs: '1700000000.000100',
    });
    expect(await store.getFindingByRef('f9999999999999999999x')).toBeUndefined();
  });

  it('20 replicas claiming one new finding at once, 10 findings: exactly one claims each, none fails', async () => {
    // A new finding's claim races on two unique keys (id and ref); the loser of the race must see the
    // winner's claim, not a storage error. Ten findings, so that the race is run many times.
    const stores = [store, await replica(), await replica()];
    for (let f = 0; f < 10; f++) {
      const finding = { id: `sh-${f}`, ref: `fabcdefabcdefabcdefa${f}`, finding: {}, channel: 'C0FINDINGS' };
      const claims = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          (stores[i % 3] as Store).claimFinding(finding, `replica-${i}`, 5000, 60_000),
        ),
      );
      const answers = claims.map((c) => (c.status === 'fulfilled' ? c.value : 'failed'));
      expect(answers.filter((c) => c === 'claimed')).toHaveLength(1);
      expect(answers.filter((c) => c === 'held')).toHaveLength(19);
    }
  });

  it('stores snoozes, replaces them per key, and lists those in force', async () => {
    await store.putSnooze({ accountId: '111', keyId: 'AKIA1', until: 100, reason: 'r1', by: 'U0A', at: 1 });
    await store.putSnooze({ accountId: '111', keyId: 'AKIA2', until: 50, reason: 'r2', by: 'U0A', at: 1 });
    await store.putSnooze({ accountId: '111', keyId: 'AKIA1', until: 200, reason: 'r3', by: 'U0B', at: 2 });
    expect(await store.activeSnoozes(60)).toEqual([
      { accountId: '111', keyId: 'AKIA1', until: 200, reason: 'r3', by: 'U0B', at: 2 },
    ]);
    expect(await store.activeSnoozes(10)).toHaveLength(2);
    expect(await store.activeSnoozes(500)).toEqual([]);
  });

  it('keeps a ledger per run: first write of a key wins, updates in place, lists by run and key prefix', async () => {
    const first = makeRun({ state: 'running' });
    const second = makeRun({ state: 'running' });
    await store.createRun(first);
    await store.createRun(second);
    const vpc = 'acl/111111111111/eu-west-1/vpc-0abc/';
    await store.putLedgerEntries(
      [
        { runId: first.id, key: `${vpc}subnet-1`, value: { previousAclId: 'acl-orig1', state: 'recorded' } },
        { runId: first.id, key: `${vpc}subnet-2`, value: { previousAclId: 'acl-orig2', state: 'recorded' } },
      ],
      10,
    );
    // A retry writes again: the original value is kept.
    await store.putLedgerEntries(
      [
        {
          runId: first.id,
          key: `${vpc}subnet-1`,
          value: { previousAclId: 'acl-quarantine', state: 'recorded' },
        },
      ],
      20,
    );
    await store.putLedgerEntries([], 25);
    await store.updateLedgerEntries(
      [
        { runId: first.id, key: `${vpc}subnet-1`, value: { previousAclId: 'acl-orig1', state: 'isolated' } },
        { runId: first.id, key: `${vpc}subnet-2`, value: { previousAclId: 'acl-orig2', state: 'failed' } },
        // Not recorded: an update never creates an entry.
        { runId: second.id, key: `${vpc}subnet-9`, value: { state: 'isolated' } },
      ],
      30,
    );
    await store.putLedgerEntries(
      [
        {
          runId: second.id,
          key: `${vpc}subnet-1`,
          value: { previousAclId: 'acl-quarantine', state: 'recorded' },
        },
      ],
      40,
    );
    // Another VPC whose id starts like the first one's, and keys holding LIKE wildcards.
    await store.putLedgerEntries(
      [
        { runId: second.id, key: 'acl/111111111111/eu-west-1/vpc-0abcdef/subnet-1', value: null },
        { runId: second.id, key: 'odd/%_', value: [1, 'two', { three: true }] },
      ],
      50,
    );
    const all = await store.listLedgerEntries({ prefix: vpc });
    expect(all.map((e) => [e.runId, e.key, e.value, e.recordedAt, e.updatedAt])).toEqual([
      [first.id, `${vpc}subnet-1`, { previousAclId: 'acl-orig1', state: 'isolated' }, 10, 30],
      [first.id, `${vpc}subnet-2`, { previousAclId: 'acl-orig2', state: 'failed' }, 10, 30],
      [second.id, `${vpc}subnet-1`, { previousAclId: 'acl-quarantine', state: 'recorded' }, 40, 40],
    ]);
    expect(await store.listLedgerEntries({ runId: second.id, prefix: vpc })).toHaveLength(1);
    expect((await store.listLedgerEntries({ runId: first.id })).map((e) => e.key)).toEqual([
      `${vpc}subnet-1`,
      `${vpc}subnet-2`,
    ]);
    expect(await store.listLedgerEntries({ prefix: 'odd/%' })).toEqual([
      { runId: second.id, key: 'odd/%_', value: [1, 'two', { three: true }], recordedAt: 50, updatedAt: 50 },
    ]);
    expect(await store.listLedgerEntries({ prefix: 'odd/x' })).toEqual([]);
    expect(await store.listLedgerEntries({ prefix: 'acl/111111111111/us-east-1/' })).toEqual([]);
    expect(await store.listLedgerEntries({})).toHaveLength(5);
  });

  it('moves the ACL associations of an older database into the ledger when it migrates', async () => {
    // A database as quell left it before the ledger (migrations 1-4), with two isolations recorded.
    const old = await create();
    try {
      const migrations = name === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
      const run = (id: string) =>
        `INSERT INTO runs (id, runbook, kind, state, source, requester, channel, input, required_approvals,
           break_glass, created_at, updated_at)
         VALUES ('${id}', 'isolate-vpc', 'run', 'partial', 'slack', 'U0RESP', 'C0INCIDENT', '{}', 2, ${name === 'sqlite' ? 0 : 'false'}, 1, 1);`;
      const acl = (
        runId: string,
        subnet: string,
        previous: string,
        state: string,
        error: string,
        at: number,
      ) =>
        `INSERT INTO acl_associations (run_id, subnet_id, account_id, region, vpc_id, previous_acl_id,
           quarantine_acl_id, state, error, recorded_at, updated_at)
         VALUES ('${runId}', '${subnet}', '111111111111', 'eu-west-1', 'vpc-0abc1234', '${previous}',
           'acl-quarantine', '${state}', ${error}, ${at}, ${at + 5});`;
      await old.raw(
        [
          'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);',
          ...migrations.filter((m) => m.version <= 4).map((m) => m.sql),
          ...[1, 2, 3, 4].map((v) => `INSERT INTO schema_migrations (version, applied_at) VALUES (${v}, 1);`),
          run('raaaaaaaaaaaa'),
          run('rbbbbbbbbbbbb'),
          acl('raaaaaaaaaaaa', 'subnet-1', 'acl-orig1', 'isolated', 'NULL', 10),
          acl('raaaaaaaaaaaa', 'subnet-2', 'acl-orig2', 'failed', "'IncorrectState'", 10),
          acl('rbbbbbbbbbbbb', 'subnet-1', 'acl-quarantine', 'recorded', 'NULL', 40),
        ].join('\n'),
      );
      const migrated = await openStore(old.url);
      extra.push(migrated);
      expect(
        await listSavedAcls(createRunLedger(migrated), {
          accountId: '111111111111',
          region: 'eu-west-1',
          vpcId: 'vpc-0abc1234',
        }),
      ).toEqual([
        {
          runId: 'raaaaaaaaaaaa',
          subnetId: 'subnet-1',
          previousAclId: 'acl-orig1',
          quarantineAclId: 'acl-quarantine',
          state: 'isolated',
          error: null,
          recordedAt: 10,
          updatedAt: 15,
        },
        {
          runId: 'raaaaaaaaaaaa',
          subnetId: 'subnet-2',
          previousAclId: 'acl-orig2',
          quarantineAclId: 'acl-quarantine',
          state: 'failed',
          error: 'IncorrectState',
          recordedAt: 10,
          updatedAt: 15,
        },
        {
          runId: 'rbbbbbbbbbbbb',
          subnetId: 'subnet-1',
          previousAclId: 'acl-quarantine',
          quarantineAclId: 'acl-quarantine',
          state: 'recorded',
          error: null,
          recordedAt: 40,
          updatedAt: 45,
        },
      ]);
      // Migrating again changes nothing; the old table is gone.
      await migrated.migrate();
      expect(await migrated.listLedgerEntries({})).toHaveLength(3);
      await expect(old.raw('SELECT * FROM acl_associations')).rejects.toThrow(/acl_associations/);
    } finally {
      await old.cleanup();
    }
  });

  it('heartbeats in-flight runs and finds the orphans of a dead replica', async () => {
    const planning = makeRun({ state: 'planning', executor: 'a', heartbeatAt: 100, updatedAt: 100 });
    const running = makeRun({ state: 'running', executor: 'a', heartbeatAt: 100, updatedAt: 100 });
    const approved = makeRun({ state: 'approved', executor: null, heartbeatAt: null, updatedAt: 100 });
    const noCard = makeRun({ state: 'awaiting_approval', messageTs: null, executor: 'a', updatedAt: 100 });
    const waiting = makeRun({ state: 'awaiting_approval', messageTs: '1.2', executor: 'a', updatedAt: 100 });
    const done = makeRun({ state: 'succeeded', executor: 'a', heartbeatAt: 100, updatedAt: 100 });
    const other = makeRun({ state: 'running', executor: 'b', heartbeatAt: 100, updatedAt: 100 });
    for (const r of [planning, running, approved, noCard, waiting, done, other]) await store.createRun(r);

    // Replica a is alive and working on these runs: those still in flight and still its own are refreshed.
    const working = [planning.id, running.id, noCard.id, waiting.id, done.id, other.id];
    expect(await store.heartbeatRuns('a', working, 5000)).toBe(3);
    expect(await store.heartbeatRuns('a', [], 5000)).toBe(0);
    expect((await store.getRun(running.id))?.heartbeatAt).toBe(5000);
    expect((await store.getRun(done.id))?.heartbeatAt).toBe(100);
    expect((await store.getRun(running.id))?.updatedAt).toBe(100);
    const orphans = await store.listOrphanedRuns(1000, 50);
    expect(orphans.map((r) => r.id).sort()).toEqual([approved.id, other.id].sort());

    // Later a dies too: everything in flight is orphaned, nothing else.
    const later = (await store.listOrphanedRuns(6000, 50)).map((r) => r.id).sort();
    expect(later).toEqual([planning.id, running.id, approved.id, noCard.id, other.id].sort());
    expect(await store.listOrphanedRuns(6000, 2)).toHaveLength(2);
  });

  it('lets exactly one of 3 sweeping replicas claim an orphan, and only while it is stale', async () => {
    const run = makeRun({ state: 'running', executor: 'dead', heartbeatAt: 100, updatedAt: 100 });
    await store.createRun(run);
    const stores = [store, await replica(), await replica()];
    const wins = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        (stores[i % 3] as Store).claimOrphanedRun(run.id, `replica-${i}`, 10_000, 5000),
      ),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
    const claimed = await store.getRun(run.id);
    expect(claimed?.heartbeatAt).toBe(10_000);
    expect(claimed?.executor).toMatch(/^replica-\d+$/);
    // Fresh again, so nobody else may claim it until it goes stale once more.
    expect(await store.claimOrphanedRun(run.id, 'late', 11_000, 5000)).toBe(false);
    // A finished run is never an orphan.
    const done = makeRun({ state: 'failed', executor: 'dead', heartbeatAt: 1, updatedAt: 1 });
    await store.createRun(done);
    expect(await store.claimOrphanedRun(done.id, 'x', 10_000, 5000)).toBe(false);
  });

  it('fails closed with StorageError once the database is gone', async () => {
    const gone = await replica();
    await gone.close();
    await expect(gone.ping()).rejects.toBeInstanceOf(StorageError);
    await expect(gone.getRun('rabc')).rejects.toBeInstanceOf(StorageError);
    await expect(
      gone.appendAudit({ at: 1, runId: null, type: 't', actor: null, data: {} }, hashAuditEntry),
    ).rejects.toBeInstanceOf(StorageError);
    const outcome: Promise<{ outcome: DecisionOutcome }> = gone.decide(
      { runId: 'rabc', userId: 'U0A', decision: 'approve', at: 1 },
      evaluateDecision,
    );
    await expect(outcome).rejects.toBeInstanceOf(StorageError);
  });
});
