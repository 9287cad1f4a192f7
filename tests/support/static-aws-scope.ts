/**
 * quell's real client factory (limiter, call-recording middleware, error mapping, SDK retries) with the
 * STS step replaced by static credentials, for talking to local fakes that do not check signatures.
 * Every call the middleware reports is kept, so tests and the benchmark can count and inspect them.
 */
import type { AwsCallOutcome, AwsCallRecorder } from '../../src/aws/call-recorder.ts';
import { AwsClientFactory, type ScopedAws } from '../../src/aws/client-factory.ts';
import {
  DEFAULT_RATE_LIMITS,
  mergeRateLimits,
  type RateLimit,
  RateLimiters,
} from '../../src/aws/rate-limits.ts';
import type { AwsSessions } from '../../src/aws/sessions.ts';
import type { AccountConfig } from '../../src/config.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

export const STATIC_ACCOUNT: AccountConfig = {
  alias: 'prod',
  id: '123456789012',
  regions: ['us-east-1', 'eu-west-1', 'ap-southeast-2', 'sa-east-1'],
  roles: {
    read: 'arn:aws:iam::123456789012:role/quell-read',
    respond: 'arn:aws:iam::123456789012:role/quell-respond',
  },
};

export interface StaticScope {
  scope: ScopedAws;
  /** Every call outcome the middleware reported, in order. */
  calls: AwsCallOutcome[];
  close(): Promise<void>;
}

/** A read-role scope for `account` whose clients sign with static credentials. */
export function staticAwsScope(
  options: { account?: AccountConfig; region?: string; rateLimits?: Record<string, RateLimit> } = {},
): StaticScope {
  const account = options.account ?? STATIC_ACCOUNT;
  const sessions = {
    roleArn: (request: { tier: 'read' | 'respond' }) => account.roles[request.tier],
    provider: () => async () => ({
      accessKeyId: 'AKIASTATICSTATICSTAT',
      secretAccessKey: 'static-secret',
      sessionToken: 'static-session',
      expiration: new Date(Date.now() + 3_600_000),
    }),
    credentials: async () => undefined,
    release: () => undefined,
  } as unknown as AwsSessions;
  const calls: AwsCallOutcome[] = [];
  const recorder: AwsCallRecorder = {
    async intent() {},
    async done(outcome) {
      calls.push(outcome);
    },
  };
  // As composeCore builds it: the defaults and the runbooks' declared limits (trail's CloudTrail pacing).
  const limiters = new RateLimiters(options.rateLimits ?? mergeRateLimits(DEFAULT_RATE_LIMITS, RUNBOOKS));
  const factory = new AwsClientFactory({ sessions, limiters, recorder });
  const scope = factory.scope({
    account,
    tier: 'read',
    runId: 'rstaticstatic',
    runbook: 'test',
    sourceIdentity: 'U0TEST',
    region: options.region ?? account.regions[0] ?? 'us-east-1',
  });
  return {
    scope,
    calls,
    async close() {
      scope.dispose();
      await limiters.stop();
    },
  };
}
