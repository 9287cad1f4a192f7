/**
 * CloudFormation's drift operations for the rehearsal world (moto has none of them): ListStacks,
 * DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts, over the
 * service's query protocol (form-encoded requests, XML answers), for the stacks a game day scripts.
 * quell's real CloudFormation client reaches it through AWS_ENDPOINT_URL_CLOUDFORMATION.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A resource of a rehearsal stack and how it drifted. */
export interface RehearsalResourceDrift {
  logicalId: string;
  physicalId: string;
  type: string;
  status: 'MODIFIED' | 'DELETED' | 'IN_SYNC';
  differences: { path: string; expected: string; actual: string; kind: 'ADD' | 'REMOVE' | 'NOT_EQUAL' }[];
}

/** The endpoint and its stacks by name. */
export interface RehearsalCloudFormation {
  url: string;
  stacks: Map<string, { accountId: string; resources: RehearsalResourceDrift[] }>;
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

/** Starts the rehearsal's CloudFormation drift endpoint on 127.0.0.1. */
export async function startRehearsalCloudFormation(): Promise<RehearsalCloudFormation> {
  const stacks: RehearsalCloudFormation['stacks'] = new Map();
  const detections = new Map<string, string>();
  const created = new Date().toISOString();
  const stackId = (name: string) =>
    `arn:aws:cloudformation:us-east-1:${stacks.get(name)?.accountId ?? '111111111111'}:stack/${name}/5e7a1c00-0000-4000-8000-000000000000`;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const action = params.Action ?? '';
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
      const name = params.StackName ?? '';
      switch (action) {
        case 'ListStacks':
          ok(
            `<StackSummaries>${[...stacks.keys()]
              .map(
                (stack) =>
                  `<member>${element('StackId', stackId(stack))}${element('StackName', stack)}${element('CreationTime', created)}${element('StackStatus', 'UPDATE_COMPLETE')}</member>`,
              )
              .join('')}</StackSummaries>`,
          );
          return;
        case 'DetectStackDrift': {
          if (!stacks.has(name)) return fail('ValidationError', `Stack with id ${name} does not exist`);
          const id = randomUUID();
          detections.set(id, name);
          ok(element('StackDriftDetectionId', id));
          return;
        }
        case 'DescribeStackDriftDetectionStatus': {
          const id = params.StackDriftDetectionId ?? '';
          const stackName = detections.get(id);
          const stack = stackName ? stacks.get(stackName) : undefined;
          if (!stackName || !stack) return fail('ValidationError', `No drift detection ${id}`);
          const drifted = stack.resources.filter((r) => r.status !== 'IN_SYNC').length;
          ok(
            `${element('StackId', stackId(stackName))}${element('StackDriftDetectionId', id)}${element('Timestamp', new Date().toISOString())}${element('DetectionStatus', 'DETECTION_COMPLETE')}${element('StackDriftStatus', drifted > 0 ? 'DRIFTED' : 'IN_SYNC')}${element('DriftedStackResourceCount', drifted)}`,
          );
          return;
        }
        case 'DescribeStackResourceDrifts': {
          const stack = stacks.get(name);
          if (!stack) return fail('ValidationError', `Stack with id ${name} does not exist`);
          const wanted = Object.keys(params)
            .filter((k) => k.startsWith('StackResourceDriftStatusFilters.member.'))
            .map((k) => params[k]);
          ok(
            `<StackResourceDrifts>${stack.resources
              .filter((r) => wanted.length === 0 || wanted.includes(r.status))
              .map(
                (r) =>
                  `<member>${element('StackId', stackId(name))}${element('LogicalResourceId', r.logicalId)}${element('PhysicalResourceId', r.physicalId)}${element('ResourceType', r.type)}<PropertyDifferences>${r.differences
                    .map(
                      (d) =>
                        `<member>${element('PropertyPath', d.path)}${element('ExpectedValue', d.expected)}${element('ActualValue', d.actual)}${element('DifferenceType', d.kind)}</member>`,
                    )
                    .join(
                      '',
                    )}</PropertyDifferences>${element('StackResourceDriftStatus', r.status)}${element('Timestamp', new Date().toISOString())}</member>`,
              )
              .join('')}</StackResourceDrifts>`,
          );
          return;
        }
        default:
          fail('InvalidAction', `the rehearsal serves CloudFormation drift operations only, not ${action}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stacks,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
