/**
 * A local fake of CloudTrail's `LookupEvents` (moto does not implement it), speaking the service's JSON
 * protocol so quell's real clients, limiter and audit middleware are exercised. It serves at most 50
 * events per page, newest first, filtered by the one lookup attribute and the time window, and enforces
 * CloudTrail's documented limit of 2 requests per second per account and region: a request that would be
 * the third one served in any 1-second window gets `ThrottlingException` (HTTP 400) instead. Throttled
 * requests are not served and do not count against the window, as with a token bucket. The region is
 * read from the SigV4 credential scope; quell's clients reach the fake through AWS_ENDPOINT_URL_CLOUDTRAIL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One event as the fake stores it (the API shape is derived from it). */
export interface FakeTrailEvent {
  eventId: string;
  eventTime: Date;
  eventName: string;
  eventSource: string;
  username: string;
  accessKeyId: string;
  resources: { type: string; name: string }[];
  /** Extra CloudTrail record fields (sourceIPAddress, userAgent, errorCode, userIdentity, …). */
  record: Record<string, unknown>;
}

/** One LookupEvents request as the fake received it, in arrival order. */
export interface ReceivedRequest {
  region: string;
  /** `Date.now()` when the request's body had arrived. */
  at: number;
  outcome: 'served' | 'throttled' | 'failed';
}

/** Per-region counters. */
export interface RegionCounters {
  requests: number;
  served: number;
  throttled: number;
  /** Page start offsets served, per query (`<attribute>:<offset>`), in order. */
  pages: string[];
}

export interface FakeCloudTrail {
  url: string;
  /** Events per region; tests may add to them before the lookup. */
  events: Map<string, FakeTrailEvent[]>;
  counters(region: string): RegionCounters;
  /** Answers the next `n` requests for `region` with ThrottlingException regardless of the rate. */
  throttleNext(region: string, n: number): void;
  /** Answers every request with this error instead (e.g. AccessDeniedException), until cleared. */
  failWith(error: { status: number; type: string; message: string } | undefined): void;
  /** Forgets every counter, forced throttle and failure (the events stay). */
  reset(): void;
  /** Requests per second served, at most, over any 1-second window (the fake's own check). */
  maxServedPerWindow(region: string): number;
  /**
   * Requests received for `region` (served or throttled), at most, in any sliding window of `windowMs`:
   * the pacing as the service saw it, retries included.
   */
  maxReceivedPerWindow(region: string, windowMs: number): number;
  /** Every LookupEvents request received since the last reset, in arrival order. */
  received: ReceivedRequest[];
  close(): Promise<void>;
}

export const PAGE_SIZE = 50;
const WINDOW_MS = 1000;
const LIMIT_PER_WINDOW = 2;

const EVENT_NAMES = [
  'ConsoleLogin',
  'AssumeRole',
  'GetObject',
  'ListBuckets',
  'CreateAccessKey',
  'PutUserPolicy',
];
const AGENTS = ['aws-cli/2.17.0 Python/3.11.6', 'Boto3/1.34.0 Python/3.12.1', 'console.amazonaws.com'];

/**
 * `count` synthetic events in `region`, newest `spacingMs` before `newest`, then one every `spacingMs`,
 * all for `accessKeyId` (so a key= lookup matches every one).
 */
export function generateEvents(
  region: string,
  count: number,
  options: { newest?: Date; spacingMs?: number; accessKeyId?: string; username?: string } = {},
): FakeTrailEvent[] {
  const newest = (options.newest ?? new Date()).getTime();
  const spacing = options.spacingMs ?? 5_000;
  const key = options.accessKeyId ?? 'AKIAIOSFODNN7EXAMPLE';
  const user = options.username ?? 'alice';
  return Array.from({ length: count }, (_, i) => {
    const name = EVENT_NAMES[i % EVENT_NAMES.length] ?? 'GetObject';
    return {
      eventId: `${region}-${String(i).padStart(6, '0')}`,
      eventTime: new Date(newest - (i + 1) * spacing),
      eventName: name,
      eventSource: name === 'GetObject' || name === 'ListBuckets' ? 's3.amazonaws.com' : 'iam.amazonaws.com',
      username: user,
      accessKeyId: key,
      resources: name === 'GetObject' ? [{ type: 'AWS::S3::Object', name: `bucket/key-${i}` }] : [],
      record: {
        sourceIPAddress: `203.0.113.${i % 7}`,
        userAgent: AGENTS[i % AGENTS.length],
        ...(i % 10 === 3 ? { errorCode: 'AccessDenied', errorMessage: 'User is not authorized' } : {}),
        userIdentity: {
          type: 'IAMUser',
          arn: `arn:aws:iam::111111111111:user/${user}`,
          accessKeyId: key,
          userName: user,
        },
      },
    };
  });
}

const ATTRIBUTE_OF: Record<string, (e: FakeTrailEvent) => string[]> = {
  AccessKeyId: (e) => [e.accessKeyId],
  Username: (e) => [e.username],
  EventName: (e) => [e.eventName],
  EventSource: (e) => [e.eventSource],
  ResourceName: (e) => e.resources.map((r) => r.name),
  EventId: (e) => [e.eventId],
};

interface LookupRequest {
  LookupAttributes?: { AttributeKey: string; AttributeValue: string }[];
  StartTime?: number;
  EndTime?: number;
  MaxResults?: number;
  NextToken?: string;
}

/** The most of `times` (ascending) that fall in any window `[t, t + windowMs)`. */
function maxPerWindow(times: readonly number[], windowMs: number): number {
  let max = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    for (let j = i; j < times.length && (times[j] ?? 0) - (times[i] ?? 0) < windowMs; j++) n++;
    max = Math.max(max, n);
  }
  return max;
}

export async function startFakeCloudTrail(): Promise<FakeCloudTrail> {
  const events = new Map<string, FakeTrailEvent[]>();
  const counters = new Map<string, RegionCounters>();
  const servedAt = new Map<string, number[]>();
  const forced = new Map<string, number>();
  let failure: { status: number; type: string; message: string } | undefined;
  const received: ReceivedRequest[] = [];
  let requestCounter = 0;

  const countersOf = (region: string) => {
    let c = counters.get(region);
    if (!c) {
      c = { requests: 0, served: 0, throttled: 0, pages: [] };
      counters.set(region, c);
    }
    return c;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const auth = String(req.headers.authorization ?? '');
      const region = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/cloudtrail\//.exec(auth)?.[1] ?? 'unknown';
      const target = String(req.headers['x-amz-target'] ?? '');
      const requestId = `fake-ct-${++requestCounter}`;
      const send = (status: number, body: unknown, errorType?: string) => {
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': requestId,
          ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
        });
        res.end(JSON.stringify(body));
      };
      const c = countersOf(region);
      c.requests++;
      if (!target.endsWith('.LookupEvents')) {
        send(
          400,
          {
            __type: 'UnknownOperationException',
            message: `the fake serves LookupEvents only, not ${target}`,
          },
          'UnknownOperationException',
        );
        return;
      }
      const arrival: ReceivedRequest = { region, at: now, outcome: 'served' };
      received.push(arrival);
      if (failure) {
        arrival.outcome = 'failed';
        send(failure.status, { __type: failure.type, message: failure.message }, failure.type);
        return;
      }
      const times = servedAt.get(region) ?? [];
      servedAt.set(region, times);
      let inWindow = 0;
      for (let i = times.length - 1; i >= 0 && now - (times[i] ?? 0) < WINDOW_MS; i--) inWindow++;
      const force = forced.get(region) ?? 0;
      if (force > 0 || inWindow >= LIMIT_PER_WINDOW) {
        if (force > 0) forced.set(region, force - 1);
        c.throttled++;
        arrival.outcome = 'throttled';
        send(400, { __type: 'ThrottlingException', message: 'Rate exceeded' }, 'ThrottlingException');
        return;
      }
      times.push(now);
      c.served++;

      let input: LookupRequest;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as LookupRequest;
      } catch {
        send(400, { __type: 'SerializationException', message: 'bad JSON' }, 'SerializationException');
        return;
      }
      const attributes = input.LookupAttributes ?? [];
      if (attributes.length > 1) {
        send(
          400,
          { __type: 'InvalidLookupAttributesException', message: 'one attribute only' },
          'InvalidLookupAttributesException',
        );
        return;
      }
      const attribute = attributes[0];
      const pick = attribute ? ATTRIBUTE_OF[attribute.AttributeKey] : undefined;
      const start = input.StartTime !== undefined ? input.StartTime * 1000 : Number.NEGATIVE_INFINITY;
      const end = input.EndTime !== undefined ? input.EndTime * 1000 : Number.POSITIVE_INFINITY;
      const matching = (events.get(region) ?? [])
        .filter((e) => !attribute || !pick || pick(e).includes(attribute.AttributeValue))
        .filter((e) => e.eventTime.getTime() >= start && e.eventTime.getTime() <= end)
        .sort((a, b) => b.eventTime.getTime() - a.eventTime.getTime());
      const queryKey = attribute ? `${attribute.AttributeKey}=${attribute.AttributeValue}` : '*';
      const offset = input.NextToken
        ? Number(Buffer.from(input.NextToken, 'base64url').toString().split('|')[1])
        : 0;
      const size = Math.min(PAGE_SIZE, Math.max(1, input.MaxResults ?? PAGE_SIZE));
      const page = matching.slice(offset, offset + size);
      c.pages.push(`${queryKey}:${offset}`);
      const next =
        offset + size < matching.length
          ? Buffer.from(`${queryKey}|${offset + size}`).toString('base64url')
          : undefined;
      send(200, {
        Events: page.map((e) => ({
          EventId: e.eventId,
          EventName: e.eventName,
          ReadOnly: e.eventName.startsWith('Get') || e.eventName.startsWith('List') ? 'true' : 'false',
          AccessKeyId: e.accessKeyId,
          EventTime: e.eventTime.getTime() / 1000,
          EventSource: e.eventSource,
          Username: e.username,
          Resources: e.resources.map((r) => ({ ResourceType: r.type, ResourceName: r.name })),
          CloudTrailEvent: JSON.stringify({
            eventVersion: '1.09',
            eventID: e.eventId,
            eventTime: e.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
            eventName: e.eventName,
            eventSource: e.eventSource,
            awsRegion: region,
            ...e.record,
          }),
        })),
        ...(next ? { NextToken: next } : {}),
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    events,
    counters: countersOf,
    throttleNext(region, n) {
      forced.set(region, (forced.get(region) ?? 0) + n);
    },
    failWith(error) {
      failure = error;
    },
    reset() {
      counters.clear();
      servedAt.clear();
      forced.clear();
      failure = undefined;
      received.length = 0;
    },
    maxServedPerWindow(region) {
      return maxPerWindow(servedAt.get(region) ?? [], WINDOW_MS);
    },
    maxReceivedPerWindow(region, windowMs) {
      return maxPerWindow(
        received.filter((r) => r.region === region).map((r) => r.at),
        windowMs,
      );
    },
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
