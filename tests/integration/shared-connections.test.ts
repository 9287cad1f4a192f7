/**
 * Runs share the AWS client factory's keep-alive connections, and one run finishing must not cut another
 * run's request in flight. It did: disposing a run's scope destroyed its SDK clients, and an SDK client's
 * destroy() destroys the agents it was given, which are the factory's, shared by every run. Under the
 * memory benchmark's burst (200 disable-keys) every plan that finished reset the requests of the others
 * (ECONNRESET, reported as TimeoutError); a call cut five times failed its plan, and 10–17% of the
 * commands got no card. Here a run's request is held at a proxy (sent, unanswered) while another run is
 * planned to the end; the held request must still be the one that answers, on its first attempt.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Requester } from '../../src/runbooks/engine/run-notifier.ts';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type BodyMatch, type HoldProxy, startHoldProxy } from '../support/hold-proxy.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const FIRST: Requester = { user: 'U0RESP1', channel: CHANNEL, source: 'slack' };
const SECOND: Requester = { user: 'U0RESP2', channel: CHANNEL, source: 'slack' };

describe("one run's end does not cut another run's AWS request", () => {
  const accountId = randomAccountId();
  let iam: IAMClient;
  let proxy: HoldProxy;
  let t: TestEngine | undefined;
  const previous = process.env.AWS_ENDPOINT_URL_IAM;

  beforeAll(async () => {
    iam = await adminIam(accountId);
    proxy = await startHoldProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL_IAM = proxy.url;
  });

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  afterAll(async () => {
    if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_IAM;
    else process.env.AWS_ENDPOINT_URL_IAM = previous;
    await proxy.close();
    iam.destroy();
  });

  function startDisableKey(engine: TestEngine, keyId: string, requester: Requester) {
    const prepared = engine.engine.prepare('disable-key', { positional: [keyId], options: {} }, requester);
    return engine.engine.start(prepared, requester);
  }

  /** The `attempts` of each audited call of `operation` in the run. */
  async function attemptsOf(engine: TestEngine, run: RunRecord | undefined, operation: string) {
    const entries = await engine.store.listAudit({ runId: run?.id ?? 'none' });
    return entries
      .filter((e) => e.type === 'aws.call')
      .map((e) => e.data as { operation?: string; attempts?: number; outcome?: string })
      .filter((d) => d.operation === operation)
      .map((d) => ({ attempts: d.attempts, outcome: d.outcome }));
  }

  it("a plan in flight survives another run's plan finishing", async () => {
    t = await startTestEngine({ accounts: [accountConfig('prod', accountId)] });
    const engine = t;
    const first = await createUserWithKey(iam, 'shared-plan-first');
    const second = await createUserWithKey(iam, 'shared-plan-second');
    const ofFirst: BodyMatch = (body) => body.get('AccessKeyId') === first;
    const holding = proxy.hold('GetAccessKeyLastUsed', 'request', { where: ofFirst });
    const firstRun = startDisableKey(engine, first, FIRST);
    const held = await holding;

    // The second run is planned from start to end (its scope disposed) while the first one's call waits.
    const secondRun = await startDisableKey(engine, second, SECOND);
    expect(secondRun?.state).toBe('awaiting_approval');

    held.release();
    const run = await firstRun;
    expect(run?.state).toBe('awaiting_approval');
    expect(engine.told).toEqual([]);
    // The held request was still wanted and is the one that answered: never cut, never sent again.
    expect(held.callerGone).toBe(false);
    expect(await attemptsOf(engine, run, 'GetAccessKeyLastUsed')).toEqual([{ attempts: 1, outcome: 'ok' }]);
    expect(proxy.forwarded('GetAccessKeyLastUsed', ofFirst)).toBe(1);
  });

  it("an execution's UpdateAccessKey in flight survives another run's plan finishing", async () => {
    t = await startTestEngine({ accounts: [accountConfig('prod', accountId)] });
    const engine = t;
    const first = await createUserWithKey(iam, 'shared-exec-first');
    const second = await createUserWithKey(iam, 'shared-exec-second');
    const planned = await startDisableKey(engine, first, FIRST);
    expect(planned?.state).toBe('awaiting_approval');
    const ofFirst: BodyMatch = (body) => body.get('AccessKeyId') === first;
    const holding = proxy.hold('UpdateAccessKey', 'request', { where: ofFirst });
    const decided = engine.engine.decide(planned?.id ?? '', 'U0LEAD1', 'approve', CHANNEL);
    const held = await holding;

    const secondRun = await startDisableKey(engine, second, SECOND);
    expect(secondRun?.state).toBe('awaiting_approval');

    held.release();
    await decided;
    await engine.engine.idle();
    expect((await engine.store.getRun(planned?.id ?? ''))?.state).toBe('succeeded');
    expect(held.callerGone).toBe(false);
    expect(await attemptsOf(engine, planned, 'UpdateAccessKey')).toEqual([{ attempts: 1, outcome: 'ok' }]);
    expect(proxy.forwarded('UpdateAccessKey', ofFirst)).toBe(1);
    expect(await keyStatus(iam, 'shared-exec-first', first)).toBe('Inactive');
    expect(await keyStatus(iam, 'shared-exec-second', second)).toBe('Active');
  });
});
