/**
 * Configuration for several replicas: storage URLs (PostgreSQL accepted, a password in the file refused
 * without being echoed), the replicas section, URL redaction for logs, and each replica's share of the
 * AWS rate limits.
 */
import { describe, expect, it, vi } from 'vitest';
import { limiterOptions, RateLimiters, replicaShare } from '../../src/aws/rate-limits.ts';
import { parseConfig } from '../../src/config.ts';
import { ConfigInvalidError } from '../../src/errors.ts';
import { isPostgresUrl, redactDatabaseUrl } from '../../src/open-store.ts';

const BASE = `
accounts:
  - alias: prod
    id: "111111111111"
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'quell.yaml');
  } catch (error) {
    if (error instanceof ConfigInvalidError) return error.problems;
    throw error;
  }
  return [];
}

describe('storage.url', () => {
  it('defaults to the embedded SQLite file and accepts postgres:// and postgresql:// URLs', () => {
    expect(parseConfig(BASE).storage.url).toBe('sqlite:./data/quell.db');
    for (const url of [
      'postgres://quell@db.internal:5432/quell',
      'postgresql://quell@db.internal/quell?sslmode=verify-full',
      'sqlite::memory:',
    ]) {
      expect(parseConfig(`${BASE}storage:\n  url: "${url}"\n`).storage.url).toBe(url);
    }
  });

  it('refuses a password in the file, says where it goes instead, and never repeats it', () => {
    for (const url of [
      'postgres://quell:hunter2-s3cret@db/quell',
      'postgres://quell@db/quell?password=hunter2-s3cret',
    ]) {
      const problems = problemsOf(`${BASE}storage:\n  url: "${url}"\n`);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^storage\.url \(line \d+\): must not contain the database password/);
      expect(problems[0]).toContain('PGPASSWORD');
      expect(problems.join('\n')).not.toContain('hunter2');
    }
  });

  it('refuses other schemes with the accepted forms', () => {
    expect(problemsOf(`${BASE}storage:\n  url: "mysql://db/quell"\n`)[0]).toContain(
      'must be sqlite:<path> (or sqlite::memory:), or postgres://user@host:5432/database',
    );
  });

  it('redacts passwords for logs and recognises PostgreSQL URLs', () => {
    expect(redactDatabaseUrl('postgres://quell:s3cret@db:5432/quell')).toBe(
      'postgres://quell:redacted@db:5432/quell',
    );
    expect(redactDatabaseUrl('postgresql://quell@db/quell?password=s3cret&sslmode=require')).toBe(
      'postgresql://quell@db/quell?password=redacted&sslmode=require',
    );
    expect(redactDatabaseUrl('sqlite:./data/quell.db')).toBe('sqlite:./data/quell.db');
    expect(isPostgresUrl('POSTGRES://db/x')).toBe(true);
    expect(isPostgresUrl('sqlite:postgres://x')).toBe(false);
  });
});

describe('replicas', () => {
  it('defaults to one replica, a 10 s heartbeat and takeover after 60 s', () => {
    expect(parseConfig(BASE).replicas).toEqual({ count: 1, heartbeat: 10_000, orphanAfter: 60_000 });
    const shared = `${BASE}storage: { url: "postgres://quell@db.internal:5432/quell" }\n`;
    expect(
      parseConfig(`${shared}replicas: { count: 3, heartbeat: 5s, orphanAfter: 30s }\n`).replicas,
    ).toEqual({
      count: 3,
      heartbeat: 5_000,
      orphanAfter: 30_000,
    });
  });

  it('refuses several replicas on SQLite and a heartbeat under a second', () => {
    expect(problemsOf(`${BASE}replicas: { count: 2 }\n`).join('\n')).toMatch(
      /replicas\.count.*need storage\.url: postgres/,
    );
    expect(problemsOf(`${BASE}replicas: { heartbeat: 0s }\n`).join('\n')).toMatch(
      /replicas\.heartbeat.*at least 1s/,
    );
  });

  it('refuses a takeover delay that a live replica could miss, and impossible counts', () => {
    expect(problemsOf(`${BASE}replicas: { heartbeat: 10s, orphanAfter: 15s }\n`)[0]).toMatch(
      /^replicas\.orphanAfter.*at least twice the heartbeat/,
    );
    expect(problemsOf(`${BASE}replicas: { count: 0 }\n`)[0]).toMatch(/^replicas\.count/);
    expect(problemsOf(`${BASE}replicas: { count: 2, extra: true }\n`)[0]).toMatch(/^replicas/);
  });
});

describe('rate limits shared by replicas', () => {
  it('gives each replica its share of rate, burst and concurrency, never below one request', () => {
    expect(replicaShare({ perSecond: 10, maxConcurrent: 8 }, 1)).toEqual({ perSecond: 10, maxConcurrent: 8 });
    expect(replicaShare({ perSecond: 10, maxConcurrent: 8 }, 3)).toEqual({
      perSecond: 10 / 3,
      maxConcurrent: 3,
    });
    expect(replicaShare({ perSecond: 5, burst: 50, maxConcurrent: 50 }, 4)).toEqual({
      perSecond: 1.25,
      burst: 12,
      maxConcurrent: 13,
    });
    expect(replicaShare({ perSecond: 2, maxConcurrent: 2, pacing: 'spaced' }, 3)).toMatchObject({
      perSecond: 2 / 3,
      maxConcurrent: 1,
    });
  });

  it('paces a fractional rate exactly: whole requests over a longer refill interval', () => {
    expect(limiterOptions({ perSecond: 10, maxConcurrent: 8 })).toMatchObject({
      reservoir: 10,
      reservoirRefreshInterval: 1000,
    });
    // 10/3 per second: 3 every 900 ms.
    expect(limiterOptions({ perSecond: 10 / 3, maxConcurrent: 3 })).toMatchObject({
      reservoir: 3,
      reservoirRefreshAmount: 3,
      reservoirRefreshInterval: 900,
    });
    // CloudTrail's 2/s shared by 3: one request every 1575 ms (spacing with the 5% margin).
    expect(
      limiterOptions(replicaShare({ perSecond: 2, maxConcurrent: 2, pacing: 'spaced' }, 3)),
    ).toMatchObject({
      minTime: 1575,
    });
  });

  it('starts no more than its share within the first window', async () => {
    const limiters = new RateLimiters({ iam: { perSecond: 10, maxConcurrent: 10 } }, { replicas: 2 });
    // On a virtual clock, so the counts are the limiter's, not the machine's scheduling.
    vi.useFakeTimers();
    try {
      const limiter = limiters.for('iam', '111111111111', 'us-east-1');
      let started = 0;
      const jobs = Promise.all(Array.from({ length: 8 }, () => limiter.schedule(async () => started++)));
      // 5 per second for this replica: 5 at once, the rest only after the refill.
      await vi.advanceTimersByTimeAsync(200);
      expect(started).toBe(5);
      await vi.advanceTimersByTimeAsync(750);
      expect(started).toBe(5);
      await vi.advanceTimersByTimeAsync(250);
      expect(started).toBe(8);
      vi.useRealTimers();
      await jobs;
    } finally {
      vi.useRealTimers();
      await limiters.stop();
    }
  });
});
