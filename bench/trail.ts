/**
 * The trail benchmark (issue 3). Run it with `node bench/trail.ts [--events 10000]`.
 *
 * Fetches `--events` CloudTrail events (a) from one region and (b) from 4 regions (a quarter each)
 * through quell's real path — the run-scoped client factory, its per-account/region bottleneck limiter
 * with the default CloudTrail pacing, the call-recording middleware, the SDK's retries and trail's own
 * page retries — against a local fake of LookupEvents that serves 50 events per page and answers
 * ThrottlingException when a region is asked more than 2 times in any 1-second window (see
 * tests/support/fake-cloudtrail.ts). STS is replaced by static credentials (the fake does not check
 * signatures); nothing else is stubbed.
 *
 * Prints events/s next to CloudTrail's limit (2 pages/s × 50 = 100 events/s per region), the requests
 * the fake throttled, and the pages lost (pages of the data set whose events are missing from the
 * result). Goal: ≥ 90% of the limit, 0 lost pages.
 */
import { parseArgs } from 'node:util';
import { lookupEvents, PAGE_SIZE, type TrailQuery, toCsv } from '../src/runbooks/trail.ts';
import {
  type FakeTrailEvent,
  generateEvents,
  startFakeCloudTrail,
} from '../tests/support/fake-cloudtrail.ts';
import { STATIC_ACCOUNT, staticAwsScope } from '../tests/support/static-aws-scope.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '10000' } } });
const total = Number(values.events);
if (!Number.isInteger(total) || total < 4 * PAGE_SIZE || total > 10_000 || total % 4 !== 0)
  throw new Error('--events must be a multiple of 4 from 200 to 10000');
const KEY = 'AKIAIOSFODNN7EXAMPLE';

interface Figures {
  regions: number;
  events: number;
  seconds: number;
  perSecond: number;
  limitPerSecond: number;
  throttled: number;
  retriedByClient: number;
  lostPages: number;
  calls: number;
  maxServedPerSecond: number;
  csvMs: number;
}

async function scenario(regions: string[]): Promise<Figures> {
  const fake = await startFakeCloudTrail();
  process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = fake.url;
  const now = new Date();
  const perRegion = total / regions.length;
  const datasets = new Map<string, FakeTrailEvent[]>();
  for (const region of regions) {
    const events = generateEvents(region, perRegion, { newest: now, spacingMs: 2_000, accessKeyId: KEY });
    datasets.set(region, events);
    fake.events.set(region, events);
  }
  // quell's client factory with its default limits; only AssumeRole is replaced by static credentials.
  const { scope, calls, close } = staticAwsScope({ region: regions[0] });
  const query: TrailQuery = {
    attribute: { key: 'AccessKeyId', value: KEY },
    start: new Date(now.getTime() - 7 * 86_400_000).toISOString(),
    end: now.toISOString(),
    regions,
    limit: total,
  };
  const started = performance.now();
  const result = await lookupEvents({ aws: scope, signal: AbortSignal.timeout(600_000) }, query);
  const seconds = (performance.now() - started) / 1000;
  const csvStarted = performance.now();
  toCsv(result.events);
  const csvMs = performance.now() - csvStarted;

  const got = new Set(result.events.map((e) => e.eventId));
  let lostPages = 0;
  for (const events of datasets.values()) {
    for (let i = 0; i < events.length; i += PAGE_SIZE) {
      if (events.slice(i, i + PAGE_SIZE).some((e) => !got.has(e.eventId))) lostPages++;
    }
  }
  const throttled = regions.reduce((n, r) => n + fake.counters(r).throttled, 0);
  const figures: Figures = {
    regions: regions.length,
    events: result.events.length,
    seconds,
    perSecond: result.events.length / seconds,
    limitPerSecond: 100 * regions.length,
    throttled,
    retriedByClient: result.regions.reduce((n, r) => n + r.throttled, 0),
    lostPages,
    calls: calls.length,
    maxServedPerSecond: Math.max(...regions.map((r) => fake.maxServedPerWindow(r))),
    csvMs,
  };
  await close();
  await fake.close();
  if (result.events.length !== total || got.size !== total)
    throw new Error(`expected ${total} distinct events, got ${result.events.length} (${got.size} distinct)`);
  return figures;
}

function report(label: string, f: Figures): void {
  const pct = (100 * f.perSecond) / f.limitPerSecond;
  console.log(
    [
      `${label}:`,
      `  events           ${f.events} in ${f.seconds.toFixed(1)} s`,
      `  throughput       ${f.perSecond.toFixed(1)} events/s  (limit ${f.limitPerSecond} events/s = 2 pages/s × ${PAGE_SIZE} × ${f.regions} region${f.regions > 1 ? 's' : ''}; ${pct.toFixed(1)}% of it)`,
      `  throttled        ${f.throttled} requests answered ThrottlingException by the fake (client saw ${f.retriedByClient} retries)`,
      `  lost pages       ${f.lostPages}`,
      `  LookupEvents     ${f.calls} calls recorded; at most ${f.maxServedPerSecond} served in any 1 s window per region`,
      `  CSV of the result ${f.csvMs.toFixed(0)} ms`,
      `  goal             ${pct >= 90 && f.lostPages === 0 ? 'met' : 'NOT met'} (≥ 90% of the limit, 0 lost pages)`,
    ].join('\n'),
  );
}

process.env.AWS_REGION ??= 'us-east-1';
console.log(`trail benchmark: ${total} events, node ${process.version}\n`);
report('one region', await scenario(['us-east-1']));
console.log('');
report('four regions', await scenario(STATIC_ACCOUNT.regions.slice(0, 4)));
