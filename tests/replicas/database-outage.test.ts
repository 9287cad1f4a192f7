/**
 * The database goes away under a running quell (PostgreSQL reached through a loopback TCP proxy that the
 * test cuts) and comes back: meanwhile new runs and decisions are refused with a clear message and
 * /healthz answers 503 (fail closed); afterwards quell recovers by itself, with nothing half-done.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startTestQuell, type TestQuell, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

describe('PostgreSQL unreachable, then back', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: TestQuell;
  let iam: IAMClient;
  const accountId = randomAccountId();

  beforeAll(async () => {
    db = await createTestDatabase('outage');
    const direct = new URL(db.urlWithoutPassword);
    proxy = await startTcpProxy(Number(direct.port));
    direct.port = String(proxy.port);
    process.env.PGPASSWORD = db.password;
    iam = await adminIam(accountId);
    t = await startTestQuell({
      accounts: [accountConfig('prod', accountId)],
      storage: { url: direct.toString() },
      replicas: { heartbeat: '1s', orphanAfter: '3s' },
    });
  });
  afterAll(async () => {
    proxy?.restore();
    await t?.close();
    await proxy?.close();
    iam?.destroy();
    await db?.drop();
  });

  const health = async () =>
    (await fetch(`${t.baseUrl}/healthz`, { signal: AbortSignal.timeout(5000) })).status;
  async function waitForHealth(status: number): Promise<number> {
    const started = Date.now();
    while ((await health()) !== status) {
      if (Date.now() - started > 15_000) throw new Error(`/healthz did not answer ${status} within 15 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - started;
  }

  it('refuses new runs and decisions while the database is gone, and recovers by itself', async () => {
    // A request waiting for approval before the outage.
    const keyId = await createUserWithKey(iam, 'outage-victim');
    await t.command(`disable-key ${keyId}`, 'U0RESP');
    const pending = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval']);
    expect(await health()).toBe(200);
    const runsBefore = (await t.quell.store.listRuns({ limit: 50 })).length;

    proxy.cut();
    await waitForHealth(503);

    // A new command: acknowledged, then refused with a message that says why and that nothing ran.
    const otherKey = 'AKIAIOSFODNN7EXAMPLE';
    const ack = await t.command(`disable-key ${otherKey}`, 'U0RESP2');
    expect(ack.status).toBe(200);
    await t.slack.waitFor(() => t.slack.responses.some((r) => r.method === '/response/U0RESP2'));
    const refusal = String(t.slack.responses.find((r) => r.method === '/response/U0RESP2')?.body.text);
    expect(refusal).toContain('cannot reach its database');
    expect(refusal).toContain('Nothing was run');
    expect(refusal).toMatch(/reference `ref-[0-9a-f]{8}`/);

    // An approval click: refused the same way; the request stays pending.
    await t.click('quell_approve', pending.id, 'U0LEAD1');
    await t.slack.waitFor(() => t.slack.responses.some((r) => r.method === '/response/U0LEAD1'));
    expect(String(t.slack.responses.find((r) => r.method === '/response/U0LEAD1')?.body.text)).toContain(
      'cannot reach its database',
    );

    // The replica's own heartbeat failed too (it beats every second).
    const deadline = Date.now() + 10_000;
    while (!t.logLines.some((l) => l.includes('heartbeat or orphan recovery failed'))) {
      if (Date.now() > deadline) throw new Error('no failed heartbeat logged during the outage');
      await new Promise((r) => setTimeout(r, 100));
    }

    proxy.restore();
    await waitForHealth(200);

    // Nothing happened while it was gone: no new run, no decision, the key untouched.
    expect(await t.quell.store.listRuns({ limit: 50 })).toHaveLength(runsBefore);
    expect(await t.quell.store.listDecisions(pending.id)).toEqual([]);
    expect((await t.quell.store.getRun(pending.id))?.state).toBe('awaiting_approval');
    expect(await keyStatus(iam, 'outage-victim', keyId)).toBe('Active');

    // And it works again without a restart: the same click now executes.
    await t.click('quell_approve', pending.id, 'U0LEAD1');
    expect((await waitForRunState(t.quell, pending.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'outage-victim', keyId)).toBe('Inactive');
    await t.settle();
    const chain = await t.quell.store.listAudit();
    expect(verifyAuditChain(chain)).toMatchObject({ ok: true });
    expect(t.logLines.join('')).not.toContain(db.password);
  });

  it('judges other replicas only after its own heartbeats have reached the database for orphanAfter', async () => {
    proxy.cut();
    const failures = t.logLines.filter((l) => l.includes('heartbeat or orphan recovery failed')).length;
    const deadline = Date.now() + 10_000;
    while (t.logLines.filter((l) => l.includes('heartbeat or orphan recovery failed')).length === failures) {
      if (Date.now() > deadline) throw new Error('no failed heartbeat logged during the outage');
      await new Promise((r) => setTimeout(r, 100));
    }
    proxy.restore();
    await waitForHealth(200);
    // Another replica's run, not refreshed for 10 minutes: after an outage that only means its replica
    // has not reconnected yet, so it is left alone until this one has been connected for orphanAfter.
    const at = Date.now() - 10 * 60_000;
    const pending = await t.quell.store.listRuns({ limit: 1 });
    const template = pending[0];
    if (!template) throw new Error('no run to copy');
    const other = {
      ...template,
      id: 'rotherreplica',
      state: 'running' as const,
      executor: 'other-replica-1-abcdef',
      heartbeatAt: at,
      createdAt: at,
      updatedAt: at,
    };
    await t.quell.store.createRun(other);
    await t.quell.engine.heartbeat();
    expect(await t.quell.engine.recoverOrphans()).toBe(0);
    expect((await t.quell.store.getRun(other.id))?.state).toBe('running');
    // orphanAfter (3 s) later, the periodic sweep takes it over.
    const taken = Date.now() + 10_000;
    while ((await t.quell.store.getRun(other.id))?.state !== 'needs_operator') {
      if (Date.now() > taken) throw new Error('the orphan was not taken over after orphanAfter');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
