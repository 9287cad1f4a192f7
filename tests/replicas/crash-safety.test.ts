/**
 * Crash safety with real processes: two replicas (`node src/main.ts`, HTTP mode) share one PostgreSQL
 * database and moto; AWS is reached through a loopback proxy that can hold a chosen request or its
 * response, so a replica can be killed with SIGKILL at an exact point:
 *
 *   1. after the ack (the command acknowledged, planning under way)
 *   2. after the approval commit (the run is `approved`, not yet claimed for execution, the decision not
 *      yet audited: the test holds the audit chain's advisory lock, where the replica's next step waits)
 *   3. between the audit intent and the AWS call (UpdateAccessKey written as intent, never sent)
 *   4. after the AWS call (UpdateAccessKey done in AWS, the replica never heard)
 *
 * Each time the surviving replica must pick the run up (1, 2) or hand it to an operator with a message
 * in its thread (3, 4); nothing executes twice, no audit entry written before the kill is lost, and the
 * chain verifies with `quell audit verify --db postgres://…` run as a process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IAMClient } from '@aws-sdk/client-iam';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openStore } from '../../src/open-store.ts';
import { AUDIT_LOCK } from '../../src/store/postgres-store.ts';
import type { AuditRecord, RunRecord, Store } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../support/fake-slack.ts';
import { type HoldProxy, startHoldProxy } from '../support/hold-proxy.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { type ReplicaProcess, type ReplicaSetup, startReplicaProcess } from '../support/replica-process.ts';
import { buttonClick, postSigned, slashCommand } from '../support/slack-requests.ts';
import { waitUntil } from '../support/wait-until.ts';

const execFileAsync = promisify(execFile);
const INCIDENT = 'C0INCIDENT';

describe('kill -9 at every point of a run, with two replicas on PostgreSQL', () => {
  let db: TestDatabase;
  let store: Store;
  let slack: FakeSlack;
  let awsProxy: HoldProxy;
  let iam: IAMClient;
  let setup: ReplicaSetup;
  const replicas: ReplicaProcess[] = [];
  const accountId = randomAccountId();

  const command = (replica: ReplicaProcess, text: string, user: string) =>
    postSigned(
      replica.baseUrl,
      slashCommand({ text, user, channel: INCIDENT, responseUrl: `${slack.url}/response/${user}` }),
    );
  const click = (replica: ReplicaProcess, actionId: string, runId: string, user: string) =>
    postSigned(
      replica.baseUrl,
      buttonClick({
        actionId,
        value: runId,
        user,
        channel: INCIDENT,
        responseUrl: `${slack.url}/response/${user}`,
      }),
    );

  const runOf = (user: string, states: string[]) =>
    waitUntil(`a run of ${user} in ${states.join('|')}`, async () => {
      const [run] = await store.listRuns({ requester: user, limit: 1 });
      return run && states.includes(run.state) ? run : undefined;
    });
  const runIn = (runId: string, states: string[], timeoutMs?: number) =>
    waitUntil(
      `run ${runId} in ${states.join('|')}`,
      async () => {
        const run = await store.getRun(runId);
        return run && states.includes(run.state) ? run : undefined;
      },
      timeoutMs,
    );
  const entriesOf = async (runId: string, type: string, operation?: string) =>
    (await store.listAudit({ runId })).filter(
      (e) => e.type === type && (!operation || (e.data as { operation?: string }).operation === operation),
    );
  /** Every entry written so far must still be there, unchanged, after the kill. */
  const expectNoEntryLost = async (before: AuditRecord[]) => {
    const after = await store.listAudit();
    expect(after.slice(0, before.length)).toEqual(before);
  };
  /** The AWS requests about one IAM user (each point uses its own). */
  const byUser = (user: string) => (body: URLSearchParams) => body.get('UserName') === user;
  /** Intent before action: AWS never received a mutating call the audit log has no intent for. */
  const expectIntentBeforeEveryCall = async (runId: string, user: string) => {
    for (const operation of ['UpdateAccessKey', 'PutUserPolicy']) {
      const sent = awsProxy.forwarded(operation, byUser(user));
      expect(sent).toBeLessThanOrEqual((await entriesOf(runId, 'aws.intent', operation)).length);
    }
  };
  /** Waits until the run's card is in the channel. */
  const cardPosted = (runId: string) =>
    slack.waitFor((calls) =>
      calls.some(
        (c) => c.method === 'chat.postMessage' && String(JSON.stringify(c.body.blocks)).includes(runId),
      ),
    );
  const threadOf = (run: RunRecord) =>
    slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts === run.messageTs)
      .map((c) => String(c.body.text));

  beforeAll(async () => {
    db = await createTestDatabase('crash');
    store = await openStore(db.url);
    slack = await startFakeSlack();
    awsProxy = await startHoldProxy(inject('motoUrl'));
    iam = await adminIam(accountId);
    setup = {
      config: {
        slack: { mode: 'http' },
        accounts: [accountConfig('prod', accountId)],
        approvals: { approvers: ['U0LEAD1', 'U0LEAD2'], expiresIn: '15m' },
        channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
        // No password in the file: it comes from PGPASSWORD, as in production.
        storage: { url: db.urlWithoutPassword },
        replicas: { count: 2, heartbeat: '1s', orphanAfter: '4s' },
      },
      env: {
        PGPASSWORD: db.password,
        SLACK_API_URL: slack.apiUrl,
        AWS_ENDPOINT_URL: awsProxy.url,
      },
    };
    const [a, b] = await Promise.all([startReplicaProcess('a1', setup), startReplicaProcess('b', setup)]);
    replicas.push(a, b);
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await store?.close();
    await awsProxy?.close();
    await slack?.close();
    iam?.destroy();
    await db?.drop();
  });

  const survivor = () => replicas[1] as ReplicaProcess;

  it('1. after the ack: the request is planned again by the live replica, approved and run once', async () => {
    const keyId = await createUserWithKey(iam, 'crash-ack');
    const a = replicas[0] as ReplicaProcess;
    // The first AWS request of planning (assuming the read role) is held: the command is acknowledged.
    const held = awsProxy.hold('AssumeRole', 'request', {
      where: (body) => body.get('SourceIdentity') === 'U0RESP1',
    });
    const ack = await command(a, `disable-key ${keyId} reason="kill after ack"`, 'U0RESP1');
    expect(ack.status).toBe(200);
    expect(String(ack.json?.text)).toContain('Planning');
    await held;
    const planning = await runOf('U0RESP1', ['planning']);
    expect(planning.executor).toMatch(/-\d+-[0-9a-f]{6}$/);
    const before = await store.listAudit();
    await a.kill9();

    const waiting = await runIn(planning.id, ['awaiting_approval'], 20_000);
    expect(waiting.executor).not.toBe(planning.executor);
    const recovered = await entriesOf(planning.id, 'run.recovered');
    expect(recovered.map((e) => (e.data as { action: string }).action)).toEqual(['plan again']);
    await expectNoEntryLost(before);
    // The card was posted by the survivor; an approver clicks it there.
    await cardPosted(planning.id);
    await click(survivor(), 'quell_approve', planning.id, 'U0LEAD1');
    expect((await runIn(planning.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(awsProxy.forwarded('UpdateAccessKey', byUser('crash-ack'))).toBe(1);
    expect(await entriesOf(planning.id, 'aws.intent', 'UpdateAccessKey')).toHaveLength(1);
    expect(await keyStatus(iam, 'crash-ack', keyId)).toBe('Inactive');
    await expectIntentBeforeEveryCall(planning.id, 'crash-ack');
    replicas[0] = await startReplicaProcess('a2', setup);
  });

  it('2. after the approval commit: the pending approval survives and the live replica executes it once', async () => {
    const keyId = await createUserWithKey(iam, 'crash-approved');
    const a = replicas[0] as ReplicaProcess;
    await command(a, `disable-key ${keyId} reason="kill after approval"`, 'U0RESP2');
    const waiting = await runOf('U0RESP2', ['awaiting_approval']);
    await cardPosted(waiting.id);
    // The replica chains the decision's intent, then commits the decision on the run's row. The test
    // holds that row until the intent is chained, then takes the audit chain's lock and lets the row go,
    // so the replica stops at its first step after the decision commits (auditing it): the run is
    // approved, not yet claimed, and the decision's outcome not yet audited.
    const rowLock = new pg.Client({ connectionString: db.url });
    await rowLock.connect();
    await rowLock.query('BEGIN');
    await rowLock.query('SELECT id FROM runs WHERE id = $1 FOR UPDATE', [waiting.id]);
    const auditLock = new pg.Client({ connectionString: db.url });
    await auditLock.connect();
    const before = await store.listAudit();
    await click(a, 'quell_approve', waiting.id, 'U0LEAD1');
    await waitUntil('the decision intent to be chained', async () =>
      (await entriesOf(waiting.id, 'approval.intent')).length > 0 ? true : undefined,
    );
    await auditLock.query('BEGIN');
    await auditLock.query(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK})`);
    await rowLock.query('ROLLBACK');
    await rowLock.end();
    await runIn(waiting.id, ['approved']);
    await waitUntil('the replica to wait for the audit lock', async () => {
      const { rows } = await auditLock.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      );
      return (rows[0] as { n: number }).n > 0 ? true : undefined;
    });
    await a.kill9();
    await auditLock.query('ROLLBACK');
    await auditLock.end();
    expect((await store.getRun(waiting.id))?.state).toBe('approved');
    expect(await store.listDecisions(waiting.id)).toMatchObject([{ userId: 'U0LEAD1', decision: 'approve' }]);

    const done = await runIn(waiting.id, ['succeeded', 'failed', 'needs_operator', 'expired'], 20_000);
    expect(done.state).toBe('succeeded');
    const recovered = await entriesOf(waiting.id, 'run.recovered');
    expect(recovered.map((e) => (e.data as { action: string }).action)).toEqual(['execute']);
    // The decision the dead replica never audited is in the chain all the same.
    expect(recovered[0]?.data).toMatchObject({ decisions: [{ user: 'U0LEAD1', decision: 'approve' }] });
    expect(await entriesOf(waiting.id, 'approval.decision')).toHaveLength(0);
    expect(await entriesOf(waiting.id, 'execute.started')).toHaveLength(1);
    expect(await entriesOf(waiting.id, 'aws.intent', 'UpdateAccessKey')).toHaveLength(1);
    expect(awsProxy.forwarded('UpdateAccessKey', byUser('crash-approved'))).toBe(1);
    expect(await keyStatus(iam, 'crash-approved', keyId)).toBe('Inactive');
    await expectIntentBeforeEveryCall(waiting.id, 'crash-approved');
    await expectNoEntryLost(before);
    replicas[0] = await startReplicaProcess('a3', setup);
  });

  it('3. between the audit intent and the AWS call: needs an operator, the call never sent, never retried', async () => {
    const keyId = await createUserWithKey(iam, 'crash-intent');
    const a = replicas[0] as ReplicaProcess;
    await command(survivor(), `disable-key ${keyId} reason="kill before the call"`, 'U0RESP3');
    const waiting = await runOf('U0RESP3', ['awaiting_approval']);
    await cardPosted(waiting.id);
    const held = awsProxy.hold('UpdateAccessKey', 'request', { where: byUser('crash-intent') });
    await click(a, 'quell_approve', waiting.id, 'U0LEAD2');
    await held;
    expect(await entriesOf(waiting.id, 'aws.intent', 'UpdateAccessKey')).toHaveLength(1);
    expect(await entriesOf(waiting.id, 'aws.call', 'UpdateAccessKey')).toHaveLength(0);
    expect((await store.getRun(waiting.id))?.state).toBe('running');
    const before = await store.listAudit();
    await a.kill9();

    const stuck = await runIn(waiting.id, ['needs_operator', 'succeeded', 'failed'], 20_000);
    expect(stuck.state).toBe('needs_operator');
    expect(String((stuck.error as { message?: string }).message)).toContain('`iam:UpdateAccessKey`');
    await slack.waitFor(() => threadOf(stuck).some((t) => t.includes('Needs an operator')));
    expect(threadOf(stuck).find((t) => t.includes('Needs an operator'))).toContain('iam:UpdateAccessKey');
    expect(
      slack
        .callsOf('chat.update')
        .some(
          (c) => c.body.ts === stuck.messageTs && JSON.stringify(c.body.blocks).includes('Needs an operator'),
        ),
    ).toBe(true);
    const marked = await entriesOf(waiting.id, 'run.needs_operator');
    expect(marked).toHaveLength(1);
    // disable-key sends PutUserPolicy alongside; at the kill it may not have started, be unanswered or be done.
    const calls = marked[0]?.data as { unfinished: string[]; completed: string[] };
    expect(calls.unfinished).toContain('iam:UpdateAccessKey');
    for (const name of [...calls.unfinished, ...calls.completed])
      expect(['iam:PutUserPolicy', 'iam:UpdateAccessKey']).toContain(name);
    await expectIntentBeforeEveryCall(waiting.id, 'crash-intent');
    // Never sent (the caller died while it was held) and never retried.
    await new Promise((r) => setTimeout(r, 1500));
    expect(awsProxy.forwarded('UpdateAccessKey', byUser('crash-intent'))).toBe(0);
    expect(await keyStatus(iam, 'crash-intent', keyId)).toBe('Active');
    expect((await store.getRun(waiting.id))?.state).toBe('needs_operator');
    await expectNoEntryLost(before);
    replicas[0] = await startReplicaProcess('a4', setup);
  });

  it('4. after the AWS call: needs an operator, the call made exactly once, never repeated', async () => {
    const keyId = await createUserWithKey(iam, 'crash-call');
    const a = replicas[0] as ReplicaProcess;
    await command(survivor(), `disable-key ${keyId} reason="kill after the call"`, 'U0RESP4');
    const waiting = await runOf('U0RESP4', ['awaiting_approval']);
    await cardPosted(waiting.id);
    const held = awsProxy.hold('UpdateAccessKey', 'response', { where: byUser('crash-call') });
    await click(a, 'quell_approve', waiting.id, 'U0LEAD2');
    await held;
    expect(await keyStatus(iam, 'crash-call', keyId)).toBe('Inactive');
    const before = await store.listAudit();
    await a.kill9();

    const stuck = await runIn(waiting.id, ['needs_operator', 'succeeded', 'failed'], 20_000);
    expect(stuck.state).toBe('needs_operator');
    await slack.waitFor(() => threadOf(stuck).some((t) => t.includes('Needs an operator')));
    await new Promise((r) => setTimeout(r, 1500));
    expect(awsProxy.forwarded('UpdateAccessKey', byUser('crash-call'))).toBe(1);
    expect(await entriesOf(waiting.id, 'aws.intent', 'UpdateAccessKey')).toHaveLength(1);
    expect((await entriesOf(waiting.id, 'aws.intent', 'PutUserPolicy')).length).toBeLessThanOrEqual(1);
    await expectIntentBeforeEveryCall(waiting.id, 'crash-call');
    const marked = await entriesOf(waiting.id, 'run.needs_operator');
    expect((marked[0]?.data as { unfinished: string[] }).unfinished).toContain('iam:UpdateAccessKey');
    expect((await store.getRun(waiting.id))?.state).toBe('needs_operator');
    await expectNoEntryLost(before);
  });

  it('5. two runs in flight: the live replica takes both over at once, not one after the other', async () => {
    const a = await startReplicaProcess('a3', setup);
    replicas[0] = a;
    const users = ['U0RESP5A', 'U0RESP5B'];
    const bySource = (user: string) => (body: URLSearchParams) => body.get('SourceIdentity') === user;
    // Both plans stop at their first AWS request on the replica that will die.
    const first = users.map((user) => awsProxy.hold('AssumeRole', 'request', { where: bySource(user) }));
    for (const [i, user] of users.entries()) {
      const keyId = await createUserWithKey(iam, `crash-both-${i}`);
      await command(a, `disable-key ${keyId} reason="two in flight"`, user);
    }
    await Promise.all(first);
    const planning = await Promise.all(users.map((user) => runOf(user, ['planning'])));
    // One heartbeat of the dying replica covers both runs: from then on they are orphans at the same moment.
    await waitUntil('one heartbeat for both runs', async () => {
      const [x, y] = await Promise.all(planning.map((run) => store.getRun(run.id)));
      return x?.heartbeatAt && x.heartbeatAt === y?.heartbeatAt ? true : undefined;
    });
    // The survivor's plans stop at the same request; both held at once means neither waits on the other.
    const again = users.map((user) =>
      awsProxy.hold('AssumeRole', 'request', { where: bySource(user), timeoutMs: 20_000 }),
    );
    await a.kill9();
    const held = await Promise.all(again);
    expect(held).toHaveLength(2);
    // One sweep claimed both, before either was recovered.
    const sweeps = survivor()
      .output()
      .split('\n')
      .filter((line) => line.includes('taking over runs whose replica stopped'))
      .map((line) => (JSON.parse(line) as { runs: { runId: string }[] }).runs.map((r) => r.runId));
    expect(sweeps.filter((ids) => planning.every((run) => ids.includes(run.id)))).toHaveLength(1);
    for (const h of held) h.release();
    for (const run of planning) {
      const waiting = await runIn(run.id, ['awaiting_approval'], 20_000);
      expect(waiting.executor).not.toBe(run.executor);
      const recovered = await entriesOf(run.id, 'run.recovered');
      expect(recovered.map((e) => (e.data as { action: string }).action)).toEqual(['plan again']);
    }
  });

  it('the audit chain verifies across all of it (quell audit verify --db postgres://… as a process)', async () => {
    const { stdout } = await execFileAsync(
      process.execPath,
      ['bin/quell.js', 'audit', 'verify', '--db', db.url],
      {
        env: { ...process.env, QUELL_LOG_LEVEL: 'silent' },
      },
    );
    const entries = (await store.listAudit()).length;
    expect(stdout).toContain(`audit chain ok: ${entries} entries`);
    // Nothing ran twice: one execution per run that executed.
    const runs = await store.listRuns({ limit: 50 });
    for (const run of runs) {
      expect((await entriesOf(run.id, 'execute.started')).length).toBeLessThanOrEqual(1);
      expect((await entriesOf(run.id, 'aws.intent', 'UpdateAccessKey')).length).toBeLessThanOrEqual(1);
    }
    // The password never reached a replica's output.
    for (const replica of replicas) expect(replica.output()).not.toContain(db.password);
  });
});
