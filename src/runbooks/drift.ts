/**
 * drift: CloudFormation drift (`DetectStackDrift` → poll `DescribeStackDriftDetectionStatus` with backoff →
 * `DescribeStackResourceDrifts`) for one stack or every active stack in the region, shown per resource as
 * expected → actual; and a network posture check against a baseline: security groups open to 0.0.0.0/0 or
 * ::/0 beyond the allowed ports, default security groups with rules, unrestricted egress, subnets whose
 * network ACL allows everything, VPCs without flow logs. `drift vpc-…` runs the posture check alone.
 * Read-only: it changes no resource (a drift detection only records what CloudFormation found).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  CloudFormationClient,
  DescribeStackDriftDetectionStatusOutput,
  StackResourceDrift,
  StackStatus,
} from '@aws-sdk/client-cloudformation';
import type {
  EC2Client,
  FlowLog,
  IpPermission,
  NetworkAcl,
  NetworkAclEntry,
  SecurityGroup,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { AwsCallFailedError, AwsResourceNotFoundError, QuellError } from '../errors.ts';
import type { Json } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineConfig,
  defineRunbook,
  type Outcome,
  type OutcomeFile,
  type Plan,
  RegionOptionSchema,
  type RunContext,
  readConfig,
} from './define-runbook.ts';

/** The EC2 SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadEc2 = () => import('@aws-sdk/client-ec2');

/** The CloudFormation SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadCloudFormation = () => import('@aws-sdk/client-cloudformation');

const USAGE = 'drift <stack-name>|all|vpc-0abc… [account=prod] [region=eu-west-1]';

/** Ports `drift` accepts open to the internet when an account sets no `allowedPublicPorts`. */
export const DEFAULT_ALLOWED_PUBLIC_PORTS: readonly number[] = [443];

/**
 * drift's setting, a field of each account (where it has always been): the posture baseline, the ports a
 * security group may open to the internet (0.0.0.0/0, ::/0), TCP or UDP. Anything else open to the
 * internet is reported. Default: 443 only.
 */
export const DriftConfig = defineConfig({
  key: 'allowedPublicPorts',
  schema: z
    .array(z.number().int().min(0, 'must be a port 0–65535').max(65535, 'must be a port 0–65535'))
    .max(100),
});

/** VPC ids: `vpc-` and 8 (older) or 17 lower-case hex digits. */
export const VPC_ID = /^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
/** CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128 characters. */
export const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

/** What to check: one stack, every active stack, or one VPC's posture only. */
export type DriftTarget = { kind: 'stack'; name: string } | { kind: 'all' } | { kind: 'vpc'; vpcId: string };

const DriftTargetSchema = z.string().transform((text, ctx): DriftTarget => {
  if (text === 'all') return { kind: 'all' };
  if (/^vpc-/i.test(text)) {
    if (VPC_ID.test(text)) return { kind: 'vpc', vpcId: text };
    ctx.addIssue({
      code: 'custom',
      message: 'a VPC id is vpc- and 8 or 17 lower-case hex digits, like vpc-0abc1234def567890',
    });
    return z.NEVER;
  }
  if (STACK_NAME.test(text)) return { kind: 'stack', name: text };
  ctx.addIssue({
    code: 'custom',
    message:
      'a stack name starts with a letter and has only letters, digits and hyphens (at most 128); or give `all`, or a VPC id',
  });
  return z.NEVER;
});

const DriftInputSchema = z
  .object({
    positional: z
      .array(z.string())
      .refine(
        (a) => a.length === 1,
        'give one stack name, `all` (every stack), or a VPC id (network posture only)',
      )
      .transform((a) => a[0] ?? '')
      .pipe(DriftTargetSchema),
    options: z.object({ account: AccountOptionSchema, region: RegionOptionSchema }).strict(),
  })
  .transform(({ positional: target, options }) => ({
    target,
    account: options.account,
    region: options.region,
    reason: undefined,
  }));

type DriftInput = z.infer<typeof DriftInputSchema>;

type DriftData = { target: DriftTarget; allowedPorts: number[] };

/** Stack statuses drift detection accepts (a stack being created, updated or deleted cannot be checked). */
export const DRIFT_CHECKABLE_STATUSES: StackStatus[] = [
  'CREATE_COMPLETE',
  'UPDATE_COMPLETE',
  'UPDATE_ROLLBACK_COMPLETE',
  'UPDATE_ROLLBACK_FAILED',
  'IMPORT_COMPLETE',
  'IMPORT_ROLLBACK_COMPLETE',
];

/**
 * Actions AWS checks while a stack's drift detection runs, without a call of their own: the detection
 * checks each resource as the caller (DetectStackResourceDrift) and reads the registry configuration of
 * third-party resource types (BatchDescribeTypeConfigurations). Without them the detection fails.
 */
export const DETECTION_IMPLIED_ACTIONS = [
  'cloudformation:DetectStackResourceDrift',
  'cloudformation:BatchDescribeTypeConfigurations',
];

/** Tunables: detections in parallel for `drift all`, the polling backoff and its bound, the stack cap. */
export const DRIFT_LIMITS = {
  concurrentStacks: 4,
  maxStacks: 200,
  firstPollMs: 500,
  maxPollMs: 5_000,
  pollTimeoutMs: 120_000,
  /** `drift all` starts no new detection after this long, so the run reports before its time limit. */
  stacksBudgetMs: 200_000,
};

// ---------------------------------------------------------------------------------------------------
// CloudFormation drift

/** One property that differs between the template and the resource. */
export interface PropertyDiff {
  path: string;
  expected: string;
  actual: string;
  kind: string;
}

/** One drifted resource. */
export interface ResourceDrift {
  logicalId: string;
  physicalId: string;
  type: string;
  status: string;
  differences: PropertyDiff[];
  expectedProperties: string;
  actualProperties: string;
}

/** One stack's drift check. */
export interface StackDrift {
  stack: string;
  /** DRIFTED, IN_SYNC, NOT_CHECKED, UNKNOWN; or FAILED / TIMED_OUT / NOT_STARTED when quell could not tell. */
  status: string;
  reason: string;
  resources: ResourceDrift[];
}

/** Runs one stack's drift detection to the end and reads the drifted resources. */
export async function detectStackDrift(
  cf: CloudFormationClient,
  stack: string,
  signal: AbortSignal,
): Promise<StackDrift> {
  const { DetectStackDriftCommand } = await loadCloudFormation();
  let detectionId: string | undefined;
  try {
    detectionId = (await cf.send(new DetectStackDriftCommand({ StackName: stack }), { abortSignal: signal }))
      .StackDriftDetectionId;
  } catch (error) {
    throw explainStackError(error, stack);
  }
  if (!detectionId)
    return { stack, status: 'FAILED', reason: 'CloudFormation returned no detection id', resources: [] };
  const status = await pollDetection(cf, detectionId, signal);
  if (!status) {
    return {
      stack,
      status: 'TIMED_OUT',
      reason: `detection still running after ${DRIFT_LIMITS.pollTimeoutMs / 1000} s (id ${detectionId})`,
      resources: [],
    };
  }
  // DETECTION_FAILED still has results for the resources CloudFormation could check.
  const resources = await listResourceDrifts(cf, stack, signal);
  const failed = status.DetectionStatus === 'DETECTION_FAILED';
  return {
    stack,
    status: failed && resources.length === 0 ? 'FAILED' : (status.StackDriftStatus ?? 'UNKNOWN'),
    reason: failed ? (status.DetectionStatusReason ?? 'drift detection failed') : '',
    resources,
  };
}

/** Polls with a doubling delay (bounded), until the detection leaves DETECTION_IN_PROGRESS or time runs out. */
async function pollDetection(
  cf: CloudFormationClient,
  id: string,
  signal: AbortSignal,
): Promise<DescribeStackDriftDetectionStatusOutput | undefined> {
  const { DescribeStackDriftDetectionStatusCommand } = await loadCloudFormation();
  const deadline = Date.now() + DRIFT_LIMITS.pollTimeoutMs;
  let delay = DRIFT_LIMITS.firstPollMs;
  for (;;) {
    await sleep(delay, undefined, { signal });
    const status = await cf.send(
      new DescribeStackDriftDetectionStatusCommand({ StackDriftDetectionId: id }),
      {
        abortSignal: signal,
      },
    );
    if (status.DetectionStatus !== 'DETECTION_IN_PROGRESS') return status;
    if (Date.now() + delay > deadline) return undefined;
    delay = Math.min(DRIFT_LIMITS.maxPollMs, delay * 2);
  }
}

async function listResourceDrifts(
  cf: CloudFormationClient,
  stack: string,
  signal: AbortSignal,
): Promise<ResourceDrift[]> {
  const { DescribeStackResourceDriftsCommand } = await loadCloudFormation();
  const drifts: ResourceDrift[] = [];
  let token: string | undefined;
  do {
    const page = await cf.send(
      new DescribeStackResourceDriftsCommand({
        StackName: stack,
        StackResourceDriftStatusFilters: ['MODIFIED', 'DELETED'],
        MaxResults: 100,
        ...(token ? { NextToken: token } : {}),
      }),
      { abortSignal: signal },
    );
    drifts.push(...(page.StackResourceDrifts ?? []).map(toResourceDrift));
    token = page.NextToken || undefined;
  } while (token);
  return drifts;
}

function toResourceDrift(d: StackResourceDrift): ResourceDrift {
  return {
    logicalId: d.LogicalResourceId ?? '',
    physicalId: d.PhysicalResourceId ?? '',
    type: d.ResourceType ?? '',
    status: d.StackResourceDriftStatus ?? 'UNKNOWN',
    differences: (d.PropertyDifferences ?? []).map((p) => ({
      path: p.PropertyPath ?? '',
      expected: p.ExpectedValue ?? '',
      actual: p.ActualValue ?? '',
      kind: p.DifferenceType ?? 'NOT_EQUAL',
    })),
    expectedProperties: d.ExpectedProperties ?? '',
    actualProperties: d.ActualProperties ?? '',
  };
}

/** The names of every stack drift detection can check, oldest API first (ListStacks pages). */
export async function listCheckableStacks(cf: CloudFormationClient, signal: AbortSignal): Promise<string[]> {
  const { ListStacksCommand } = await loadCloudFormation();
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await cf.send(
      new ListStacksCommand({
        StackStatusFilter: DRIFT_CHECKABLE_STATUSES,
        ...(token ? { NextToken: token } : {}),
      }),
      { abortSignal: signal },
    );
    for (const s of page.StackSummaries ?? []) if (s.StackName) names.push(s.StackName);
    token = page.NextToken || undefined;
  } while (token);
  return [...new Set(names)].sort();
}

/** Every checkable stack, `DRIFT_LIMITS.concurrentStacks` at a time; one stack's failure is reported, not fatal. */
async function detectAllStacks(
  cf: CloudFormationClient,
  signal: AbortSignal,
): Promise<{ stacks: StackDrift[]; skipped: number }> {
  const names = await listCheckableStacks(cf, signal);
  const chosen = names.slice(0, DRIFT_LIMITS.maxStacks);
  const startedBy = Date.now() + DRIFT_LIMITS.stacksBudgetMs;
  const stacks = await mapWithConcurrency(chosen, DRIFT_LIMITS.concurrentStacks, async (stack) => {
    if (Date.now() > startedBy || signal.aborted) {
      return { stack, status: 'NOT_STARTED', reason: 'the run ran out of time first', resources: [] };
    }
    try {
      return await detectStackDrift(cf, stack, signal);
    } catch (error) {
      if (!(error instanceof QuellError)) throw error;
      return { stack, status: 'FAILED', reason: error.message, resources: [] };
    }
  });
  return { stacks, skipped: names.length - chosen.length };
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the items' order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

// CloudFormation answers a missing stack with a ValidationError, not a NotFound code.
function explainStackError(error: unknown, stack: string): unknown {
  const message = (error as { cause?: { message?: string } })?.cause?.message ?? '';
  if (
    error instanceof AwsCallFailedError &&
    error.awsCode === 'ValidationError' &&
    /does not exist/i.test(message)
  ) {
    return new AwsResourceNotFoundError(
      `No stack \`${stack}\` here. Check the name and the region (\`region=\`); \`drift all\` checks every stack.`,
      { cause: error },
    );
  }
  if (error instanceof AwsCallFailedError && error.awsCode === 'ValidationError') {
    return new AwsCallFailedError(
      `cloudformation:DetectStackDrift on ${stack} (${message.slice(0, 200)})`,
      error.awsCode,
      error.requestId,
      { cause: error },
    );
  }
  return error;
}

// ---------------------------------------------------------------------------------------------------
// Network posture

/** The kinds of posture finding, most serious first. */
export const FINDING_KINDS = [
  'open-ingress',
  'acl-allows-all',
  'default-sg-rules',
  'no-flow-logs',
  'open-egress',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** One posture finding: the resource and the rule. */
export interface PostureFinding {
  kind: FindingKind;
  vpcId: string;
  resource: string;
  rule: string;
}

const ANYWHERE_V4 = '0.0.0.0/0';
const ANYWHERE_V6 = '::/0';

function protocolName(protocol: string | undefined): string {
  switch (protocol) {
    case undefined:
    case '-1':
    case 'all':
      return 'all';
    case '6':
      return 'tcp';
    case '17':
      return 'udp';
    case '1':
      return 'icmp';
    case '58':
      return 'icmpv6';
    default:
      return protocol.toLowerCase();
  }
}

function openSources(p: IpPermission): string[] {
  return [
    ...(p.IpRanges ?? []).flatMap((r) => (r.CidrIp === ANYWHERE_V4 ? [ANYWHERE_V4] : [])),
    ...(p.Ipv6Ranges ?? []).flatMap((r) => (r.CidrIpv6 === ANYWHERE_V6 ? [ANYWHERE_V6] : [])),
  ];
}

function describePorts(p: IpPermission): string {
  const proto = protocolName(p.IpProtocol);
  if (proto === 'all') return 'all traffic';
  if (proto !== 'tcp' && proto !== 'udp') return proto;
  const from = p.FromPort ?? 0;
  const to = p.ToPort ?? 65535;
  if (from === -1 || (from === 0 && to === 65535)) return `${proto} all ports`;
  return from === to ? `${proto} ${from}` : `${proto} ${from}-${to}`;
}

function portsAllowed(p: IpPermission, allowed: readonly number[]): boolean {
  const proto = protocolName(p.IpProtocol);
  if (proto !== 'tcp' && proto !== 'udp') return false;
  const from = p.FromPort ?? 0;
  const to = p.ToPort ?? 65535;
  if (from < 0 || to < from || to - from >= allowed.length) return false;
  for (let port = from; port <= to; port++) if (!allowed.includes(port)) return false;
  return true;
}

function describeSources(p: IpPermission): string {
  const sources = [
    ...(p.IpRanges ?? []).map((r) => r.CidrIp ?? '?'),
    ...(p.Ipv6Ranges ?? []).map((r) => r.CidrIpv6 ?? '?'),
    ...(p.UserIdGroupPairs ?? []).map((g) => g.GroupId ?? '?'),
    ...(p.PrefixListIds ?? []).map((l) => l.PrefixListId ?? '?'),
  ];
  return sources.length > 0 ? sources.join(', ') : 'nowhere';
}

function groupLabel(g: SecurityGroup): string {
  return g.GroupName ? `${g.GroupId ?? '?'} (${g.GroupName})` : (g.GroupId ?? '?');
}

/** Security groups: open inbound beyond the allowed ports, default groups with rules, open egress. */
export function findSecurityGroupIssues(
  groups: SecurityGroup[],
  allowed: readonly number[],
): PostureFinding[] {
  const findings: PostureFinding[] = [];
  for (const g of groups) {
    const vpcId = g.VpcId ?? '';
    const resource = groupLabel(g);
    for (const p of g.IpPermissions ?? []) {
      const open = openSources(p);
      if (open.length === 0 || portsAllowed(p, allowed)) continue;
      findings.push({
        kind: 'open-ingress',
        vpcId,
        resource,
        rule: `inbound ${describePorts(p)} from ${open.join(' and ')}`,
      });
    }
    const isDefault = g.GroupName === 'default';
    const inbound = g.IpPermissions ?? [];
    const outbound = g.IpPermissionsEgress ?? [];
    if (isDefault && inbound.length + outbound.length > 0) {
      const rules = [
        ...inbound.map((p) => `inbound ${describePorts(p)} from ${describeSources(p)}`),
        ...outbound.map((p) => `outbound ${describePorts(p)} to ${describeSources(p)}`),
      ];
      findings.push({
        kind: 'default-sg-rules',
        vpcId,
        resource,
        rule: `default security group has ${rules.length} rule${rules.length > 1 ? 's' : ''} (should have none): ${rules.join('; ')}`,
      });
      continue; // its egress is already listed above
    }
    for (const p of outbound) {
      const open = openSources(p);
      if (open.length === 0 || protocolName(p.IpProtocol) !== 'all') continue;
      findings.push({
        kind: 'open-egress',
        vpcId,
        resource,
        rule: `outbound all traffic to ${open.join(' and ')}`,
      });
    }
  }
  return findings;
}

/**
 * The rule that lets all traffic in (or out) for one address family, if the ACL allows everything: rules
 * are evaluated lowest number first, so an allow-all reached before any deny allows everything.
 */
export function allowAllRule(
  entries: NetworkAclEntry[],
  egress: boolean,
  family: 4 | 6,
): NetworkAclEntry | undefined {
  const ordered = entries
    .filter(
      (e) => Boolean(e.Egress) === egress && (family === 4 ? e.CidrBlock : e.Ipv6CidrBlock) !== undefined,
    )
    .sort((a, b) => (a.RuleNumber ?? 0) - (b.RuleNumber ?? 0));
  for (const e of ordered) {
    if (e.RuleNumber === 32767) return undefined; // the implicit deny-all at the end
    if (e.RuleAction === 'deny') return undefined;
    const cidr = family === 4 ? e.CidrBlock : e.Ipv6CidrBlock;
    if (protocolName(e.Protocol) === 'all' && cidr === (family === 4 ? ANYWHERE_V4 : ANYWHERE_V6)) return e;
  }
  return undefined;
}

/** Subnets whose network ACL lets all traffic in from anywhere. */
export function findAclIssues(acls: NetworkAcl[]): PostureFinding[] {
  const findings: PostureFinding[] = [];
  for (const acl of acls) {
    const entries = acl.Entries ?? [];
    const inbound = [allowAllRule(entries, false, 4), allowAllRule(entries, false, 6)].filter(
      (e) => e !== undefined,
    );
    if (inbound.length === 0) continue;
    const outbound = [allowAllRule(entries, true, 4), allowAllRule(entries, true, 6)].filter(
      (e) => e !== undefined,
    );
    const describe = (list: NetworkAclEntry[]) =>
      list.map((e) => `${e.CidrBlock ?? e.Ipv6CidrBlock} (rule ${e.RuleNumber})`).join(' and ');
    const rule = `network ACL ${acl.NetworkAclId ?? '?'} allows all inbound traffic from ${describe(inbound)}${
      outbound.length > 0 ? `, and all outbound to ${describe(outbound)}` : ''
    }`;
    for (const association of acl.Associations ?? []) {
      if (!association.SubnetId) continue;
      findings.push({ kind: 'acl-allows-all', vpcId: acl.VpcId ?? '', resource: association.SubnetId, rule });
    }
  }
  return findings;
}

/** VPCs with no active VPC-level flow log, or whose flow logs all fail to deliver. */
export function findFlowLogGaps(vpcIds: string[], flowLogs: FlowLog[]): PostureFinding[] {
  const findings: PostureFinding[] = [];
  for (const vpcId of vpcIds) {
    const active = flowLogs.filter(
      (f) => f.ResourceId === vpcId && (f.FlowLogStatus ?? 'ACTIVE') === 'ACTIVE',
    );
    const failing = active.filter((f) => f.DeliverLogsStatus === 'FAILED');
    if (active.length === 0) {
      findings.push({
        kind: 'no-flow-logs',
        vpcId,
        resource: vpcId,
        rule: 'no active flow log: traffic in this VPC is not recorded',
      });
    } else if (failing.length === active.length) {
      findings.push({
        kind: 'no-flow-logs',
        vpcId,
        resource: vpcId,
        rule: `flow log ${failing.map((f) => `${f.FlowLogId ?? '?'} (${f.DeliverLogsErrorMessage ?? 'delivery failed'})`).join(', ')} does not deliver: traffic is not recorded`,
      });
    }
  }
  return findings;
}

/** The posture of one VPC, or of every VPC in the client's region. */
export async function checkNetworkPosture(
  ec2: EC2Client,
  vpcId: string | undefined,
  allowed: readonly number[],
  signal: AbortSignal,
): Promise<{ vpcIds: string[]; findings: PostureFinding[] }> {
  const {
    DescribeVpcsCommand,
    DescribeSecurityGroupsCommand,
    DescribeNetworkAclsCommand,
    DescribeFlowLogsCommand,
  } = await loadEc2();
  const filters = vpcId ? [{ Name: 'vpc-id', Values: [vpcId] }] : undefined;
  const opts = { abortSignal: signal };
  const [vpcs, groups, acls] = await Promise.all([
    paginate(
      (NextToken) => ec2.send(new DescribeVpcsCommand({ Filters: filters, NextToken }), opts),
      (p) => p.Vpcs,
    ),
    paginate(
      (NextToken) => ec2.send(new DescribeSecurityGroupsCommand({ Filters: filters, NextToken }), opts),
      (p) => p.SecurityGroups,
    ),
    paginate(
      (NextToken) => ec2.send(new DescribeNetworkAclsCommand({ Filters: filters, NextToken }), opts),
      (p) => p.NetworkAcls,
    ),
  ]);
  const vpcIds = vpcs.flatMap((v) => (v.VpcId ? [v.VpcId] : [])).sort();
  if (vpcId && vpcIds.length === 0) {
    throw new AwsResourceNotFoundError(
      `No VPC \`${vpcId}\` here. Check the id and the region (\`region=\`).`,
    );
  }
  const flowLogs =
    vpcIds.length === 0
      ? []
      : await paginate(
          (NextToken) =>
            ec2.send(
              new DescribeFlowLogsCommand({
                ...(vpcId ? { Filter: [{ Name: 'resource-id', Values: [vpcId] }] } : {}),
                NextToken,
              }),
              opts,
            ),
          (p) => p.FlowLogs,
        );
  const inScope = (f: PostureFinding) => vpcIds.includes(f.vpcId);
  const findings = [
    ...findSecurityGroupIssues(groups, allowed).filter(inScope),
    ...findAclIssues(acls).filter(inScope),
    ...findFlowLogGaps(vpcIds, flowLogs),
  ].sort(
    (a, b) =>
      FINDING_KINDS.indexOf(a.kind) - FINDING_KINDS.indexOf(b.kind) ||
      a.vpcId.localeCompare(b.vpcId) ||
      a.resource.localeCompare(b.resource),
  );
  return { vpcIds, findings };
}

async function paginate<P extends { NextToken?: string | undefined }, T>(
  fetch: (token: string | undefined) => Promise<P>,
  items: (page: P) => T[] | undefined,
): Promise<T[]> {
  const all: T[] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    all.push(...(items(page) ?? []));
    token = page.NextToken || undefined;
  } while (token);
  return all;
}

// ---------------------------------------------------------------------------------------------------
// The report

/** Untrusted text as an inline code span (no backtick can close it; Slack links nothing inside). */
function code(text: string, max = 60): string {
  const flat = text.replace(/[`\r\n\t]/g, ' ');
  return `\`${flat.length > max ? `${flat.slice(0, max - 1)}…` : flat}\``;
}

/** Each thread message stays under Slack's text limit (quell caps replies at 2,900 characters). */
const MESSAGE_BUDGET = 2_700;
const MAX_RESOURCES_PER_STACK = 5;
const MAX_DIFFS_PER_RESOURCE = 3;
const MAX_FINDINGS = 25;
const MAX_VALUE = 50;

/** Lines for one thread message, kept under the budget; what does not fit is counted, not dropped silently. */
class MessageLines {
  readonly lines: string[] = [];
  #length = 0;
  left = 0;
  push(line: string): void {
    if (this.left > 0 || this.#length + line.length + 1 > MESSAGE_BUDGET - 80) {
      this.left++;
      return;
    }
    this.lines.push(line);
    this.#length += line.length + 1;
  }
}

function describeDifference(d: PropertyDiff, max: number): string {
  if (d.kind === 'ADD') return `${code(d.path, max)}: added ${code(d.actual, max)}`;
  if (d.kind === 'REMOVE') return `${code(d.path, max)}: removed (was ${code(d.expected, max)})`;
  return `${code(d.path, max)}: ${code(d.expected, max)} → ${code(d.actual, max)}`;
}

/** What happened to a stack, as the rest of a sentence that starts with its name. */
function describeStackStatus(s: StackDrift): string {
  const n = s.resources.length;
  const reason = s.reason ? `: ${s.reason}` : '';
  switch (s.status) {
    case 'DRIFTED':
      return `has drifted: ${n} resource${n === 1 ? ' differs' : 's differ'} from the template`;
    case 'IN_SYNC':
      return 'is in sync with its template';
    case 'NOT_CHECKED':
      return 'was not checked: no resource in it supports drift detection';
    case 'FAILED':
    case 'TIMED_OUT':
      return `could not be checked${reason}`;
    case 'NOT_STARTED':
      return `was not checked${reason}`;
    default:
      return `has drift status ${s.status}${reason}`;
  }
}

/**
 * The thread messages — one for the stacks (when any were checked), one for the network posture —
 * compact: stacks in sync on one line, a few resources per drifted stack and a few differences per
 * resource, values shortened; and, when anything had to be left out, the full report for a file. Every
 * AWS value is shown as code.
 */
export function renderDriftReport(
  stacks: StackDrift[] | null,
  posture: { vpcIds: string[]; findings: PostureFinding[] },
  region: string,
): { messages: string[]; full: string; shortened: boolean } {
  const messages: string[] = [];
  const full: string[] = [];
  let shortened = false;
  if (stacks) {
    const m = new MessageLines();
    const inSync = stacks.filter((s) => s.status === 'IN_SYNC');
    if (inSync.length > 0) {
      const names = inSync.slice(0, 20).map((s) => code(s.stack, 40));
      m.push(
        `*In sync with their templates* (${inSync.length}): ${names.join(', ')}${inSync.length > 20 ? ', …' : ''}`,
      );
      if (inSync.length > 20) shortened = true;
    }
    for (const s of stacks) {
      full.push(`Stack ${s.stack} ${describeStackStatus(s)}`);
      if (s.status !== 'IN_SYNC') m.push(`*Stack ${code(s.stack)}* ${describeStackStatus(s)}`);
      s.resources.forEach((r, i) => {
        const shown = i < MAX_RESOURCES_PER_STACK;
        const what = `${code(r.logicalId)} ${r.type} ${code(r.physicalId)}`;
        if (r.status === 'DELETED') {
          if (shown) m.push(`• ${what}: deleted outside CloudFormation`);
          full.push(`  ${r.logicalId} (${r.type} ${r.physicalId}): DELETED outside CloudFormation`);
          return;
        }
        if (shown) {
          const n = r.differences.length;
          m.push(`• ${what}: ${n} propert${n === 1 ? 'y differs' : 'ies differ'}`);
          for (const d of r.differences.slice(0, MAX_DIFFS_PER_RESOURCE))
            m.push(`    ${describeDifference(d, MAX_VALUE)}`);
        }
        if (
          r.differences.length > MAX_DIFFS_PER_RESOURCE ||
          r.differences.some((d) => [d.path, d.expected, d.actual].some((v) => v.length >= MAX_VALUE))
        ) {
          shortened = true;
        }
        full.push(`  ${r.logicalId} (${r.type} ${r.physicalId}): ${r.status}`);
        for (const d of r.differences) {
          full.push(
            `    ${d.kind} ${d.path}`,
            `      expected: ${d.expected}`,
            `      actual:   ${d.actual}`,
          );
        }
        if (r.expectedProperties || r.actualProperties) {
          full.push(
            `    expected properties: ${r.expectedProperties}`,
            `    actual properties:   ${r.actualProperties}`,
          );
        }
      });
      if (s.resources.length > MAX_RESOURCES_PER_STACK) {
        m.push(`• … and ${s.resources.length - MAX_RESOURCES_PER_STACK} more resources`);
        shortened = true;
      }
    }
    if (m.left > 0) {
      m.lines.push(`… ${m.left} more lines`);
      shortened = true;
    }
    messages.push(m.lines.join('\n'));
  }
  const scope =
    posture.vpcIds.length === 1 ? posture.vpcIds[0] : `${posture.vpcIds.length} VPCs in ${region}`;
  const n = posture.findings.length;
  const m = new MessageLines();
  m.push(`*Network posture* (${scope}): ${n === 0 ? 'no findings' : `${n} finding${n === 1 ? '' : 's'}`}`);
  full.push('', `Network posture (${scope}): ${n} findings`);
  posture.findings.forEach((f, i) => {
    if (i < MAX_FINDINGS) m.push(`• ${code(f.resource)} in ${code(f.vpcId)}: ${code(f.rule, 160)}`);
    if (f.rule.length >= 160) shortened = true;
    full.push(`  [${f.kind}] ${f.resource} in ${f.vpcId}: ${f.rule}`);
  });
  if (n > MAX_FINDINGS) {
    m.push(`• … and ${n - MAX_FINDINGS} more findings`);
    shortened = true;
  }
  if (m.left > 0) {
    m.lines.push(`… ${m.left} more lines`);
    shortened = true;
  }
  if (shortened) m.lines.push('_Shortened; the full report is attached._');
  messages.push(m.lines.join('\n'));
  return { messages, full: `${full.join('\n')}\n`, shortened };
}

// ---------------------------------------------------------------------------------------------------
// The runbook

function describeTarget(target: DriftTarget, region: string): string {
  if (target.kind === 'vpc') return `the network posture of ${target.vpcId}`;
  const stacks = target.kind === 'all' ? `every active stack in ${region}` : `stack ${target.name}`;
  return `drift of ${stacks}, and the network posture of every VPC in ${region}`;
}

async function planDrift(ctx: RunContext, input: DriftInput): Promise<Plan<DriftData>> {
  const { target } = input;
  const allowedPorts = [...(readConfig(ctx, DriftConfig) ?? DEFAULT_ALLOWED_PUBLIC_PORTS)].sort(
    (a, b) => a - b,
  );
  const calls: Plan['calls'] = [];
  if (target.kind === 'all')
    calls.push({ action: 'cloudformation:ListStacks', params: { StackStatusFilter: 'active' } });
  if (target.kind !== 'vpc') {
    const StackName = target.kind === 'stack' ? target.name : '<each stack>';
    calls.push(
      { action: 'cloudformation:DetectStackDrift', params: { StackName } },
      {
        action: 'cloudformation:DescribeStackDriftDetectionStatus',
        params: { StackDriftDetectionId: '<from above>' },
      },
      {
        action: 'cloudformation:DescribeStackResourceDrifts',
        params: { StackName, StackResourceDriftStatusFilters: 'MODIFIED,DELETED' },
      },
    );
  }
  const filter =
    target.kind === 'vpc' ? { Filters: `vpc-id=${target.vpcId}` } : ({} as Record<string, string>);
  for (const action of ['DescribeVpcs', 'DescribeSecurityGroups', 'DescribeNetworkAcls', 'DescribeFlowLogs'])
    calls.push({ action: `ec2:${action}`, params: filter });
  const notes = ['Read-only: nothing in the account is changed.'];
  if (target.kind !== 'vpc') {
    notes.push(
      'CloudFormation reads each resource with the read role to compare it with the template: the role needs read access to the resource types in the stack, or the detection fails for them.',
    );
  }
  return {
    summary: `Check ${describeTarget(target, ctx.region)}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      [
        'Target',
        target.kind === 'stack' ? target.name : target.kind === 'vpc' ? target.vpcId : 'every active stack',
      ],
      ['Allowed public ports', allowedPorts.length > 0 ? allowedPorts.join(', ') : 'none'],
    ],
    calls,
    notes,
    material: { accountId: ctx.account.id, region: ctx.region, target, allowedPorts },
    data: { target, allowedPorts },
  };
}

async function executeDrift(ctx: RunContext, plan: Plan<DriftData>): Promise<Outcome> {
  const { target, allowedPorts } = plan.data;
  // A VPC-only check never loads the CloudFormation SDK.
  const [cloudFormation, { EC2Client }] = await Promise.all([
    target.kind === 'vpc' ? undefined : loadCloudFormation(),
    loadEc2(),
  ]);
  const [stackResult, posture] = await Promise.all([
    target.kind === 'vpc' || !cloudFormation
      ? Promise.resolve(null)
      : target.kind === 'all'
        ? detectAllStacks(ctx.aws.client(cloudFormation.CloudFormationClient), ctx.signal)
        : detectStackDrift(ctx.aws.client(cloudFormation.CloudFormationClient), target.name, ctx.signal).then(
            (s) => ({
              stacks: [s],
              skipped: 0,
            }),
          ),
    checkNetworkPosture(
      ctx.aws.client(EC2Client),
      target.kind === 'vpc' ? target.vpcId : undefined,
      allowedPorts,
      ctx.signal,
    ),
  ]);
  const stacks = stackResult?.stacks ?? null;
  const drifted = (stacks ?? []).filter((s) => s.status === 'DRIFTED');
  const problems = (stacks ?? []).filter((s) => ['FAILED', 'TIMED_OUT', 'NOT_STARTED'].includes(s.status));
  const driftedResources = drifted.reduce((n, s) => n + s.resources.length, 0);
  const report = renderDriftReport(stacks, posture, ctx.region);
  for (const message of report.messages) await ctx.progress(message);

  const parts: string[] = [];
  if (target.kind === 'stack') {
    const s = stacks?.[0];
    if (s) parts.push(`Stack ${s.stack} ${describeStackStatus(s)}.`);
  } else if (target.kind === 'all') {
    parts.push(
      `${drifted.length} of ${stacks?.length ?? 0} stacks have drifted (${driftedResources} resources)${problems.length > 0 ? `; ${problems.length} could not be checked` : ''}.`,
    );
    if (stackResult && stackResult.skipped > 0)
      parts.push(
        `${stackResult.skipped} more stacks were not checked (at most ${DRIFT_LIMITS.maxStacks} per run).`,
      );
  }
  const byKind = FINDING_KINDS.map(
    (k) => [k, posture.findings.filter((f) => f.kind === k).length] as const,
  ).filter(([, n]) => n > 0);
  parts.push(
    `Network posture: ${posture.findings.length === 0 ? 'no findings' : `${posture.findings.length} finding${posture.findings.length === 1 ? '' : 's'}`} in ${posture.vpcIds.length} VPC${posture.vpcIds.length === 1 ? '' : 's'}.`,
  );
  const facts: [string, string][] = [['Region', ctx.region]];
  if (stacks) {
    facts.push([
      'Stacks',
      target.kind === 'stack'
        ? `${stacks[0]?.stack}: ${stacks[0]?.status ?? 'unknown'}`
        : `${stacks.length} checked · ${drifted.length} drifted · ${problems.length} not checked`,
    ]);
    facts.push(['Drifted resources', String(driftedResources)]);
  }
  facts.push([
    'Posture findings',
    byKind.length === 0 ? 'none' : byKind.map(([k, n]) => `${k} ${n}`).join(' · '),
  ]);
  facts.push(['Allowed public ports', allowedPorts.join(', ') || 'none']);
  const files: OutcomeFile[] = report.shortened
    ? [{ filename: `drift-${ctx.runId}.txt`, title: `drift report (${ctx.region})`, content: report.full }]
    : [];
  return {
    ok: problems.length === 0,
    summary: parts.join(' '),
    facts,
    data: {
      stacks: (stacks ?? []).map((s) => ({
        stack: s.stack,
        status: s.status,
        reason: s.reason.slice(0, 300),
        resources: s.resources.slice(0, 50).map((r) => ({
          logicalId: r.logicalId,
          type: r.type,
          status: r.status,
          differences: r.differences.length,
        })),
      })),
      vpcs: posture.vpcIds,
      findings: posture.findings.slice(0, 200) as unknown as Json,
    },
    files,
  };
}

/** The runbook. */
export const drift = defineRunbook({
  id: 'drift',
  title: 'Check drift and network posture',
  risk: 'read-only',
  description:
    'CloudFormation drift per resource, and network posture (open security groups, ACLs, flow logs)',
  usage: USAGE,
  input: DriftInputSchema,
  access: 'read',
  config: DriftConfig,
  iam: {
    plan: [],
    execute: [
      'cloudformation:DetectStackDrift',
      'cloudformation:DescribeStackDriftDetectionStatus',
      'cloudformation:DescribeStackResourceDrifts',
      'cloudformation:ListStacks',
      ...DETECTION_IMPLIED_ACTIONS,
      'ec2:DescribeVpcs',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeFlowLogs',
    ],
  },
  plan: planDrift,
  // A read-only check: the approved target is what runs; there is nothing to re-read first.
  recheck: async (_ctx, plan) => plan.material,
  execute: executeDrift,
  verify: async () => ({ ok: true, summary: 'Nothing was changed (read-only).', facts: [], data: null }),
  undo: 'irreversible',
});
