/**
 * A local fake of CloudFormation's drift operations (moto has none of them): ListStacks,
 * DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts, in the service's
 * query protocol (form-encoded requests, XML answers), so that quell's real clients, limiter and
 * audit middleware are exercised end to end. Stacks and their drift are scripted by the test; a
 * detection reports DETECTION_IN_PROGRESS for a scripted number of polls first. Fine-grained sequences
 * (statuses over time) are tested with aws-sdk-client-mock instead; this fake is for the full path.
 * quell's clients reach it through AWS_ENDPOINT_URL_CLOUDFORMATION.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A drifted resource as the test scripts it. */
export interface FakeResourceDrift {
  logicalId: string;
  physicalId: string;
  type: string;
  status: 'MODIFIED' | 'DELETED' | 'IN_SYNC' | 'NOT_CHECKED';
  differences?: { path: string; expected: string; actual: string; kind: 'ADD' | 'REMOVE' | 'NOT_EQUAL' }[];
  expectedProperties?: string;
  actualProperties?: string;
}

/** A stack as the test scripts it. */
export interface FakeStack {
  status: string;
  resources: FakeResourceDrift[];
  /** How many status polls answer DETECTION_IN_PROGRESS before the result (default 1). */
  pollsInProgress?: number;
  /** DETECTION_FAILED instead of DETECTION_COMPLETE, with this reason. */
  failReason?: string;
}

export interface RecordedCfnRequest {
  action: string;
  params: Record<string, string>;
  at: number;
}

export interface FakeCloudFormation {
  url: string;
  stacks: Map<string, FakeStack>;
  requests: RecordedCfnRequest[];
  /** The most detections that were in progress at once. */
  maxConcurrentDetections: number;
  close(): Promise<void>;
}

const NS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';

function xml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function element(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : `<${name}>${xml(String(value))}</${name}>`;
}

function members(params: Record<string, string>, prefix: string): string[] {
  return Object.keys(params)
    .filter((k) => k.startsWith(`${prefix}.member.`))
    .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()))
    .map((k) => params[k] ?? '');
}

export async function startFakeCloudFormation(
  options: { pageSize?: number } = {},
): Promise<FakeCloudFormation> {
  const pageSize = options.pageSize ?? 100;
  const stacks = new Map<string, FakeStack>();
  const requests: RecordedCfnRequest[] = [];
  const detections = new Map<string, { stack: string; remaining: number; done: boolean }>();
  const fake = { maxConcurrentDetections: 0 };

  const stackId = (name: string) =>
    `arn:aws:cloudformation:us-east-1:123456789012:stack/${name}/00000000-0000-0000-0000-000000000000`;
  const inProgress = () => [...detections.values()].filter((d) => !d.done).length;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const action = params.Action ?? '';
      requests.push({ action, params, at: Date.now() });
      const requestId = randomUUID();
      const ok = (result: string) => {
        res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
        res.end(
          `<${action}Response xmlns="${NS}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
        );
      };
      const fail = (code: string, message: string) => {
        res.writeHead(400, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
        res.end(
          `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        );
      };
      const page = <T>(items: T[]) => {
        const offset = params.NextToken ? Number(params.NextToken) : 0;
        const next = offset + pageSize < items.length ? String(offset + pageSize) : undefined;
        return { items: items.slice(offset, offset + pageSize), next };
      };

      switch (action) {
        case 'ListStacks': {
          const wanted = members(params, 'StackStatusFilter');
          const names = [...stacks].filter(([, s]) => wanted.length === 0 || wanted.includes(s.status));
          const { items, next } = page(names);
          ok(
            `<StackSummaries>${items
              .map(
                ([name, s]) =>
                  `<member>${element('StackId', stackId(name))}${element('StackName', name)}${element('CreationTime', '2026-01-01T00:00:00Z')}${element('StackStatus', s.status)}</member>`,
              )
              .join('')}</StackSummaries>${element('NextToken', next)}`,
          );
          return;
        }
        case 'DetectStackDrift': {
          const name = params.StackName ?? '';
          const stack = stacks.get(name);
          if (!stack) return fail('ValidationError', `Stack with id ${name} does not exist`);
          const id = randomUUID();
          detections.set(id, { stack: name, remaining: stack.pollsInProgress ?? 1, done: false });
          fake.maxConcurrentDetections = Math.max(fake.maxConcurrentDetections, inProgress());
          ok(element('StackDriftDetectionId', id));
          return;
        }
        case 'DescribeStackDriftDetectionStatus': {
          const id = params.StackDriftDetectionId ?? '';
          const detection = detections.get(id);
          const stack = detection ? stacks.get(detection.stack) : undefined;
          if (!detection || !stack) return fail('ValidationError', `No drift detection ${id}`);
          const common = `${element('StackId', stackId(detection.stack))}${element('StackDriftDetectionId', id)}${element('Timestamp', new Date().toISOString())}`;
          if (detection.remaining > 0) {
            detection.remaining--;
            ok(`${common}${element('DetectionStatus', 'DETECTION_IN_PROGRESS')}`);
            return;
          }
          detection.done = true;
          const drifted = stack.resources.filter(
            (r) => r.status === 'MODIFIED' || r.status === 'DELETED',
          ).length;
          ok(
            `${common}${element('DetectionStatus', stack.failReason ? 'DETECTION_FAILED' : 'DETECTION_COMPLETE')}${element('DetectionStatusReason', stack.failReason)}${element('StackDriftStatus', drifted > 0 ? 'DRIFTED' : 'IN_SYNC')}${element('DriftedStackResourceCount', drifted)}`,
          );
          return;
        }
        case 'DescribeStackResourceDrifts': {
          const name = params.StackName ?? '';
          const stack = stacks.get(name);
          if (!stack) return fail('ValidationError', `Stack with id ${name} does not exist`);
          const wanted = members(params, 'StackResourceDriftStatusFilters');
          const { items, next } = page(
            stack.resources.filter((r) => wanted.length === 0 || wanted.includes(r.status)),
          );
          ok(
            `<StackResourceDrifts>${items
              .map(
                (r) =>
                  `<member>${element('StackId', stackId(name))}${element('LogicalResourceId', r.logicalId)}${element('PhysicalResourceId', r.physicalId)}${element('ResourceType', r.type)}${element('ExpectedProperties', r.expectedProperties)}${element('ActualProperties', r.actualProperties)}<PropertyDifferences>${(
                    r.differences ?? []
                  )
                    .map(
                      (d) =>
                        `<member>${element('PropertyPath', d.path)}${element('ExpectedValue', d.expected)}${element('ActualValue', d.actual)}${element('DifferenceType', d.kind)}</member>`,
                    )
                    .join(
                      '',
                    )}</PropertyDifferences>${element('StackResourceDriftStatus', r.status)}${element('Timestamp', new Date().toISOString())}</member>`,
              )
              .join('')}</StackResourceDrifts>${element('NextToken', next)}`,
          );
          return;
        }
        default:
          fail('InvalidAction', `the fake serves drift operations only, not ${action}`);
      }
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    stacks,
    requests,
    get maxConcurrentDetections() {
      return fake.maxConcurrentDetections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
