/**
 * Read-only work cannot starve containment (issue 9.7). Heavy read-only runs whose AWS calls never come
 * back (held by a proxy before they reach CloudTrail or moto) hold everything read-only work can hold:
 * every read-only start slot, and every slot of an AWS limit that read-only work may take. A disable-key
 * started then must still be planned against moto and be on its approval card while every read-only
 * run is still held. Asserted on state and calls recorded; the wait is bounded only so that a starved
 * run fails the test instead of hanging it.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_RATE_LIMITS } from '../../src/aws/rate-limits.ts';
import type { Requester } from '../../src/runbooks/engine/run-notifier.ts';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeCloudTrail, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import { type HeldRequest, type HoldProxy, startHoldProxy } from '../support/hold-proxy.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const RESPONDER: Requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' };
const ANALYST: Requester = { user: 'U0ANALYST', channel: CHANNEL, source: 'slack' };
/** The engine's default number of read-only runs started at once: all of them are held. */
const START_SLOTS = 8;
/** Enough for a starved run to have been planned many times over; only a stuck run reaches it. */
const LIVENESS_MS = 20_000;

/** Resolves with `work`, or rejects saying what never happened. */
async function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${LIVENESS_MS} ms`)), LIVENESS_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `condition` holds (checked every 20 ms), or rejects saying what never happened. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await within(
    (async () => {
      while (!(await condition())) await new Promise((r) => setTimeout(r, 20));
    })(),
    what,
  );
}

/** Holds the next `n` requests of `operation`; counts how many are held right now. */
function holdMany(proxy: HoldProxy, operation: string, n: number) {
  let held = 0;
  const requests = Array.from({ length: n }, () =>
    proxy.hold(operation, 'request', { timeoutMs: 120_000 }).then((request) => {
      held++;
      return request;
    }),
  );
  return {
    held: () => held,
    /** Lets every held request (and those still to come) through, one after the other. */
    async releaseAll(): Promise<void> {
      for (const request of requests) ((await request) as HeldRequest).release();
    },
  };
}

describe('containment lanes: read-only runs cannot starve a disable-key', () => {
  const accountId = randomAccountId();
  let iam: IAMClient;
  let cloudTrail: FakeCloudTrail;
  let trailProxy: HoldProxy;
  let iamProxy: HoldProxy;
  let t: TestEngine | undefined;
  const previous = {
    cloudtrail: process.env.AWS_ENDPOINT_URL_CLOUDTRAIL,
    iam: process.env.AWS_ENDPOINT_URL_IAM,
  };

  beforeAll(async () => {
    iam = await adminIam(accountId);
    cloudTrail = await startFakeCloudTrail();
    trailProxy = await startHoldProxy(cloudTrail.url);
    iamProxy = await startHoldProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = trailProxy.url;
    process.env.AWS_ENDPOINT_URL_IAM = iamProxy.url;
  });

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  afterAll(async () => {
    for (const [name, value] of [
      ['AWS_ENDPOINT_URL_CLOUDTRAIL', previous.cloudtrail],
      ['AWS_ENDPOINT_URL_IAM', previous.iam],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await trailProxy.close();
    await iamProxy.close();
    await cloudTrail.close();
    iam.destroy();
  });

  /** Starts a disable-key of a fresh key; resolves with its run once it is waiting for approval. */
  async function startDisableKey(engine: TestEngine, user: string) {
    const keyId = await createUserWithKey(iam, user);
    const prepared = engine.engine.prepare('disable-key', { positional: [keyId], options: {} }, RESPONDER);
    const run = await within(engine.engine.start(prepared, RESPONDER), 'the disable-key was not planned');
    return { keyId, run };
  }

  async function statesOf(engine: TestEngine, runs: (RunRecord | undefined)[]) {
    return Promise.all(runs.map(async (r) => (r ? (await engine.store.getRun(r.id))?.state : undefined)));
  }

  it('read-only runs holding every start slot cannot starve a disable-key', async () => {
    // CloudTrail's own limit would queue most lookups inside quell; here each trail run sends its lookup
    // at once, so that every one of them is held at the proxy.
    t = await startTestEngine({
      accounts: [accountConfig('prod', accountId)],
      rateLimits: { ...DEFAULT_RATE_LIMITS, cloudtrail: { perSecond: 100, maxConcurrent: 100 } },
    });
    const engine = t;
    const lookups = holdMany(trailProxy, 'LookupEvents', START_SLOTS);
    const prepared = engine.engine.prepare(
      'trail',
      { positional: [], options: { key: 'AKIAIOSFODNN7EXAMPLE', region: 'us-east-1', limit: '10000' } },
      ANALYST,
    );
    const trails = Array.from({ length: START_SLOTS }, () => engine.engine.start(prepared, ANALYST));
    try {
      await until(() => lookups.held() === START_SLOTS, 'the trail runs did not all reach CloudTrail');
      const { keyId, run } = await startDisableKey(engine, 'lanes-start');

      expect(run?.state).toBe('awaiting_approval');
      expect(engine.shown.some((v) => v.run.id === run?.id && v.run.state === 'awaiting_approval')).toBe(
        true,
      );
      expect(await keyStatus(iam, 'lanes-start', keyId)).toBe('Active'); // planned, not executed
      // Every read-only run is still held: none of their lookups reached CloudTrail, none finished.
      expect(trailProxy.forwarded('LookupEvents')).toBe(0);
      const running = (await engine.store.listRuns({ requester: ANALYST.user, limit: 50 })).filter(
        (r) => r.runbook === 'trail',
      );
      expect(running.map((r) => r.state)).toEqual(Array(START_SLOTS).fill('running'));
    } finally {
      await lookups.releaseAll();
    }
    expect(await statesOf(engine, await Promise.all(trails))).toEqual(Array(START_SLOTS).fill('succeeded'));
  });

  it("read-only runs holding every AWS request slot they may take cannot starve a disable-key's calls", async () => {
    // The IAM limit of this account admits 4 requests at once; 6 key-age runs each send one request
    // (GetCredentialReport) that never comes back.
    const keyAgeRuns = 6;
    t = await startTestEngine({
      accounts: [accountConfig('prod', accountId)],
      rateLimits: { ...DEFAULT_RATE_LIMITS, iam: { perSecond: 100, maxConcurrent: 4 } },
    });
    const engine = t;
    const reports = holdMany(iamProxy, 'GetCredentialReport', keyAgeRuns);
    const prepared = engine.engine.prepare('key-age', { positional: [], options: {} }, ANALYST);
    const scans = Array.from({ length: keyAgeRuns }, () => engine.engine.start(prepared, ANALYST));
    // Every key-age request is in quell's IAM limiter (held at the proxy, or waiting behind those held).
    try {
      await until(
        () => engine.limiters.pending('iam', accountId, 'us-east-1') === keyAgeRuns && reports.held() >= 3,
        'the key-age runs did not fill the IAM limit',
      );
      const { keyId, run } = await startDisableKey(engine, 'lanes-limit');

      expect(run?.state).toBe('awaiting_approval');
      expect(engine.shown.some((v) => v.run.id === run?.id && v.run.state === 'awaiting_approval')).toBe(
        true,
      );
      expect(await keyStatus(iam, 'lanes-limit', keyId)).toBe('Active');
      expect(iamProxy.forwarded('GetCredentialReport')).toBe(0);
      const running = (await engine.store.listRuns({ requester: ANALYST.user, limit: 50 })).filter(
        (r) => r.runbook === 'key-age',
      );
      expect(running.map((r) => r.state)).toEqual(Array(keyAgeRuns).fill('running'));
    } finally {
      await reports.releaseAll();
    }
    expect(await statesOf(engine, await Promise.all(scans))).toEqual(Array(keyAgeRuns).fill('succeeded'));
  });
});
