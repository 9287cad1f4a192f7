/**
 * drift's CloudFormation sequence with aws-sdk-client-mock: moto has no drift operations
 * (DetectStackDrift, DescribeStackDriftDetectionStatus, DescribeStackResourceDrifts), and the mock lets
 * each test script the statuses over time — the backoff while a detection is in progress, the bound on
 * polling, paging through resource drifts, failed detections, and `drift all` with bounded concurrency.
 * The mock replaces `send`, so these calls bypass quell's middleware; the full audited path runs against
 * a local fake in tests/e2e/drift-flow.test.ts, and the posture checks against moto there.
 */
import {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusCommand,
  type DescribeStackDriftDetectionStatusOutput,
  DescribeStackResourceDriftsCommand,
  DetectStackDriftCommand,
  ListStacksCommand,
} from '@aws-sdk/client-cloudformation';
import {
  DescribeFlowLogsCommand,
  DescribeNetworkAclsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ScopedAws } from '../../src/aws/client-factory.ts';
import { AwsCallFailedError } from '../../src/errors.ts';
import type { Plan, RunContext } from '../../src/runbooks/define-runbook.ts';
import { DRIFT_CHECKABLE_STATUSES, DRIFT_LIMITS, type DriftTarget, drift } from '../../src/runbooks/drift.ts';
import { STATIC_ACCOUNT } from '../support/static-aws-scope.ts';
import { virtualTime } from '../support/virtual-sleep.ts';

vi.mock('node:timers/promises', async (importOriginal) => {
  const { withVirtualSleep } = await import('../support/virtual-sleep.ts');
  return withVirtualSleep(await importOriginal<typeof import('node:timers/promises')>());
});

const cf = mockClient(CloudFormationClient);
const ec2 = mockClient(EC2Client);
const defaults = { ...DRIFT_LIMITS };

function context(progress: string[]): RunContext {
  const credentials = { accessKeyId: 'AKIAMOCKMOCKMOCKMOCK', secretAccessKey: 'mock' };
  const aws = {
    client: (Client: new (config: object) => unknown) => new Client({ region: 'eu-west-1', credentials }),
  } as unknown as ScopedAws;
  return {
    runId: 'rmockmockmock',
    runbook: 'drift',
    actor: 'U0TEST',
    account: STATIC_ACCOUNT,
    region: 'eu-west-1',
    aws,
    log: undefined as never,
    signal: AbortSignal.timeout(30_000),
    approvedAt: null,
    now: () => new Date(),
    progress: async (text: string) => {
      progress.push(text);
    },
  } as unknown as RunContext;
}

const planFor = (target: DriftTarget) =>
  ({ data: { target, allowedPorts: [443] } }) as unknown as Plan<{
    target: DriftTarget;
    allowedPorts: number[];
  }>;

const status = (
  DetectionStatus: DescribeStackDriftDetectionStatusOutput['DetectionStatus'],
  extra: Partial<DescribeStackDriftDetectionStatusOutput> = {},
): DescribeStackDriftDetectionStatusOutput => ({
  StackId: 'arn:stack',
  StackDriftDetectionId: 'd-1',
  DetectionStatus,
  Timestamp: new Date(),
  ...extra,
});

const sgDrift = {
  StackId: 'arn:stack',
  LogicalResourceId: 'WebSG',
  PhysicalResourceId: 'sg-0123',
  ResourceType: 'AWS::EC2::SecurityGroup',
  StackResourceDriftStatus: 'MODIFIED' as const,
  Timestamp: new Date(),
  PropertyDifferences: [
    {
      PropertyPath: '/SecurityGroupIngress/0/CidrIp',
      ExpectedValue: '10.0.0.0/8',
      ActualValue: '0.0.0.0/0',
      DifferenceType: 'NOT_EQUAL' as const,
    },
  ],
};

describe('drift against a scripted CloudFormation (aws-sdk-client-mock)', () => {
  beforeEach(() => {
    cf.reset();
    ec2.reset();
    Object.assign(DRIFT_LIMITS, defaults, { firstPollMs: 20, maxPollMs: 80 });
    ec2.on(DescribeVpcsCommand).resolves({ Vpcs: [] });
    ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    ec2.on(DescribeNetworkAclsCommand).resolves({ NetworkAcls: [] });
    ec2.on(DescribeFlowLogsCommand).resolves({ FlowLogs: [] });
  });
  afterEach(() => {
    Object.assign(DRIFT_LIMITS, defaults);
    virtualTime.stop();
  });
  afterAll(() => {
    cf.restore();
    ec2.restore();
  });

  it('polls with a doubling delay while the detection runs, then reads the drifted resources', async () => {
    // On a virtual clock: the pauses are the poller's own schedule, not the machine's timer jitter.
    virtualTime.start();
    const polledAt: number[] = [];
    cf.on(DetectStackDriftCommand).resolves({ StackDriftDetectionId: 'd-1' });
    cf.on(DescribeStackDriftDetectionStatusCommand).callsFake(() => {
      polledAt.push(virtualTime.elapsed());
      return polledAt.length <= 4
        ? status('DETECTION_IN_PROGRESS')
        : status('DETECTION_COMPLETE', { StackDriftStatus: 'DRIFTED', DriftedStackResourceCount: 1 });
    });
    cf.on(DescribeStackResourceDriftsCommand).resolves({ StackResourceDrifts: [sgDrift] });
    const progress: string[] = [];
    const outcome = await drift.execute(context(progress), planFor({ kind: 'stack', name: 'web' }));

    // A pause of 20, 40, 80, 80, 80 ms before each poll (doubling, capped at maxPollMs).
    expect(virtualTime.sleeps).toEqual([20, 40, 80, 80, 80]);
    expect(polledAt).toEqual([20, 60, 140, 220, 300]);
    expect(cf.commandCalls(DetectStackDriftCommand)[0]?.args[0].input).toEqual({ StackName: 'web' });
    expect(cf.commandCalls(DescribeStackResourceDriftsCommand)[0]?.args[0].input).toMatchObject({
      StackName: 'web',
      StackResourceDriftStatusFilters: ['MODIFIED', 'DELETED'],
    });
    expect(outcome.ok).toBe(true);
    expect(outcome.summary).toContain('Stack web has drifted: 1 resource differs from the template.');
    expect(Object.fromEntries(outcome.facts)).toMatchObject({
      Stacks: 'web: DRIFTED',
      'Drifted resources': '1',
    });
    expect(progress[0]).toContain('`/SecurityGroupIngress/0/CidrIp`: `10.0.0.0/8` → `0.0.0.0/0`');
  });

  it('stops polling at the bound and reports the detection as still running', async () => {
    DRIFT_LIMITS.pollTimeoutMs = 300;
    virtualTime.start();
    cf.on(DetectStackDriftCommand).resolves({ StackDriftDetectionId: 'd-slow' });
    cf.on(DescribeStackDriftDetectionStatusCommand).resolves(status('DETECTION_IN_PROGRESS'));
    const outcome = await drift.execute(context([]), planFor({ kind: 'stack', name: 'slow' }));
    const polls = cf.commandCalls(DescribeStackDriftDetectionStatusCommand).length;
    // Polls at 20, 60, 140, 220 and 300 ms; the next pause would end past the 300 ms bound.
    expect(polls).toBe(5);
    expect(virtualTime.sleeps).toEqual([20, 40, 80, 80, 80]);
    expect(cf.commandCalls(DescribeStackResourceDriftsCommand)).toHaveLength(0);
    expect(outcome.ok).toBe(false);
    expect(outcome.summary).toContain(
      'Stack slow could not be checked: detection still running after 0.3 s (id d-slow).',
    );
  });

  it('pages through every drifted resource', async () => {
    cf.on(DetectStackDriftCommand).resolves({ StackDriftDetectionId: 'd-1' });
    cf.on(DescribeStackDriftDetectionStatusCommand).resolves(
      status('DETECTION_COMPLETE', { StackDriftStatus: 'DRIFTED' }),
    );
    cf.on(DescribeStackResourceDriftsCommand)
      .resolvesOnce({ StackResourceDrifts: [sgDrift], NextToken: 'page-2' })
      .resolvesOnce({
        StackResourceDrifts: [
          {
            ...sgDrift,
            LogicalResourceId: 'Logs',
            ResourceType: 'AWS::S3::Bucket',
            StackResourceDriftStatus: 'DELETED',
            PropertyDifferences: [],
          },
        ],
      });
    const progress: string[] = [];
    const outcome = await drift.execute(context(progress), planFor({ kind: 'stack', name: 'web' }));
    const calls = cf.commandCalls(DescribeStackResourceDriftsCommand).map((c) => c.args[0].input.NextToken);
    expect(calls).toEqual([undefined, 'page-2']);
    expect(Object.fromEntries(outcome.facts)['Drifted resources']).toBe('2');
    expect(progress[0]).toContain('`Logs` AWS::S3::Bucket `sg-0123`: deleted outside CloudFormation');
  });

  it('reports a failed detection with its reason, keeping the results it has', async () => {
    cf.on(DetectStackDriftCommand).resolves({ StackDriftDetectionId: 'd-1' });
    cf.on(DescribeStackDriftDetectionStatusCommand).resolves(
      status('DETECTION_FAILED', {
        DetectionStatusReason: 'Failed to detect drift on resource Fn: AccessDenied',
      }),
    );
    cf.on(DescribeStackResourceDriftsCommand).resolves({ StackResourceDrifts: [] });
    const outcome = await drift.execute(context([]), planFor({ kind: 'stack', name: 'web' }));
    expect(outcome.ok).toBe(false);
    expect(outcome.summary).toContain(
      'Stack web could not be checked: Failed to detect drift on resource Fn: AccessDenied',
    );
  });

  it('`drift all` pages through ListStacks, checks each checkable stack at most N at a time, and reports failures per stack', async () => {
    DRIFT_LIMITS.concurrentStacks = 2;
    cf.on(ListStacksCommand)
      .resolvesOnce({
        StackSummaries: ['a', 'b', 'c'].map((StackName) => ({
          StackName,
          StackStatus: 'CREATE_COMPLETE',
          CreationTime: new Date(),
        })),
        NextToken: 't2',
      })
      .resolvesOnce({
        StackSummaries: ['d', 'e'].map((StackName) => ({
          StackName,
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
        })),
      });
    let inFlight = 0;
    let maxInFlight = 0;
    cf.on(DetectStackDriftCommand).callsFake((input: { StackName: string }) => {
      if (input.StackName === 'c')
        throw new AwsCallFailedError('cloudformation:DetectStackDrift', 'ValidationError', 'req-1');
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return { StackDriftDetectionId: `d-${input.StackName}` };
    });
    cf.on(DescribeStackDriftDetectionStatusCommand).callsFake((input: { StackDriftDetectionId: string }) =>
      status('DETECTION_COMPLETE', {
        StackDriftDetectionId: input.StackDriftDetectionId,
        StackDriftStatus: input.StackDriftDetectionId === 'd-b' ? 'DRIFTED' : 'IN_SYNC',
      }),
    );
    cf.on(DescribeStackResourceDriftsCommand).callsFake((input: { StackName: string }) => {
      inFlight--;
      return { StackResourceDrifts: input.StackName === 'b' ? [sgDrift] : [] };
    });
    const outcome = await drift.execute(context([]), planFor({ kind: 'all' }));
    const list = cf.commandCalls(ListStacksCommand).map((c) => c.args[0].input);
    expect(list.map((i) => i.NextToken)).toEqual([undefined, 't2']);
    expect(list[0]?.StackStatusFilter).toEqual(DRIFT_CHECKABLE_STATUSES);
    expect(
      cf
        .commandCalls(DetectStackDriftCommand)
        .map((c) => c.args[0].input.StackName)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(maxInFlight).toBe(2);
    expect(outcome.summary).toContain('1 of 5 stacks have drifted (1 resources); 1 could not be checked.');
    expect(Object.fromEntries(outcome.facts).Stacks).toBe('5 checked · 1 drifted · 1 not checked');
    expect(outcome.ok).toBe(false);
  });
});
