/**
 * EC2 pacing: each mutating API isolate-vpc sends in parallel has a token bucket of its own (50 at once,
 * then 5 per second, as EC2 throttles it), separate from the service's limiter for everything else.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RATE_LIMITS, mergeRateLimits, RateLimiters } from '../../src/aws/rate-limits.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

describe('EC2 rate limits', () => {
  // The table production builds: the defaults and the runbooks' own limits (isolate-vpc's EC2 buckets).
  const limiters = new RateLimiters(mergeRateLimits(DEFAULT_RATE_LIMITS, RUNBOOKS));
  afterEach(async () => {
    await limiters.stop();
  });

  it('gives ReplaceNetworkAclAssociation its own limiter, and everything else the service one', () => {
    const replace = limiters.for('ec2', '111111111111', 'us-east-1', 'ReplaceNetworkAclAssociation');
    const describe_ = limiters.for('ec2', '111111111111', 'us-east-1', 'DescribeNetworkAcls');
    expect(replace).not.toBe(describe_);
    expect(describe_).toBe(limiters.for('ec2', '111111111111', 'us-east-1'));
    expect(replace).toBe(limiters.for('ec2', '111111111111', 'us-east-1', 'ReplaceNetworkAclAssociation'));
    expect(replace).not.toBe(
      limiters.for('ec2', '222222222222', 'us-east-1', 'ReplaceNetworkAclAssociation'),
    );
    // Services without per-operation limits keep one limiter.
    expect(limiters.for('cloudtrail', '1', 'us-east-1', 'LookupEvents')).toBe(
      limiters.for('cloudtrail', '1', 'us-east-1'),
    );
  });

  it('lets 50 moves start at once, then 5 per second', async () => {
    // On a virtual clock: the limiter's timers and Date.now move only when the test says, so the counts
    // below are what the token bucket allows, not what a loaded machine happened to schedule.
    vi.useFakeTimers();
    try {
      const limiter = limiters.for('ec2', '333333333333', 'us-east-1', 'ReplaceNetworkAclAssociation');
      let started = 0;
      const all = Promise.all(Array.from({ length: 60 }, () => limiter.schedule(async () => started++)));
      let now = 0;
      const startedBy = async (ms: number) => {
        await vi.advanceTimersByTimeAsync(ms - now);
        now = ms;
        return started;
      };
      expect(await startedBy(200)).toBe(50); // the whole burst at once
      expect(await startedBy(950)).toBe(50); // nothing more before the first refill
      expect(await startedBy(1_200)).toBe(55); // then 5 more after a second
      expect(await startedBy(1_950)).toBe(55);
      expect(await startedBy(2_200)).toBe(60); // and 5 more after another second
      vi.useRealTimers();
      await all;
    } finally {
      vi.useRealTimers();
      await limiters.stop();
    }
  });
});
