/**
 * CloudTrail `LookupEvents` for the rehearsal world, which moto does not implement: the rehearsal's own
 * recorded events, served over the service's JSON protocol (newest first, one lookup attribute, the
 * time window, 50 per page) so quell's real CloudTrail client, limiter and audit middleware run
 * unchanged. quell reaches it through AWS_ENDPOINT_URL_CLOUDTRAIL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One recorded event. */
export interface RehearsalTrailEvent {
  region: string;
  eventTime: Date;
  eventName: string;
  eventSource: string;
  username: string;
  accessKeyId: string;
  resources: { type: string; name: string }[];
  sourceIPAddress: string;
  userAgent: string;
  errorCode?: string;
}

/** The endpoint and its events (the seed and game days add to them). */
export interface RehearsalCloudTrail {
  url: string;
  events: RehearsalTrailEvent[];
  close(): Promise<void>;
}

const PAGE_SIZE = 50;

interface LookupRequest {
  LookupAttributes?: { AttributeKey: string; AttributeValue: string }[];
  StartTime?: number;
  EndTime?: number;
  MaxResults?: number;
  NextToken?: string;
}

const ATTRIBUTE_OF: Record<string, (e: RehearsalTrailEvent) => string[]> = {
  AccessKeyId: (e) => [e.accessKeyId],
  Username: (e) => [e.username],
  EventName: (e) => [e.eventName],
  EventSource: (e) => [e.eventSource],
  ResourceName: (e) => e.resources.map((r) => r.name),
  ResourceType: (e) => e.resources.map((r) => r.type),
  ReadOnly: (e) => [String(isReadOnly(e.eventName))],
};

function isReadOnly(name: string): boolean {
  return /^(Get|List|Describe|Lookup)/.test(name);
}

/** Starts the rehearsal's CloudTrail endpoint on 127.0.0.1. */
export async function startRehearsalCloudTrail(): Promise<RehearsalCloudTrail> {
  const events: RehearsalTrailEvent[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown, errorType?: string) => {
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-requestid': randomUUID(),
          ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
        });
        res.end(JSON.stringify(body));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      if (!target.endsWith('.LookupEvents')) {
        const type = 'UnknownOperationException';
        send(400, { __type: type, message: `the rehearsal serves LookupEvents only, not ${target}` }, type);
        return;
      }
      // The region is the SigV4 credential scope's, as CloudTrail's regional endpoints see it.
      const auth = String(req.headers.authorization ?? '');
      const region = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/cloudtrail\//.exec(auth)?.[1] ?? 'us-east-1';
      let input: LookupRequest;
      try {
        input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as LookupRequest;
      } catch {
        send(400, { __type: 'SerializationException', message: 'bad JSON' }, 'SerializationException');
        return;
      }
      const attribute = input.LookupAttributes?.[0];
      const pick = attribute ? ATTRIBUTE_OF[attribute.AttributeKey] : undefined;
      const start = input.StartTime !== undefined ? input.StartTime * 1000 : Number.NEGATIVE_INFINITY;
      const end = input.EndTime !== undefined ? input.EndTime * 1000 : Number.POSITIVE_INFINITY;
      const matching = events
        .filter((e) => e.region === region)
        .filter((e) => !attribute || !pick || pick(e).includes(attribute.AttributeValue))
        .filter((e) => e.eventTime.getTime() >= start && e.eventTime.getTime() <= end)
        .sort((a, b) => b.eventTime.getTime() - a.eventTime.getTime());
      const offset = input.NextToken ? Number(Buffer.from(input.NextToken, 'base64url').toString()) || 0 : 0;
      const size = Math.min(PAGE_SIZE, Math.max(1, input.MaxResults ?? PAGE_SIZE));
      const page = matching.slice(offset, offset + size);
      const next =
        offset + size < matching.length
          ? Buffer.from(String(offset + size)).toString('base64url')
          : undefined;
      send(200, {
        Events: page.map((e, i) => {
          const eventId = `rehearsal-${e.eventTime.getTime()}-${offset + i}`;
          return {
            EventId: eventId,
            EventName: e.eventName,
            ReadOnly: String(isReadOnly(e.eventName)),
            AccessKeyId: e.accessKeyId,
            EventTime: e.eventTime.getTime() / 1000,
            EventSource: e.eventSource,
            Username: e.username,
            Resources: e.resources.map((r) => ({ ResourceType: r.type, ResourceName: r.name })),
            CloudTrailEvent: JSON.stringify({
              eventVersion: '1.09',
              eventID: eventId,
              eventTime: e.eventTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
              eventName: e.eventName,
              eventSource: e.eventSource,
              awsRegion: region,
              sourceIPAddress: e.sourceIPAddress,
              userAgent: e.userAgent,
              userIdentity: { type: 'IAMUser', userName: e.username, accessKeyId: e.accessKeyId },
              ...(e.errorCode ? { errorCode: e.errorCode } : {}),
            }),
          };
        }),
        ...(next ? { NextToken: next } : {}),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
