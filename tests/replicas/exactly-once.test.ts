/**
 * Exactly once across replicas: three quell instances built as production builds them (createQuell, HTTP
 * mode, Bolt's real receiver, signed requests) share one PostgreSQL database, one moto and one fake Slack.
 * Clicks are spread over the three; what decides is the database (a row lock per decision, a conditional
 * claim per execution), never a replica's memory. Every test counts attempts and acceptances; an
 * execution is an UpdateAccessKey intent in the audit log (written before the call is sent).
 */
import { Writable } from 'node:stream';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQuell, type Quell } from '../../src/app.ts';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import { type Config, ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeCloudTrail, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import { type FakeSlack, startFakeSlack } from '../support/fake-slack.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { buttonClick, postSigned, SIGNING_SECRET, slashCommand } from '../support/slack-requests.ts';
import { BOT_TOKEN, INCIDENT } from '../support/test-quell.ts';

describe('three replicas on one PostgreSQL database', () => {
  let db: TestDatabase;
  let slack: FakeSlack;
  let iam: IAMClient;
  let config: Config;
  const replicas: { quell: Quell; baseUrl: string }[] = [];
  const logLines: string[] = [];
  const accountId = randomAccountId();
  let userSeq = 0;
  let trail: FakeCloudTrail | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('replicas');
    // The config file holds no password; each replica reads it from PGPASSWORD, as in production.
    process.env.PGPASSWORD = db.password;
    // disable-key reads the key's CloudTrail (evidence, roles it assumed), which moto lacks: a fake
    // answers with no events, instead of moto's errors retried at CloudTrail's 2 requests per second.
    trail = await startFakeCloudTrail();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = trail.url;
    slack = await startFakeSlack();
    slack.groups.set(
      'S0SECLEADS',
      Array.from({ length: 60 }, (_, i) => `U0GRP${String(i).padStart(3, '0')}`),
    );
    iam = await adminIam(accountId);
    config = ConfigSchema.parse({
      slack: { mode: 'http' },
      accounts: [accountConfig('prod', accountId)],
      approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3', 'S0SECLEADS'], expiresIn: '15m' },
      channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
      storage: { url: db.urlWithoutPassword },
      replicas: { count: 3 },
    });
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    });
    for (let i = 0; i < 3; i++) {
      const quell = await createQuell({
        config,
        secrets: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET },
        log: createLogger({ level: 'info', destination }),
        slackApiUrl: slack.apiUrl,
        port: 0,
        host: '127.0.0.1',
      });
      const { port } = await quell.start();
      replicas.push({ quell, baseUrl: `http://127.0.0.1:${port}` });
    }
  });

  afterAll(async () => {
    for (const r of replicas) await r.quell.stop();
    delete process.env.AWS_ENDPOINT_URL_CLOUDTRAIL;
    await trail?.close();
    await slack?.close();
    iam?.destroy();
    await db?.drop();
  });

  const store = () => (replicas[0] as { quell: Quell }).quell.store;
  const replica = (i: number) => replicas[i % replicas.length] as { quell: Quell; baseUrl: string };
  const click = (i: number, actionId: string, runId: string, user: string) =>
    postSigned(
      replica(i).baseUrl,
      buttonClick({
        actionId,
        value: runId,
        user,
        channel: INCIDENT,
        responseUrl: `${slack.url}/response/${user}`,
      }),
    );

  /** Waits (bounded) until every replica is idle and the audit log has stopped growing. */
  async function settle(): Promise<void> {
    let last = -1;
    for (let i = 0; i < 200; i++) {
      for (const r of replicas) await r.quell.idle();
      await new Promise((r) => setTimeout(r, 60));
      const count = (await store().listAudit()).length;
      if (count === last) return;
      last = count;
    }
    throw new Error('the replicas did not settle within the bound');
  }

  async function waitForState(runId: string, states: string[]): Promise<RunRecord> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const run = await store().getRun(runId);
      if (run && states.includes(run.state)) return run;
      if (Date.now() > deadline)
        throw new Error(`run ${runId} is ${run?.state}, expected ${states.join('|')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** A fresh key and a pending disable-key request for it, sent to replica `i`. */
  async function pendingRequest(i: number) {
    const user = `replica-victim${++userSeq}`;
    const requester = `U0REQ${String(userSeq).padStart(3, '0')}`;
    const keyId = await createUserWithKey(iam, user);
    const ack = await postSigned(
      replica(i).baseUrl,
      slashCommand({ text: `disable-key ${keyId}`, user: requester, channel: INCIDENT }),
    );
    expect(ack.status).toBe(200);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [run] = await store().listRuns({ requester, limit: 1 });
      if (run?.state === 'awaiting_approval') return { run, user, keyId };
      if (run && run.state !== 'planning')
        throw new Error(`request ended ${run.state}: ${JSON.stringify(run.error)}`);
      if (Date.now() > deadline) throw new Error('no pending request appeared');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const count = async (runId: string, type: string, operation?: string) =>
    (await store().listAudit({ runId })).filter(
      (e) => e.type === type && (!operation || (e.data as { operation?: string }).operation === operation),
    ).length;

  it('50 concurrent approve clicks spread over 3 replicas: exactly 1 execution', async () => {
    const { run, user, keyId } = await pendingRequest(0);
    const clickers = Array.from({ length: 50 }, (_, i) =>
      i < 3 ? `U0LEAD${i + 1}` : `U0GRP${String(i).padStart(3, '0')}`,
    );
    const responses = await Promise.all(clickers.map((c, i) => click(i, 'quell_approve', run.id, c)));
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect((await waitForState(run.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    await settle();

    // 50 attempts, 1 acceptance, 1 execution.
    const decisions = (await store().listAudit({ runId: run.id })).filter(
      (e) => e.type === 'approval.decision',
    );
    expect(decisions).toHaveLength(50);
    const accepted = decisions.filter((e) =>
      ['approved', 'recorded'].includes((e.data as { outcome: { kind: string } }).outcome.kind),
    );
    expect(accepted).toHaveLength(1);
    expect(await store().listDecisions(run.id)).toHaveLength(1);
    expect(await count(run.id, 'execute.started')).toBe(1);
    expect(await count(run.id, 'aws.intent', 'UpdateAccessKey')).toBe(1);
    expect(await count(run.id, 'aws.call', 'UpdateAccessKey')).toBe(1);
    expect(await keyStatus(iam, user, keyId)).toBe('Inactive');
  });

  it('an approve and a deny racing on different replicas, 20 times: never an execution after a deny', async () => {
    const requests = await Promise.all(Array.from({ length: 20 }, (_, i) => pendingRequest(i)));
    // All 40 clicks at once: for run i the approve goes to replica i, the deny to replica i+1.
    await Promise.all(
      requests.flatMap(({ run }, i) => [
        click(i, 'quell_approve', run.id, 'U0LEAD1'),
        click(i + 1, 'quell_deny', run.id, 'U0LEAD2'),
      ]),
    );
    const outcomes = { denied: 0, succeeded: 0 };
    for (const { run, user, keyId } of requests) {
      const final = await waitForState(run.id, ['denied', 'succeeded', 'failed']);
      await settle();
      const decisions = await store().listDecisions(run.id);
      expect(decisions).toHaveLength(1);
      if (final.state === 'denied') {
        outcomes.denied++;
        expect(decisions[0]?.decision).toBe('deny');
        expect(await count(run.id, 'execute.started')).toBe(0);
        expect(await count(run.id, 'aws.intent', 'UpdateAccessKey')).toBe(0);
        expect(await keyStatus(iam, user, keyId)).toBe('Active');
      } else {
        // The approval committed first; the deny came after the run had closed and was refused.
        outcomes.succeeded++;
        expect(final.state).toBe('succeeded');
        expect(decisions[0]?.decision).toBe('approve');
        expect(await count(run.id, 'execute.started')).toBe(1);
        expect(await count(run.id, 'aws.intent', 'UpdateAccessKey')).toBe(1);
      }
    }
    expect(outcomes.denied + outcomes.succeeded).toBe(20);
  });

  it('keeps one valid audit chain written by all three replicas, with no password in any log', async () => {
    await settle();
    const chain = await store().listAudit();
    expect(verifyAuditChain(chain)).toMatchObject({ ok: true, entries: chain.length });
    expect(logLines.join('')).not.toContain(db.password);
    expect(logLines.some((l) => l.includes('quell started') && l.includes('"replica"'))).toBe(true);
  });
});
