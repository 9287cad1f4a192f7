/**
 * trail's lookup through quell's real client factory (bottleneck limiter, call-recording middleware,
 * error mapping, SDK retries) against a local fake of CloudTrail's LookupEvents — moto does not
 * implement it. The fake serves 50 events per page and answers ThrottlingException when a region gets
 * more than 2 requests in any 1-second window (tests/support/fake-cloudtrail.ts), so these tests show
 * the pacing holds, a throttled page is sent again and never lost, the limit is honoured and said, and
 * AccessDenied names the action and the role.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AwsAccessDeniedError } from '../../src/errors.ts';
import type { Plan, RunContext } from '../../src/runbooks/define-runbook.ts';
import { lookupEvents, type TrailQuery, trail } from '../../src/runbooks/trail.ts';
import { type FakeCloudTrail, generateEvents, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import { STATIC_ACCOUNT, type StaticScope, staticAwsScope } from '../support/static-aws-scope.ts';

const KEY = 'AKIAIOSFODNN7EXAMPLE';

describe('trail lookup against a throttling LookupEvents fake', () => {
  let fake: FakeCloudTrail;
  let aws: StaticScope | undefined;
  const previous = process.env.AWS_ENDPOINT_URL_CLOUDTRAIL;

  beforeAll(async () => {
    fake = await startFakeCloudTrail();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = fake.url;
  });
  afterEach(async () => {
    await aws?.close();
    aws = undefined;
    fake.events.clear();
    fake.reset();
  });
  afterAll(async () => {
    await fake.close();
    if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_CLOUDTRAIL;
    else process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = previous;
  });

  const query = (regions: string[], limit = 1000, now = new Date()): TrailQuery => ({
    attribute: { key: 'AccessKeyId', value: KEY },
    start: new Date(now.getTime() - 86_400_000).toISOString(),
    end: now.toISOString(),
    regions,
    limit,
  });

  it('fetches every page of every region in parallel, at most 2 requests per second per region', async () => {
    const now = new Date();
    const sizes = { 'us-east-1': 160, 'eu-west-1': 75, 'ap-southeast-2': 0 };
    for (const [region, n] of Object.entries(sizes))
      fake.events.set(region, generateEvents(region, n, { newest: now }));
    // Not matching the key: must not be returned.
    fake.events.get('eu-west-1')?.push(
      ...generateEvents('eu-west-1', 5, { newest: now, accessKeyId: 'AKIAOTHEROTHEROTHER2' }).map((e) => ({
        ...e,
        eventId: `other-${e.eventId}`,
      })),
    );
    aws = staticAwsScope();
    const result = await lookupEvents(
      { aws: aws.scope, signal: AbortSignal.timeout(30_000) },
      query(Object.keys(sizes)),
    );

    expect(result.events).toHaveLength(235);
    expect(new Set(result.events.map((e) => e.eventId)).size).toBe(235);
    expect(result.truncated).toBe(false);
    expect(result.regions.map((r) => [r.region, r.events, r.pages, r.error])).toEqual([
      ['us-east-1', 160, 4, undefined],
      ['eu-west-1', 75, 2, undefined],
      ['ap-southeast-2', 0, 1, undefined],
    ]);
    // Newest first across regions.
    const times = result.events.map((e) => e.eventTime);
    expect([...times].sort().reverse()).toEqual(times);
    // The pacing, on the fake's own record of what it received. CloudTrail served at most 2 in any
    // second; every request it received was either served once per page or throttled, and each throttle
    // is counted in the result (quell sent that page again). A throttle can still happen on a loaded
    // machine: requests leave 525 ms apart, but their arrival jitters, and 3 can land in one second.
    for (const region of Object.keys(sizes)) {
      const c = fake.counters(region);
      expect(fake.maxServedPerWindow(region)).toBeLessThanOrEqual(2);
      expect(c.served).toBe(result.regions.find((r) => r.region === region)?.pages);
      expect(c.requests).toBe(c.served + c.throttled);
      expect(result.regions.find((r) => r.region === region)?.throttled).toBe(c.throttled);
      // Spaced, not back to back: never two requests (retries included) within a quarter of a second of
      // each other, where an unpaced client sends the next page as soon as the previous one is in.
      expect(fake.maxReceivedPerWindow(region, 250)).toBe(1);
    }
    expect(fake.counters('us-east-1').pages).toEqual([0, 50, 100, 150].map((o) => `AccessKeyId=${KEY}:${o}`));
    // The regions ran side by side, not one after another: each region's first request reached the fake
    // before us-east-1's second page (which the pacing holds back 525 ms).
    const order = fake.received.map((r) => r.region);
    const secondUsEast = order.indexOf('us-east-1', order.indexOf('us-east-1') + 1);
    for (const region of Object.keys(sizes)) expect(order.indexOf(region)).toBeLessThan(secondUsEast);
    // Every request went through the audited middleware.
    expect(aws.calls.filter((c) => c.operation === 'LookupEvents' && c.outcome === 'ok')).toHaveLength(7);
    expect(
      aws.calls.every((c) => c.service === 'cloudtrail' && c.roleArn === STATIC_ACCOUNT.roles.read),
    ).toBe(true);
  });

  it('sends a throttled page again, past the SDK retries, and loses nothing', async () => {
    fake.events.set('us-east-1', generateEvents('us-east-1', 120));
    // Six throttles in a row for the region: more than the SDK's 5 attempts, so trail's own page
    // retry has to step in as well.
    fake.throttleNext('us-east-1', 6);
    aws = staticAwsScope();
    const result = await lookupEvents(
      { aws: aws.scope, signal: AbortSignal.timeout(45_000) },
      query(['us-east-1']),
    );
    expect(result.events).toHaveLength(120);
    expect(new Set(result.events.map((e) => e.eventId)).size).toBe(120);
    expect(fake.counters('us-east-1').throttled).toBe(6);
    expect(result.regions[0]?.throttled).toBe(6);
    expect(fake.counters('us-east-1').pages).toEqual([
      'AccessKeyId=AKIAIOSFODNN7EXAMPLE:0',
      'AccessKeyId=AKIAIOSFODNN7EXAMPLE:50',
      'AccessKeyId=AKIAIOSFODNN7EXAMPLE:100',
    ]);
  });

  it('with pacing that is too fast (a burst limiter), CloudTrail throttles but no page is lost', async () => {
    fake.events.set('eu-west-1', generateEvents('eu-west-1', 250));
    aws = staticAwsScope({ rateLimits: { cloudtrail: { perSecond: 20, maxConcurrent: 4 } } });
    const result = await lookupEvents(
      { aws: aws.scope, signal: AbortSignal.timeout(45_000) },
      query(['eu-west-1']),
    );
    expect(result.events).toHaveLength(250);
    expect(fake.counters('eu-west-1').throttled).toBeGreaterThan(0);
    expect(result.regions[0]?.throttled).toBe(fake.counters('eu-west-1').throttled);
    // What the spacing check in the first test catches: pages sent back to back.
    expect(fake.maxReceivedPerWindow('eu-west-1', 250)).toBeGreaterThan(1);
    expect(fake.maxServedPerWindow('eu-west-1')).toBeLessThanOrEqual(2);
    expect(fake.counters('eu-west-1').pages).toEqual(
      [0, 50, 100, 150, 200].map((o) => `AccessKeyId=${KEY}:${o}`),
    );
  });

  it('stops at the limit and says how far back the result is complete', async () => {
    const now = new Date();
    fake.events.set('us-east-1', generateEvents('us-east-1', 300, { newest: now, spacingMs: 1_000 }));
    fake.events.set('eu-west-1', generateEvents('eu-west-1', 300, { newest: now, spacingMs: 3_000 }));
    aws = staticAwsScope();
    const result = await lookupEvents(
      { aws: aws.scope, signal: AbortSignal.timeout(30_000) },
      query(['us-east-1', 'eu-west-1'], 120, now),
    );
    expect(result.events).toHaveLength(120);
    expect(result.truncated).toBe(true);
    // Each region fetched 3 pages (150 events; the limit was reached after the 2nd round) and stopped.
    expect(fake.counters('us-east-1').served + fake.counters('eu-west-1').served).toBeLessThanOrEqual(6);
    const completeFrom = result.completeFrom ?? '';
    expect(completeFrom).not.toBe('');
    // Nothing newer than completeFrom is missing: every event of both data sets at or after it is in the result.
    const got = new Set(result.events.map((e) => e.eventId));
    for (const region of ['us-east-1', 'eu-west-1']) {
      for (const e of fake.events.get(region) ?? []) {
        if (e.eventTime.toISOString() >= completeFrom) expect(got.has(e.eventId), e.eventId).toBe(true);
      }
    }
  });

  it('names the missing action and the role when CloudTrail denies the lookup', async () => {
    fake.failWith({
      status: 400,
      type: 'AccessDeniedException',
      message: `User: arn:aws:sts::${STATIC_ACCOUNT.id}:assumed-role/quell-read/quell-r1 is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action`,
    });
    aws = staticAwsScope();
    const ctx = {
      aws: aws.scope,
      signal: AbortSignal.timeout(10_000),
      runId: 'rdeniedtest22',
      account: STATIC_ACCOUNT,
      now: () => new Date(),
    } as unknown as RunContext;
    const plan = { data: query(['us-east-1', 'eu-west-1']) } as unknown as Plan<
      TrailQuery & { [k: string]: never }
    >;
    const error = await trail.execute(ctx, plan).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsAccessDeniedError);
    expect((error as AwsAccessDeniedError).action).toBe('cloudtrail:LookupEvents');
    expect((error as AwsAccessDeniedError).message).toBe(
      `AWS denied \`cloudtrail:LookupEvents\` to \`${STATIC_ACCOUNT.roles.read}\`. Add \`cloudtrail:LookupEvents\` to that role's policy (\`quell iam-policy\` prints the full policy).`,
    );
  });

  it('keeps hostile event contents as data: neutralised in the CSV, intact in the JSON, code on the card', async () => {
    const [base] = generateEvents('us-east-1', 1);
    if (!base) throw new Error('no event');
    fake.events.set('us-east-1', [
      {
        ...base,
        record: {
          sourceIPAddress: '=1+1',
          userAgent: '<!channel> `x` =HYPERLINK("https://evil.example","click")',
          errorCode: '@SUM(A1)',
        },
      },
    ]);
    aws = staticAwsScope();
    const ctx = {
      aws: aws.scope,
      signal: AbortSignal.timeout(10_000),
      runId: 'rhostiletest2',
    } as unknown as RunContext;
    const plan = { data: query(['us-east-1']) } as unknown as Plan<TrailQuery & { [k: string]: never }>;
    const outcome = await trail.execute(ctx, plan);
    const csv = outcome.files?.find((f) => f.filename.endsWith('.csv'))?.content ?? '';
    const json = JSON.parse(outcome.files?.find((f) => f.filename.endsWith('.json'))?.content ?? '{}');
    expect(csv).toContain(",'=1+1,");
    // Quoted for its quotes and comma; it starts with '<', not a formula character, so it is not prefixed.
    expect(csv).toContain('"<!channel> `x` =HYPERLINK(""https://evil.example"",""click"")"');
    expect(csv).toContain(",'@SUM(A1),");
    expect(csv).not.toMatch(/,=1\+1,|,@SUM/);
    expect(json.events[0].sourceIPAddress).toBe('=1+1');
    expect(json.events[0].cloudTrailEvent.userAgent).toContain('=HYPERLINK');
    const facts = Object.fromEntries(outcome.facts);
    // One code span (the backticks inside became spaces); the card escapes < > & on top of it.
    expect(facts['User agents']).toMatch(
      /^`<!channel> x =HYPERLINK\("https:\/\/evil\.example","click"\)` ×1$/,
    );
  });
});
