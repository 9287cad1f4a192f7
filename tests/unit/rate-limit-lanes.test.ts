/**
 * The lanes of an AWS limit (issue 9.7): read-only calls that never come back cannot hold the share of a
 * limit kept for containment, and a containment call waiting for the rate goes before read-only calls
 * that waited longer. Counted by which tasks started, not by time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RateLimiters, readOnlyConcurrency } from '../../src/aws/rate-limits.ts';

describe('rate limit lanes', () => {
  let limiters: RateLimiters | undefined;
  afterEach(async () => {
    await limiters?.stop();
  });

  it('keeps a share of every limit that read-only calls holding every slot cannot take', async () => {
    limiters = new RateLimiters({ iam: { perSecond: 1000, maxConcurrent: 8 } });
    const never = new Promise<void>(() => undefined);
    let readOnlyStarted = 0;
    for (let i = 0; i < 20; i++)
      void limiters.for('iam', '111111111111', 'us-east-1', undefined, 'read-only').schedule(async () => {
        readOnlyStarted++;
        await never;
      });
    // Wait until read-only work holds every slot it can get.
    while (readOnlyStarted < 6) await new Promise((r) => setTimeout(r, 5));
    const containment = limiters.for('iam', '111111111111', 'us-east-1', undefined, 'containment');
    const done = await Promise.all([1, 2].map((n) => containment.schedule(async () => n)));
    expect(done).toEqual([1, 2]);
    // The read-only calls still hold their 6 slots (and 14 wait); none of the 2 reserved went to them.
    expect(readOnlyStarted).toBe(readOnlyConcurrency({ perSecond: 1000, maxConcurrent: 8 }));
    expect(limiters.pending('iam', '111111111111', 'us-east-1')).toBe(20);
  });

  it('serves a waiting containment call before read-only calls queued earlier', async () => {
    // One request per refill: everything queues behind the first.
    limiters = new RateLimiters({ iam: { perSecond: 1, maxConcurrent: 8, burst: 1 } });
    const order: string[] = [];
    const readOnly = limiters.for('iam', '1', 'us-east-1', undefined, 'read-only');
    const containment = limiters.for('iam', '1', 'us-east-1', undefined, 'containment');
    const jobs = [0, 1, 2].map((i) => readOnly.schedule(async () => order.push(`read-${i}`)));
    await new Promise((r) => setTimeout(r, 50)); // the read-only calls are queued first
    jobs.push(containment.schedule(async () => order.push('containment')));
    await Promise.all(jobs);
    expect(order[0]).toBe('read-0');
    expect(order[1]).toBe('containment');
  });

  it('reserves nothing where a limit admits one request at a time', () => {
    expect(readOnlyConcurrency({ perSecond: 2, maxConcurrent: 1 })).toBe(1);
    expect(readOnlyConcurrency({ perSecond: 2, maxConcurrent: 2 })).toBe(1);
    expect(readOnlyConcurrency({ perSecond: 20, maxConcurrent: 25 })).toBe(18);
  });
});
