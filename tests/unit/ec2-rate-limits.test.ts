/**
 * EC2 pacing: each mutating API isolate-vpc sends in parallel has a token bucket of its own (50 at once,
 * then 5 per second, as EC2 throttles it), separate from the service's limiter for everything else.
 */
import { afterEach, describe, expect, it } from 'vitest';
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
    const limiter = limiters.for('ec2', '333333333333', 'us-east-1', 'ReplaceNetworkAclAssociation');
    const started = performance.now();
    const starts = await Promise.all(
      Array.from({ length: 60 }, () => limiter.schedule(async () => performance.now() - started)),
    );
    const sorted = starts.sort((a, b) => a - b);
    expect(sorted[49]).toBeLessThan(300); // the whole burst at once
    expect(sorted[50]).toBeGreaterThan(700); // then the refill: 5 more after about a second
    expect(sorted[54]).toBeLessThan(1700);
    expect(sorted[55]).toBeGreaterThan(1700); // and 5 more after another second
  });
});
