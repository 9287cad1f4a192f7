/**
 * Orphan recovery on the embedded store, as after a single replica restarted: runs left in flight by a
 * process that no longer exists are taken over by the new one, each the conservative way: an approval
 * older than the approval window is not executed; a run that died mid-execution is never retried; a card
 * that was never posted is posted. The clock is moved instead of waiting; the sweep is called directly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditCallRecorder } from '../../src/audit/record-aws-calls.ts';
import { AwsClientFactory } from '../../src/aws/client-factory.ts';
import { RateLimiters } from '../../src/aws/rate-limits.ts';
import { AwsSessions } from '../../src/aws/sessions.ts';
import { createLogger } from '../../src/logger.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import { Engine } from '../../src/runbooks/engine/engine.ts';
import type { Requester } from '../../src/runbooks/engine/run-notifier.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, adminIam, createUserWithKey, randomAccountId } from '../support/aws-fixtures.ts';
import { INCIDENT, startTestQuell, type TestQuell } from '../support/test-quell.ts';

describe('a restarted replica takes over what the dead one left', () => {
  let t: TestQuell;
  let offset = 0;
  const now = () => Date.now() + offset;
  const accountId = randomAccountId();
  let seq = 0;

  beforeAll(async () => {
    t = await startTestQuell(
      {
        accounts: [accountConfig('prod', accountId)],
        replicas: { heartbeat: '1s', orphanAfter: '2s' },
      },
      { now },
    );
    // This replica's own heartbeat reaches the store, then time passes: it may judge others now.
    await t.quell.engine.heartbeat();
    offset += 60_000;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A run left behind by a replica that died 10 minutes ago. */
  async function leftBehind(overrides: Partial<RunRecord>): Promise<RunRecord> {
    const at = now() - 10 * 60_000;
    const run: RunRecord = {
      id: `rorphan${String.fromCharCode(97 + ++seq).repeat(6)}`,
      runbook: 'disable-key',
      kind: 'run',
      parentRunId: null,
      state: 'running',
      source: 'slack',
      requester: 'U0RESP',
      channel: INCIDENT,
      reason: null,
      input: { key: 'AKIAIOSFODNN7EXAMPLE' },
      accountAlias: 'prod',
      accountId,
      region: 'us-east-1',
      plan: null,
      planHash: null,
      requiredApprovals: 1,
      breakGlass: false,
      reviewState: null,
      expiresAt: null,
      approvedAt: null,
      messageTs: '1700000000.000100',
      result: null,
      error: null,
      createdAt: at,
      updatedAt: at,
      executor: 'dead-host-1234-abcdef',
      heartbeatAt: at,
      ...overrides,
    };
    await t.quell.store.createRun(run);
    return run;
  }

  it('hands a run that died executing to an operator, and says when nothing had been sent', async () => {
    const run = await leftBehind({ state: 'running' });
    // (The replica's own periodic sweep may get there first; either way one of them claims it.)
    await t.quell.engine.recoverOrphans();
    await t.settle();
    const stuck = await t.quell.store.getRun(run.id);
    expect(stuck?.state).toBe('needs_operator');
    expect(stuck?.executor).toBe(t.quell.engine.replicaId);
    const message = String((stuck?.error as { message?: string }).message);
    expect(message).toContain('dead-host-1234-abcdef');
    expect(message).toContain('requesting it again is safe');
    const thread = t.slack.callsOf('chat.postMessage').filter((c) => c.body.thread_ts === run.messageTs);
    expect(thread.map((c) => String(c.body.text)).some((text) => text.includes('Needs an operator'))).toBe(
      true,
    );
    const audit = (await t.quell.store.listAudit({ runId: run.id })).map((e) => e.type);
    expect(audit).toEqual(['run.needs_operator']);
    // Claimed once: a second sweep leaves it alone.
    await t.quell.engine.recoverOrphans();
    await t.settle();
    expect((await t.quell.store.listAudit({ runId: run.id })).map((e) => e.type)).toEqual([
      'run.needs_operator',
    ]);
  });

  it('does not execute an approval older than the approval window: expired, with a message', async () => {
    const run = await leftBehind({ state: 'approved', approvedAt: now() - 20 * 60_000 });
    await t.quell.engine.recoverOrphans();
    await t.settle();
    const expired = await t.quell.store.getRun(run.id);
    expect(expired?.state).toBe('expired');
    expect(String((expired?.error as { message?: string }).message)).toContain('nothing was run');
    const entries = await t.quell.store.listAudit({ runId: run.id });
    expect(entries.map((e) => e.type)).toEqual(['run.recovered']);
    expect(entries[0]?.data).toMatchObject({ action: 'expired', replica: 'dead-host-1234-abcdef' });
  });

  it('posts the card of a request whose replica died before posting it', async () => {
    const run = await leftBehind({ state: 'awaiting_approval', messageTs: null, expiresAt: now() + 600_000 });
    await t.quell.engine.recoverOrphans();
    await t.settle();
    const posted = t.slack
      .callsOf('chat.postMessage')
      .find((c) => String(JSON.stringify(c.body.blocks)).includes(run.id));
    expect(posted?.body.channel).toBe(INCIDENT);
    const shown = await t.quell.store.getRun(run.id);
    expect(shown?.state).toBe('awaiting_approval');
    expect(shown?.messageTs).not.toBeNull();
    // No longer in flight once its card is up.
    expect((await t.quell.store.listOrphanedRuns(now() + 3_600_000, 50)).map((r) => r.id)).not.toContain(
      run.id,
    );
  });

  it('leaves runs alone while their replica still beats', async () => {
    const alive = await leftBehind({ state: 'running', heartbeatAt: now() - 500 });
    await t.quell.engine.recoverOrphans();
    await t.settle();
    expect((await t.quell.store.getRun(alive.id))?.state).toBe('running');
  });

  it("keeps another process's run alive while it waits at `quell run`'s prompt longer than orphanAfter", async () => {
    const iam = await adminIam(accountId);
    const keyId = await createUserWithKey(iam, 'prompt-victim');
    iam.destroy();
    // A second engine on the same store, wired as `quell run` wires it (no sweeper of its own).
    const log = createLogger({ level: 'silent' });
    const recorder = createAuditCallRecorder(t.quell.audit);
    const sessions = new AwsSessions({ region: 'us-east-1', sessionSeconds: 900 }, log, { now, recorder });
    const limiters = new RateLimiters();
    const cli = new Engine({
      config: t.config,
      store: t.quell.store,
      audit: t.quell.audit,
      aws: new AwsClientFactory({ sessions, limiters, recorder }),
      directory: { groupMembers: async () => new Set<string>() },
      notifier: {
        showRun: async () => undefined,
        reply: async () => {},
        tell: async () => {},
        upload: async () => {},
      },
      log,
      now,
    });
    const requester: Requester = { user: 'operator', channel: 'cli', source: 'cli' };
    const parsed = parseCommandText(`disable-key ${keyId}`);
    let waiting: RunRecord | undefined;
    const run = await cli.start(cli.prepare(parsed.name, parsed.args, requester), requester, {
      // The operator thinks for 3.5 s: longer than orphanAfter (2 s), while the bot sweeps every second.
      confirm: async (view) => {
        await new Promise((r) => setTimeout(r, 3500));
        waiting = await t.quell.store.getRun(view.run.id);
        return false;
      },
    });
    await cli.idle();
    await limiters.stop();
    sessions.destroy();
    expect(waiting?.state).toBe('planning');
    expect(run?.state).toBe('denied');
    const types = (await t.quell.store.listAudit({ runId: run?.id ?? '' })).map((e) => e.type);
    expect(types).not.toContain('run.recovered');
    expect(types).toContain('run.cancelled');
  });

  it('never plans again or executes a `quell run` whose terminal died: the run ends, nothing runs', async () => {
    const planning = await leftBehind({ state: 'planning', source: 'cli', channel: 'cli', messageTs: null });
    const confirmed = await leftBehind({
      state: 'approved',
      source: 'cli',
      channel: 'cli',
      messageTs: null,
      breakGlass: true,
      approvedAt: now() - 60_000,
    });
    await t.quell.engine.recoverOrphans();
    await t.settle();
    expect((await t.quell.store.getRun(planning.id))?.state).toBe('plan_failed');
    expect((await t.quell.store.getRun(confirmed.id))?.state).toBe('expired');
    for (const run of [planning, confirmed]) {
      const types = (await t.quell.store.listAudit({ runId: run.id })).map((e) => e.type);
      expect(types).toEqual(['run.recovered']);
    }
  });
});
