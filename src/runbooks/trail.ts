/**
 * trail: CloudTrail `LookupEvents` by one attribute over a time window, in one or more regions in
 * parallel, paced at CloudTrail's 2 requests per second per account and region (declared here as the
 * runbook's rate limit; the client factory's limiter, shared by every run, applies it). Read-only: it runs right after planning with the read
 * role. The summary goes on the run's card; the full result is attached to its thread as CSV and JSON.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Event as CloudTrailApiEvent, LookupAttributeKey } from '@aws-sdk/client-cloudtrail';
import { z } from 'zod';
import { AwsRegionSchema } from '../config-fields.ts';
import { AwsThrottledError, InputInvalidError, QuellError } from '../errors.ts';
import type { Json } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  type Outcome,
  type OutcomeFile,
  type Plan,
  type RunContext,
} from './define-runbook.ts';
import { AccessKeyIdSchema } from './disable-key.ts';

/** The CloudTrail SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadCloudTrail = () => import('@aws-sdk/client-cloudtrail');

/** How far back CloudTrail's event history goes. */
export const MAX_LOOKBACK_MS = 90 * 86_400_000;
/** LookupEvents returns at most 50 events per call. */
export const PAGE_SIZE = 50;
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;
const DAY_MS = 86_400_000;

const USAGE =
  'trail key=AKIA…|user=alice|event=ConsoleLogin|resource=…|source=iam.amazonaws.com [since=24h] [until=2026-11-23T10:00Z] [region=us-east-1,eu-west-1] [limit=1000] [account=prod]';

/** The lookup attributes quell offers, by option name. */
const ATTRIBUTES = {
  key: 'AccessKeyId',
  user: 'Username',
  event: 'EventName',
  resource: 'ResourceName',
  source: 'EventSource',
} as const satisfies Record<string, LookupAttributeKey>;
type AttributeOption = keyof typeof ATTRIBUTES;

const UserNameSchema = z
  .string()
  .regex(
    /^[\w+=,.@-]{1,128}$/,
    'a user name is 1–128 letters, digits or + = , . @ _ - (an IAM user or role session name)',
  );
const EventNameSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{1,127}$/, 'an event name is an API operation like ConsoleLogin or PutObject');
const ResourceNameSchema = z
  .string()
  .regex(
    /^[\w+=,.@:/*-]{1,512}$/,
    'a resource name is an ARN, id or name of up to 512 letters, digits or + = , . @ : / * _ -',
  );
const EventSourceSchema = z
  .string()
  .regex(
    /^[a-z0-9-]{2,63}(\.[a-z0-9-]{1,63}){0,2}\.amazonaws\.com$/,
    'an event source is a service endpoint like iam.amazonaws.com',
  );

/** A point in time as the user wrote it: some time ago, or an absolute instant. JSON, because inputs are stored. */
export type TimeSpec = { ago: number } | { at: string };

const DURATION = /^(\d{1,5})([mhd])$/;
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Parses `90m` / `24h` / `7d` or an ISO 8601 time (a date, or a date and time with Z or an offset). */
export function parseTimeSpec(text: string): TimeSpec | undefined {
  const duration = DURATION.exec(text);
  if (duration) {
    const unit = duration[2] === 'm' ? 60_000 : duration[2] === 'h' ? 3_600_000 : DAY_MS;
    return { ago: Number(duration[1]) * unit };
  }
  const iso = ISO_TIME.exec(text);
  if (!iso) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00'] = iso;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  // Date.parse rolls 2026-02-30 over into March; a date that does not exist is refused instead.
  if (
    day.getUTCFullYear() !== Number(y) ||
    day.getUTCMonth() !== Number(mo) - 1 ||
    day.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    return undefined;
  }
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : { at: new Date(ms).toISOString() };
}

const TimeSpecSchema = z.string().transform((text, ctx): TimeSpec => {
  const spec = parseTimeSpec(text);
  if (!spec) {
    ctx.addIssue({
      code: 'custom',
      message: 'give a duration like 90m, 24h or 7d, or an ISO time like 2026-11-23T10:00Z',
    });
    return z.NEVER;
  }
  if ('ago' in spec && (spec.ago <= 0 || spec.ago > MAX_LOOKBACK_MS)) {
    ctx.addIssue({ code: 'custom', message: 'CloudTrail keeps 90 days of events: give at most 90d' });
    return z.NEVER;
  }
  return spec;
});

const RegionListSchema = z
  .string()
  .max(400, 'list at most 20 regions')
  .transform((text) => [...new Set(text.split(',').map((r) => r.trim()))])
  .pipe(z.array(AwsRegionSchema).min(1).max(20, 'list at most 20 regions'));

const LimitSchema = z
  .string()
  .regex(/^\d{1,6}$/, `give a whole number of events from 1 to ${MAX_LIMIT}`)
  .transform(Number)
  .pipe(
    z
      .number()
      .int()
      .min(1, `give a whole number of events from 1 to ${MAX_LIMIT}`)
      .max(MAX_LIMIT, `at most ${MAX_LIMIT} events per run; narrow since=/until= for more`),
  );

const TrailOptionsSchema = z
  .object({
    key: AccessKeyIdSchema.optional(),
    user: UserNameSchema.optional(),
    event: EventNameSchema.optional(),
    resource: ResourceNameSchema.optional(),
    source: EventSourceSchema.optional(),
    since: TimeSpecSchema.optional(),
    until: TimeSpecSchema.optional(),
    region: RegionListSchema.optional(),
    limit: LimitSchema.optional(),
    account: AccountOptionSchema,
  })
  .strict();

const TrailInputSchema = z
  .object({
    positional: z
      .array(z.string())
      .refine((a) => a.length === 0, 'trail takes no positional argument: write the attribute as key=AKIA…'),
    options: TrailOptionsSchema,
  })
  .superRefine(({ options }, ctx) => {
    const given = (Object.keys(ATTRIBUTES) as AttributeOption[]).filter((k) => options[k] !== undefined);
    if (given.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['options'],
        message: 'give one lookup attribute: key=, user=, event=, resource= or source=',
      });
    } else if (given.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['options'],
        message: `CloudTrail looks events up by one attribute per call; you gave ${given.map((k) => `\`${k}=\``).join(' and ')}. Keep one, and filter the CSV for the other.`,
      });
    }
  })
  .transform(({ options }) => {
    const option = (Object.keys(ATTRIBUTES) as AttributeOption[]).find((k) => options[k] !== undefined);
    const attribute = option ?? 'key';
    return {
      attribute: { key: ATTRIBUTES[attribute], value: options[attribute] ?? '' },
      since: options.since ?? { ago: DAY_MS },
      until: options.until ?? null,
      regions: options.region ?? null,
      limit: options.limit ?? DEFAULT_LIMIT,
      account: options.account,
      region: undefined,
      reason: undefined,
    };
  });

type TrailInput = z.infer<typeof TrailInputSchema>;

/** What a lookup asks CloudTrail for: one attribute, a window, regions and a cap on events. */
export interface TrailQuery {
  attribute: { key: LookupAttributeKey; value: string };
  start: string;
  end: string;
  regions: string[];
  limit: number;
}

type TrailData = TrailQuery & { [key: string]: Json };

/** Resolves the window against `now`: at most 90 days back, start before end, end not in the future. */
export function resolveWindow(
  since: TimeSpec,
  until: TimeSpec | null,
  now: Date,
): { start: Date; end: Date; notes: string[] } {
  const at = (spec: TimeSpec) => ('ago' in spec ? new Date(now.getTime() - spec.ago) : new Date(spec.at));
  const notes: string[] = [];
  const start = at(since);
  let end = until ? at(until) : now;
  if (end.getTime() > now.getTime()) {
    end = now;
    notes.push('`until=` is in the future; the window ends now.');
  }
  const problems: string[] = [];
  if (start.getTime() < now.getTime() - MAX_LOOKBACK_MS - 60_000)
    problems.push(
      `\`since=\` is ${Math.floor((now.getTime() - start.getTime()) / DAY_MS)} days back; CloudTrail keeps 90 days of events`,
    );
  if (start.getTime() >= end.getTime())
    problems.push(
      `the window is empty: since ${start.toISOString()} is not before until ${end.toISOString()}`,
    );
  if (problems.length > 0) throw new InputInvalidError(problems, USAGE);
  return { start, end, notes };
}

// ---------------------------------------------------------------------------------------------------
// Fetching

/** One CloudTrail event, flattened for the summary and the files. */
export interface TrailEvent {
  eventTime: string;
  region: string;
  eventName: string;
  eventSource: string;
  readOnly: string;
  errorCode: string;
  errorMessage: string;
  sourceIPAddress: string;
  userAgent: string;
  identityType: string;
  identity: string;
  username: string;
  accessKeyId: string;
  resources: string;
  eventId: string;
  /** The full CloudTrail record (parsed), for the JSON file. */
  cloudTrailEvent: unknown;
}

/** How one region's lookup went. */
export interface RegionLookup {
  region: string;
  events: number;
  pages: number;
  /** Requests CloudTrail throttled and quell sent again (SDK retries and quell's own page retries). */
  throttled: number;
  /** Whether more pages were left when the limit was reached. */
  cut: boolean;
  error?: string | undefined;
}

/** The result of a lookup across regions. */
export interface LookupResult {
  events: TrailEvent[];
  regions: RegionLookup[];
  /** Whether the limit (or the time limit) left events unfetched. */
  truncated: boolean;
  /** When truncated: the result holds every event from this time to the end of the window. */
  completeFrom: string | null;
  /** The first error per failed region, for rethrowing when every region failed. */
  errors: QuellError[];
}

/** How many times quell itself retries a page after the SDK's own retries all met throttling. */
const PAGE_RETRIES = 6;

/**
 * Looks events up in every region in parallel. Each region pages sequentially (each page needs the
 * previous page's token); the pacing is the client factory's limiter, one per account and region, so
 * regions do not slow each other down. Stops when `limit` events are in hand; a throttled page is sent
 * again (by the SDK, then by this loop), never skipped.
 */
export async function lookupEvents(
  ctx: Pick<RunContext, 'aws' | 'signal'>,
  query: TrailQuery,
): Promise<LookupResult> {
  const shared = { total: 0 };
  const collected: TrailEvent[][] = [];
  const results = await Promise.all(
    query.regions.map(async (region, i) => {
      const events: TrailEvent[] = [];
      collected[i] = events;
      const stats: RegionLookup = { region, events: 0, pages: 0, throttled: 0, cut: false };
      try {
        await lookupRegion(ctx, query, region, shared, events, stats);
        return { stats, error: undefined };
      } catch (error) {
        if (ctx.signal.aborted) {
          stats.cut = true;
          stats.error = 'stopped at the run time limit';
          return { stats, error: undefined };
        }
        const e = error instanceof QuellError ? error : undefined;
        if (!e) throw error;
        stats.error = e.message;
        return { stats, error: e };
      }
    }),
  );
  const all = collected.flat().sort(newestFirst);
  const kept = all.slice(0, query.limit);
  const trimmed = all.length > kept.length;
  const regions = results.map((r) => ({
    ...r.stats,
    events: kept.filter((e) => e.region === r.stats.region).length,
  }));
  const truncated = trimmed || regions.some((r) => r.cut);
  // What the result covers completely: a region that stopped with pages left holds every event from its
  // oldest fetched one on; trimming to the limit drops only events older than the oldest one kept.
  let completeFrom: string | null = null;
  if (truncated) {
    const bounds = results.flatMap((r, i) =>
      r.stats.cut ? [oldestTime(collected[i] ?? []) ?? query.end] : [],
    );
    if (trimmed) bounds.push(kept.at(-1)?.eventTime ?? query.end);
    completeFrom = bounds.sort().at(-1) ?? null;
  }
  return {
    events: kept,
    regions,
    truncated,
    completeFrom,
    errors: results.flatMap((r) => (r.error ? [r.error] : [])),
  };
}

async function lookupRegion(
  ctx: Pick<RunContext, 'aws' | 'signal'>,
  query: TrailQuery,
  region: string,
  shared: { total: number },
  events: TrailEvent[],
  stats: RegionLookup,
): Promise<void> {
  const { CloudTrailClient, LookupEventsCommand } = await loadCloudTrail();
  const client = ctx.aws.client(CloudTrailClient, region);
  let token: string | undefined;
  do {
    if (shared.total >= query.limit) {
      stats.cut = true;
      return;
    }
    const command = new LookupEventsCommand({
      LookupAttributes: [{ AttributeKey: query.attribute.key, AttributeValue: query.attribute.value }],
      StartTime: new Date(query.start),
      EndTime: new Date(query.end),
      MaxResults: PAGE_SIZE,
      ...(token ? { NextToken: token } : {}),
    });
    const page = await sendWithRetries(
      () => client.send(command, { abortSignal: ctx.signal }),
      ctx.signal,
      stats,
    );
    stats.pages++;
    const batch = (page.Events ?? []).map((e) => toTrailEvent(e, region));
    events.push(...batch);
    shared.total += batch.length;
    token = page.NextToken || undefined;
  } while (token);
}

async function sendWithRetries<T extends { $metadata: { attempts?: number | undefined } }>(
  send: () => Promise<T>,
  signal: AbortSignal,
  stats: RegionLookup,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const out = await send();
      stats.throttled += Math.max(0, (out.$metadata.attempts ?? 1) - 1);
      return out;
    } catch (error) {
      if (!(error instanceof AwsThrottledError) || attempt >= PAGE_RETRIES) throw error;
      const attempts = (error.cause as { $metadata?: { attempts?: number } } | undefined)?.$metadata
        ?.attempts;
      stats.throttled += attempts ?? 1;
      // The SDK's retries are spent (or its retry quota is); back off for longer, then ask again.
      await sleep(Math.min(16_000, 1_000 * 2 ** attempt) * (0.75 + Math.random() / 2), undefined, { signal });
    }
  }
}

function oldestTime(events: TrailEvent[]): string | undefined {
  let oldest: string | undefined;
  for (const e of events) if (oldest === undefined || e.eventTime < oldest) oldest = e.eventTime;
  return oldest;
}

function newestFirst(a: TrailEvent, b: TrailEvent): number {
  if (a.eventTime !== b.eventTime) return a.eventTime < b.eventTime ? 1 : -1;
  if (a.region !== b.region) return a.region < b.region ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/** Flattens an API event and the CloudTrail record inside it. Every value is untrusted text. */
export function toTrailEvent(e: CloudTrailApiEvent, region: string): TrailEvent {
  let record: Record<string, unknown> = {};
  let parsed: unknown = e.CloudTrailEvent ?? null;
  try {
    parsed = e.CloudTrailEvent ? JSON.parse(e.CloudTrailEvent) : null;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      record = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: keep the raw text in the JSON file, leave the derived columns empty.
  }
  const identity = (record.userIdentity ?? {}) as Record<string, unknown>;
  const text = (v: unknown) =>
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
  return {
    eventTime: e.EventTime ? e.EventTime.toISOString() : text(record.eventTime),
    region: text(record.awsRegion) || region,
    eventName: e.EventName ?? text(record.eventName),
    eventSource: e.EventSource ?? text(record.eventSource),
    readOnly: e.ReadOnly ?? text(record.readOnly),
    errorCode: text(record.errorCode),
    errorMessage: text(record.errorMessage),
    sourceIPAddress: text(record.sourceIPAddress),
    userAgent: text(record.userAgent),
    identityType: text(identity.type),
    identity: text(identity.arn) || text(identity.principalId) || (e.Username ?? ''),
    username: e.Username ?? '',
    accessKeyId: e.AccessKeyId ?? text(identity.accessKeyId),
    resources: (e.Resources ?? []).map((r) => `${r.ResourceType ?? ''}:${r.ResourceName ?? ''}`).join('; '),
    eventId: e.EventId ?? text(record.eventID),
    cloudTrailEvent: parsed,
  };
}

// ---------------------------------------------------------------------------------------------------
// Summary and files

/** The `n` most frequent non-empty values, most frequent first (ties by value, for stable output). */
export function topValues(values: string[], n: number): { value: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts]
    .map(([value, count]) => ({ value, count }))
    .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1))
    .slice(0, n);
}

/**
 * Untrusted text as an inline code span: no backtick can close it, no line break can start a quote,
 * and Slack links nothing inside it. The card still escapes & < > on top.
 */
export function codeSpan(text: string, max = 40): string {
  const flat = text.replace(/[`\r\n\t]/g, ' ').replace(/\s+/g, ' ');
  return `\`${flat.length > max ? `${flat.slice(0, max - 1)}…` : flat}\``;
}

function listTop(values: string[], n: number, max = 40): string {
  const top = topValues(values, n);
  return top.length === 0 ? 'none' : top.map((t) => `${codeSpan(t.value, max)} ×${t.count}`).join(' · ');
}

const count = (n: number) => n.toLocaleString('en-US');
const minute = (iso: string) => `${iso.slice(0, 16)}Z`;

/** The card's facts: events, span, top event names, IPs, user agents, errors and identities. */
export function summarizeEvents(result: LookupResult): [string, string][] {
  const { events } = result;
  const perRegion = result.regions
    .map((r) => `${r.region} ${r.error ? 'failed' : count(r.events)}`)
    .join(' · ');
  const facts: [string, string][] = [
    [
      'Events',
      `${count(events.length)} (${perRegion})${result.truncated ? ' — limit reached, more exist' : ''}`,
    ],
  ];
  if (events.length === 0) return facts;
  const first = events.at(-1)?.eventTime ?? '';
  const last = events[0]?.eventTime ?? '';
  facts.push(['Time span', `${first} → ${last}`]);
  facts.push([
    'Top events',
    listTop(
      events.map((e) => e.eventName),
      5,
    ),
  ]);
  facts.push([
    'Source IPs',
    listTop(
      events.map((e) => e.sourceIPAddress),
      5,
    ),
  ]);
  facts.push([
    'User agents',
    listTop(
      events.map((e) => e.userAgent),
      3,
      60,
    ),
  ]);
  facts.push([
    'Errors',
    listTop(
      events.map((e) => e.errorCode),
      5,
    ),
  ]);
  facts.push([
    'Identities',
    listTop(
      events.map((e) => e.identity),
      4,
      60,
    ),
  ]);
  const throttled = result.regions.reduce((n, r) => n + r.throttled, 0);
  if (throttled > 0)
    facts.push(['Throttled', `${throttled} requests throttled and sent again; no page lost`]);
  return facts;
}

/** The CSV columns, in order. */
export const CSV_COLUMNS = [
  'eventTime',
  'region',
  'eventName',
  'eventSource',
  'readOnly',
  'errorCode',
  'errorMessage',
  'sourceIPAddress',
  'userAgent',
  'identityType',
  'identity',
  'username',
  'accessKeyId',
  'resources',
  'eventId',
] as const satisfies readonly (keyof TrailEvent)[];

/**
 * One CSV cell (RFC 4180): quoted when it holds a quote, comma or line break, quotes doubled. A cell
 * that a spreadsheet would run as a formula (starting with = + - @, tab or carriage return; OWASP's
 * "CSV injection") is prefixed with a single quote, so it is shown as text.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The events as CSV, header first, CRLF line ends. */
export function toCsv(events: TrailEvent[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of events) lines.push(CSV_COLUMNS.map((c) => csvCell(e[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

function describeAttribute(query: Pick<TrailQuery, 'attribute'>): string {
  return `${query.attribute.key} = ${query.attribute.value}`;
}

// ---------------------------------------------------------------------------------------------------
// The runbook

async function planTrail(ctx: RunContext, input: TrailInput): Promise<Plan<TrailData>> {
  const regions = input.regions ?? ctx.account.regions;
  const unknown = regions.filter((r) => !ctx.account.regions.includes(r));
  if (unknown.length > 0) {
    throw new InputInvalidError(
      [
        `region${unknown.length > 1 ? 's' : ''} ${unknown.map((r) => `\`${r}\``).join(', ')} not configured for account \`${ctx.account.alias}\` (${ctx.account.regions.join(', ')})`,
      ],
      USAGE,
    );
  }
  const { start, end, notes } = resolveWindow(input.since, input.until, ctx.now());
  const query: TrailQuery = {
    attribute: input.attribute,
    start: start.toISOString(),
    end: end.toISOString(),
    regions,
    limit: input.limit,
  };
  const pagesPerRegion = Math.ceil(input.limit / PAGE_SIZE);
  return {
    summary: `Look up CloudTrail events where ${describeAttribute(query)} in ${regions.join(', ')}, ${minute(query.start)} → ${minute(query.end)}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Regions', regions.join(', ')],
      ['Lookup', describeAttribute(query)],
      ['Window', `${minute(query.start)} → ${minute(query.end)}`],
      ['Limit', `${count(input.limit)} events`],
    ],
    calls: regions.map((region) => ({
      action: 'cloudtrail:LookupEvents',
      params: {
        Region: region,
        LookupAttributes: `${query.attribute.key}=${query.attribute.value}`,
        StartTime: query.start,
        EndTime: query.end,
        MaxResults: String(PAGE_SIZE),
      },
    })),
    notes: [
      ...notes,
      `Read-only. CloudTrail answers 2 lookups per second per region: up to ${pagesPerRegion} pages of ${PAGE_SIZE} per region, about ${Math.ceil(pagesPerRegion / 2)} s at most.`,
    ],
    material: { accountId: ctx.account.id, ...query } as unknown as Json,
    data: query as TrailData,
  };
}

async function executeTrail(ctx: RunContext, plan: Plan<TrailData>): Promise<Outcome> {
  const query = plan.data;
  const result = await lookupEvents(ctx, query);
  const failed = result.regions.filter((r) => r.error);
  if (result.errors.length > 0 && result.errors.length === query.regions.length) {
    // Nothing came back at all: the first error says what to fix (AccessDenied names the action and role).
    throw result.errors[0];
  }
  const where = query.regions.length === 1 ? query.regions[0] : `${query.regions.length} regions`;
  let summary =
    result.events.length === 0
      ? `No CloudTrail events where ${describeAttribute(query)} in ${where}, ${minute(query.start)} → ${minute(query.end)}.`
      : `Found ${count(result.events.length)} CloudTrail events where ${describeAttribute(query)} in ${where}.`;
  if (result.truncated) {
    summary += ` The limit of ${count(query.limit)} cut the result short: more events exist, and it is complete only from ${result.completeFrom ?? query.end}. Narrow since=/until= or raise limit= (at most ${count(MAX_LIMIT)}).`;
  }
  if (failed.length > 0) {
    summary += ` Could not read ${failed.map((r) => `${r.region} (${r.error})`).join('; ')}.`;
  }
  const files: OutcomeFile[] = [];
  if (result.events.length > 0) {
    const base = `trail-${ctx.runId}`;
    files.push({
      filename: `${base}.csv`,
      title: `CloudTrail events: ${describeAttribute(query)} (CSV)`,
      content: toCsv(result.events),
    });
    files.push({
      filename: `${base}.json`,
      title: `CloudTrail events: ${describeAttribute(query)} (JSON)`,
      content: JSON.stringify({
        query,
        truncated: result.truncated,
        completeFrom: result.completeFrom,
        regions: result.regions,
        events: result.events,
      }),
    });
  }
  return {
    ok: failed.length === 0,
    summary,
    facts: summarizeEvents(result),
    data: {
      events: result.events.length,
      truncated: result.truncated,
      completeFrom: result.completeFrom,
      regions: result.regions as unknown as Json,
    },
    files,
  };
}

/** The runbook. */
export const trail = defineRunbook({
  id: 'trail',
  title: 'Look up CloudTrail events',
  risk: 'read-only',
  description: 'CloudTrail events by access key, user, event name, resource or event source, as CSV/JSON',
  usage: USAGE,
  input: TrailInputSchema,
  access: 'read',
  iam: { plan: [], execute: ['cloudtrail:LookupEvents'] },
  rateLimits: {
    // LookupEvents is limited to 2 requests per second per account and Region
    // (docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html). A reservoir of 2
    // refilled every second lets 4 requests through within a few ms across a refill boundary (2 just
    // before, 2 just after), which a limit over any one-second window throttles; so CloudTrail is
    // `spaced`: one request every 525 ms, never more than 2 in any second.
    cloudtrail: { perSecond: 2, maxConcurrent: 2, pacing: 'spaced' },
  },
  plan: planTrail,
  // Nothing in the world has to stay as planned for a lookup: the approved query is what runs.
  recheck: async (_ctx, plan) => plan.material,
  execute: executeTrail,
  verify: async () => ({ ok: true, summary: 'Nothing was changed (read-only).', facts: [], data: null }),
  undo: 'irreversible',
});
