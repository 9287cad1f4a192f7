/**
 * Issue 9.3, tried as an attacker who can write to quell's database (but not append to its audit chain):
 * a forged approval, a tampered plan and a tampered `priorPolicy` must never reach AWS. Each attack is run
 * against the embedded SQLite store and PostgreSQL, through Slack as production wires it, with moto as the
 * account; "executed" is counted in moto (the key's status, the inline policy) and in the audit log (the
 * intents of mutating calls, `execute.started`).
 */
import { DatabaseSync } from 'node:sqlite';
import type { IAMClient } from '@aws-sdk/client-iam';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokePolicyName } from '../../src/runbooks/disable-key.ts';
import { hashMaterial } from '../../src/runbooks/engine/plan-material.ts';
import type { Json, RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  inlinePolicy,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startTestQuell, type TestQuell, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

/** What the attacker would like restored: a policy that allows everything. */
const ATTACKER_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
});

/** Writes straight into the store's tables, as someone with the database's credentials would. */
type RawSql = (sql: string, params: (string | number | null)[]) => Promise<void>;

const BACKENDS: {
  name: string;
  open(): Promise<{ storage?: { url: string }; raw: (dbUrl: string) => RawSql; drop(): Promise<void> }>;
}[] = [
  {
    name: 'SQLite',
    async open() {
      return {
        raw: (dbUrl) => async (sql, params) => {
          const db = new DatabaseSync(dbUrl.replace(/^sqlite:/, ''));
          try {
            db.exec('PRAGMA busy_timeout = 5000');
            db.prepare(sql).run(...params);
          } finally {
            db.close();
          }
        },
        drop: async () => undefined,
      };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const db: TestDatabase = await createTestDatabase('forged');
      // The password never goes in the configuration: the store reads it from the environment.
      const before = process.env.PGPASSWORD;
      process.env.PGPASSWORD = db.password;
      return {
        storage: { url: db.urlWithoutPassword },
        raw: () => async (sql, params) => {
          const client = new pg.Client({ connectionString: db.url });
          await client.connect();
          try {
            let n = 0;
            await client.query(
              sql.replace(/\?/g, () => `$${++n}`),
              params,
            );
          } finally {
            await client.end();
          }
        },
        drop: async () => {
          if (before === undefined) delete process.env.PGPASSWORD;
          else process.env.PGPASSWORD = before;
          await db.drop();
        },
      };
    },
  },
];

describe.each(BACKENDS)('rows forged in the database are not executed ($name)', (backend) => {
  let t: TestQuell;
  let iam: IAMClient;
  let raw: RawSql;
  let drop: () => Promise<void>;
  let offset = 0;
  const now = () => Date.now() + offset;
  const accountId = randomAccountId();

  beforeAll(async () => {
    iam = await adminIam(accountId);
    const opened = await backend.open();
    drop = opened.drop;
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        replicas: { heartbeat: '1s', orphanAfter: '2s' },
        ...(opened.storage ? { storage: opened.storage } : {}),
      },
      { now },
    );
    raw = opened.raw(t.dbUrl);
    // This replica's heartbeat reaches the store, then time passes: it may judge others' runs.
    await t.quell.engine.heartbeat();
    offset += 60_000;
  });
  afterAll(async () => {
    await t?.close();
    iam?.destroy();
    await drop?.();
  });

  /** A disable-key request of `user`'s key waiting for approval, its card posted. */
  async function requestDisable(userName: string, requester: string): Promise<RunRecord> {
    const keyId = await createUserWithKey(iam, userName);
    await t.command(`disable-key ${keyId} reason="forged rows"`, requester);
    const waiting = await waitForRunOf(t.quell, requester, ['awaiting_approval']);
    await t.settle();
    return waiting;
  }

  /** The run's audit entries of a type (and, for AWS calls, an operation). */
  async function entriesOf(runId: string, type: string, operation?: string) {
    return (await t.quell.store.listAudit({ runId })).filter(
      (e) =>
        e.type === type &&
        (operation === undefined || (e.data as { operation?: string }).operation === operation),
    );
  }

  /** Waits until the undo of `parentId` is in one of `states`. */
  async function undoOf(parentId: string, states: string[]): Promise<RunRecord> {
    for (let i = 0; i < 400; i++) {
      const [undo] = await t.quell.store.listRuns({ parentRunId: parentId, limit: 1 });
      if (undo && states.includes(undo.state)) return undo;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no undo of ${parentId} in ${states.join('|')}`);
  }

  it('forged `approved` state and decision rows are not executed by orphan recovery: 1 forged, 0 executed', async () => {
    const waiting = await requestDisable('forged-approval', 'U0RESP1');
    const keyId = (waiting.input as { keyId: string }).keyId;
    // The attacker marks the run approved by a lead, as left behind by a replica that died.
    const long = now() - 10 * 60_000;
    await raw(
      `UPDATE runs SET state = 'approved', approved_at = ?, executor = 'dead-host-1-abcdef', heartbeat_at = ?, updated_at = ? WHERE id = ?`,
      [now() - 60_000, long, long, waiting.id],
    );
    await raw(`INSERT INTO decisions (run_id, user_id, decision, at) VALUES (?, 'U0LEAD1', 'approve', ?)`, [
      waiting.id,
      now() - 60_000,
    ]);

    await t.quell.engine.recoverOrphans();
    await t.settle();

    const stopped = await t.quell.store.getRun(waiting.id);
    expect(stopped?.state).toBe('needs_operator');
    expect(stopped?.error).toMatchObject({ code: 'quell_run_unbound' });
    expect(String((stopped?.error as { message: string }).message)).toContain('no entry in the audit log');
    const [entry] = await entriesOf(waiting.id, 'run.needs_operator');
    expect(entry?.data).toMatchObject({ reason: 'unbound' });
    // Executed: 0 (moto, and the audit log's intents).
    expect(await entriesOf(waiting.id, 'execute.started')).toHaveLength(0);
    expect(await entriesOf(waiting.id, 'aws.intent')).toHaveLength(0);
    expect(await keyStatus(iam, 'forged-approval', keyId)).toBe('Active');
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === stopped?.messageTs);
    expect(thread.some((c) => String(c.body.text).includes('Needs an operator'))).toBe(true);
  });

  it('a plan tampered with between the request and the approval is not executed: 1 tampered, 0 executed', async () => {
    const victimKey = await createUserWithKey(iam, 'tamper-victim');
    const waiting = await requestDisable('tamper-target', 'U0RESP2');
    const targetKey = (waiting.input as { keyId: string }).keyId;
    // The attacker points the approved plan at another key, consistently (data, material and its hash),
    // so the re-check before execution reads the victim's key and agrees with the plan.
    const plan = structuredClone(waiting.plan) as {
      data: Record<string, Json>;
      material: Record<string, Json>;
    };
    for (const part of [plan.data, plan.material]) {
      part.keyId = victimKey;
      part.userName = 'tamper-victim';
    }
    await raw('UPDATE runs SET plan = ?, plan_hash = ? WHERE id = ?', [
      JSON.stringify(plan),
      hashMaterial(plan.material),
      waiting.id,
    ]);

    await t.click('quell_approve', waiting.id, 'U0LEAD1');
    const stopped = await waitForRunState(t.quell, waiting.id, ['needs_operator', 'succeeded', 'failed']);
    expect(stopped.state).toBe('needs_operator');
    expect(String((stopped.error as { message: string }).message)).toContain(
      'the stored plan or target differs',
    );
    expect(await entriesOf(waiting.id, 'aws.intent')).toHaveLength(0);
    expect(await keyStatus(iam, 'tamper-victim', victimKey)).toBe('Active');
    expect(await keyStatus(iam, 'tamper-target', targetKey)).toBe('Active');
  });

  it("a tampered priorPolicy is never restored by undo: 2 tampered (the original's plan, the undo's plan), 0 applied", async () => {
    // Attempt 1: the original run's stored plan, before the undo is requested.
    const first = await requestDisable('prior-original', 'U0RESP3');
    await t.click('quell_approve', first.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, first.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    const forged = structuredClone(done.plan) as { data: Record<string, Json> };
    forged.data.priorPolicy = ATTACKER_POLICY;
    await raw('UPDATE runs SET plan = ? WHERE id = ?', [JSON.stringify(forged), first.id]);
    await t.click('quell_undo', first.id, 'U0RESP3');
    await t.settle();
    const refused = (await t.quell.store.listAudit()).filter(
      (e) =>
        e.type === 'command.rejected' &&
        (e.data as { code?: string }).code === 'quell_run_unbound' &&
        e.actor === 'U0RESP3',
    );
    const [undo1] = await t.quell.store.listRuns({ parentRunId: first.id, limit: 1 });
    if (undo1?.state === 'awaiting_approval') {
      // (Accepted: what main did.) Approve it, as the lead would, to see what it restores.
      await t.click('quell_approve', undo1.id, 'U0LEAD2');
      await waitForRunState(t.quell, undo1.id, ['succeeded', 'failed', 'needs_operator']);
    }
    const policy1 = await inlinePolicy(
      iam,
      'prior-original',
      revokePolicyName((done.input as { keyId: string }).keyId),
    );

    // Attempt 2: the undo's own stored plan, while it waits for approval.
    const second = await requestDisable('prior-undo', 'U0RESP4');
    await t.click('quell_approve', second.id, 'U0LEAD1');
    const done2 = await waitForRunState(t.quell, second.id, ['succeeded', 'failed']);
    expect(done2.state).toBe('succeeded');
    await t.click('quell_undo', second.id, 'U0RESP4');
    const undo2 = await undoOf(second.id, ['awaiting_approval']);
    const undoPlan = structuredClone(undo2.plan) as { data: Record<string, Json> };
    undoPlan.data.policyAction = 'restore';
    undoPlan.data.priorPolicy = ATTACKER_POLICY;
    await raw('UPDATE runs SET plan = ? WHERE id = ?', [JSON.stringify(undoPlan), undo2.id]);
    await t.click('quell_approve', undo2.id, 'U0LEAD2');
    const stopped = await waitForRunState(t.quell, undo2.id, ['needs_operator', 'succeeded', 'failed']);
    const policy2 = await inlinePolicy(
      iam,
      'prior-undo',
      revokePolicyName((done2.input as { keyId: string }).keyId),
    );

    // Applied: 0 of 2. The first undo was refused before it was planned, and said why.
    expect([policy1, policy2].filter((p) => p === ATTACKER_POLICY)).toHaveLength(0);
    expect(undo1).toBeUndefined();
    expect(refused).toHaveLength(1);
    expect(String((refused[0]?.data as { message: string }).message)).toContain(
      `the stored plan of \`${first.id}\` differs`,
    );
    expect(stopped.state).toBe('needs_operator');
    expect(await entriesOf(undo2.id, 'aws.intent')).toHaveLength(0);
    // The session revocations quell put there are still in place.
    expect(policy1).toContain('aws:TokenIssueTime');
    expect(policy2).toContain('aws:TokenIssueTime');
  });

  it('an untouched run still executes, and its undo restores (the binding holds for honest rows)', async () => {
    const waiting = await requestDisable('honest', 'U0RESP5');
    const keyId = (waiting.input as { keyId: string }).keyId;
    await t.click('quell_approve', waiting.id, 'U0LEAD1');
    expect((await waitForRunState(t.quell, waiting.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'honest', keyId)).toBe('Inactive');
    await t.click('quell_undo', waiting.id, 'U0RESP5');
    const undo = await undoOf(waiting.id, ['awaiting_approval']);
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'honest', keyId)).toBe('Active');
    const [planned] = await entriesOf(waiting.id, 'plan.created');
    expect(String((planned?.data as { binding?: string }).binding)).toMatch(/^[0-9a-f]{64}$/);
    const [intent] = await entriesOf(waiting.id, 'approval.intent');
    expect(intent?.actor).toBe('U0LEAD1');
  });
});
