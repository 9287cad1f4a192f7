/**
 * The roles an access key assumed in the last 24 hours, from CloudTrail (`LookupEvents AccessKeyId=…`,
 * keeping the successful `AssumeRole` events): what disable-key records so that its card can offer to
 * revoke those roles' sessions, which outlive the key (they carry the role's permissions, not the user's).
 * Bounded in pages and time, and never fatal: a CloudTrail that is denied, slow or absent is reported as
 * such, and then nothing is offered.
 */
import { QuellError } from '../errors.ts';
import type { RunContext } from './define-runbook.ts';
import { parseRoleArn } from './revoke-role-sessions.ts';

/** The CloudTrail SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadCloudTrail = () => import('@aws-sdk/client-cloudtrail');

/** One role the key assumed. */
export type AssumedRole = {
  arn: string;
  accountId: string;
  /** Successful AssumeRole calls seen. */
  count: number;
  /** The latest one (ISO 8601). */
  lastAssumedAt: string;
};

/** What the lookup found, as stored with the run (JSON). */
export type AssumedRoles = {
  /** `ok`: every region answered; `partial`: some did; `unavailable`: none did. */
  status: 'ok' | 'partial' | 'unavailable';
  since: string;
  roles: AssumedRole[];
  /** Regions looked at, and those that could not be read (with why) or had more events than were read. */
  regions: string[];
  failed: { region: string; reason: string }[];
  truncated: string[];
};

/** The window looked at. */
export const ASSUMED_ROLES_WINDOW_MS = 24 * 3_600_000;
/** Pages of 50 events read per region, newest first: CloudTrail serves 2 requests per second. */
const MAX_PAGES = 4;
/** The whole lookup's budget; past it, the regions not finished are reported as not answered. */
const BUDGET_MS = 5_000;

type LookupEvent = {
  EventName?: string;
  EventTime?: Date;
  CloudTrailEvent?: string;
  Resources?: { ResourceType?: string; ResourceName?: string }[];
};

/** The role a successful AssumeRole event names (request parameters, else the event's resources), or undefined. */
function assumedRoleOf(event: LookupEvent): string | undefined {
  if (event.EventName !== 'AssumeRole') return undefined;
  let record: { errorCode?: unknown; requestParameters?: { roleArn?: unknown } } = {};
  try {
    record = JSON.parse(event.CloudTrailEvent ?? '{}') as typeof record;
  } catch {
    // an event CloudTrail could not give whole: fall back on its resources
  }
  if (record.errorCode) return undefined; // a refused AssumeRole issued no session
  const fromRequest = parseRoleArn(record.requestParameters?.roleArn);
  if (fromRequest) return fromRequest.arn;
  const resource = event.Resources?.find((r) => r.ResourceType === 'AWS::IAM::Role');
  return parseRoleArn(resource?.ResourceName)?.arn;
}

/**
 * Looks the key's events up in `regions` of the run's account (STS logs AssumeRole in the region of the
 * endpoint called: the global endpoint's is us-east-1), at most MAX_PAGES pages each, within BUDGET_MS.
 */
export async function findAssumedRoles(
  ctx: Pick<RunContext, 'aws' | 'now' | 'signal'>,
  keyId: string,
  regions: readonly string[],
): Promise<AssumedRoles> {
  const end = ctx.now();
  const start = new Date(end.getTime() - ASSUMED_ROLES_WINDOW_MS);
  const budget = AbortSignal.any([ctx.signal, AbortSignal.timeout(BUDGET_MS)]);
  const seen = new Map<string, AssumedRole>();
  const failed: AssumedRoles['failed'] = [];
  const truncated: string[] = [];
  const { CloudTrailClient, LookupEventsCommand } = await loadCloudTrail();
  await Promise.all(
    regions.map(async (region) => {
      const cloudTrail = ctx.aws.client(CloudTrailClient, region);
      let nextToken: string | undefined;
      try {
        for (let page = 0; page < MAX_PAGES; page++) {
          const out = await cloudTrail.send(
            new LookupEventsCommand({
              LookupAttributes: [{ AttributeKey: 'AccessKeyId', AttributeValue: keyId }],
              StartTime: start,
              EndTime: end,
              MaxResults: 50,
              NextToken: nextToken,
            }),
            { abortSignal: budget },
          );
          for (const event of out.Events ?? []) {
            const arn = assumedRoleOf(event);
            if (!arn) continue;
            const at = (event.EventTime ?? end).toISOString();
            const known = seen.get(arn);
            seen.set(arn, {
              arn,
              accountId: parseRoleArn(arn)?.accountId ?? '',
              count: (known?.count ?? 0) + 1,
              lastAssumedAt: known && known.lastAssumedAt > at ? known.lastAssumedAt : at,
            });
          }
          nextToken = out.NextToken;
          if (!nextToken) return;
        }
        truncated.push(region);
      } catch (error) {
        failed.push({
          region,
          reason:
            budget.aborted && !ctx.signal.aborted
              ? `no answer within ${BUDGET_MS / 1000} s`
              : reasonOf(error),
        });
      }
    }),
  );
  const roles = [...seen.values()].sort((a, b) => b.lastAssumedAt.localeCompare(a.lastAssumedAt));
  return {
    status: failed.length === 0 ? 'ok' : failed.length < regions.length ? 'partial' : 'unavailable',
    since: start.toISOString(),
    roles: failed.length < regions.length ? roles : [],
    regions: [...regions],
    failed: failed.sort((a, b) => a.region.localeCompare(b.region)),
    truncated: truncated.sort(),
  };
}

/** One line for the card: the roles, or why there are none to offer. */
export function describeAssumedRoles(found: AssumedRoles): string {
  if (found.status === 'unavailable') {
    return `CloudTrail could not be read (${found.failed.map((f) => `${f.region}: ${f.reason}`).join('; ')}): nothing to offer; check with \`trail\`.`;
  }
  const roles = found.roles.length
    ? found.roles.map((r) => `${r.arn} (×${r.count}, last ${r.lastAssumedAt})`).join(', ')
    : 'none';
  const caveats = [
    ...found.failed.map((f) => `${f.region} not read: ${f.reason}`),
    ...(found.truncated.length
      ? [`only the latest ${MAX_PAGES * 50} events read in ${found.truncated.join(', ')}`]
      : []),
  ];
  return `${roles}${caveats.length ? ` (${caveats.join('; ')})` : ''}`;
}

function reasonOf(error: unknown): string {
  return error instanceof QuellError
    ? error.message.slice(0, 200)
    : error instanceof Error
      ? error.name
      : 'unknown error';
}
