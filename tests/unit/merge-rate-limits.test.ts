/**
 * The limiter table is the defaults plus what the runbooks declare: CloudTrail's spaced 2 per second is
 * trail's, the EC2 network-ACL buckets are isolate-vpc's (and restore-vpc's, identically); a runbook's
 * limit overrides a default, and two runbooks that disagree on one API stop the table being built.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS, mergeRateLimits } from '../../src/aws/rate-limits.ts';
import { isolateVpc } from '../../src/runbooks/isolate-vpc.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { trail } from '../../src/runbooks/trail.ts';

describe('the limiter table', () => {
  it("holds no runbook's own limits among the defaults", () => {
    expect(Object.keys(DEFAULT_RATE_LIMITS).sort()).toEqual(['default', 'ec2', 'iam', 'sts']);
  });

  it('adds each registered runbook’s declared limits to the defaults', () => {
    const table = mergeRateLimits(DEFAULT_RATE_LIMITS, RUNBOOKS);
    expect(table.cloudtrail).toEqual({ perSecond: 2, maxConcurrent: 2, pacing: 'spaced' });
    expect(table['ec2:ReplaceNetworkAclAssociation']).toEqual({ perSecond: 5, burst: 50, maxConcurrent: 50 });
    expect(table['ec2:CreateNetworkAclEntry']).toEqual({ perSecond: 5, burst: 50, maxConcurrent: 50 });
    for (const [key, limit] of Object.entries(DEFAULT_RATE_LIMITS)) expect(table[key]).toEqual(limit);
    expect(trail.rateLimits).toHaveProperty('cloudtrail');
    expect(isolateVpc.rateLimits).toHaveProperty(['ec2:ReplaceNetworkAclAssociation']);
  });

  it("lets a runbook's limit override a default, and refuses two runbooks that disagree", () => {
    const slowIam = { id: 'slow', rateLimits: { iam: { perSecond: 1, maxConcurrent: 1 } } };
    expect(mergeRateLimits(DEFAULT_RATE_LIMITS, [slowIam]).iam).toEqual({ perSecond: 1, maxConcurrent: 1 });
    expect(mergeRateLimits(DEFAULT_RATE_LIMITS, [slowIam, { ...slowIam, id: 'same' }]).iam?.perSecond).toBe(
      1,
    );
    const fastIam = { id: 'fast', rateLimits: { iam: { perSecond: 50, maxConcurrent: 1 } } };
    expect(() => mergeRateLimits(DEFAULT_RATE_LIMITS, [slowIam, fastIam])).toThrow(
      'rate limit iam: slow and fast declare different limits',
    );
  });
});
