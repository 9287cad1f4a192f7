/**
 * isolate-instance: contain one EC2 instance. Before anything changes it captures the evidence (the
 * instance's metadata, network interfaces, security groups with their rules, instance profile, tags and
 * console output, and an EBS snapshot of every attached volume) as a JSON file for the run's thread, whose
 * SHA-256 goes into the audit chain. Then it moves every network interface onto a quarantine security
 * group with no rules at all, removes the instance profile association, tags the instance and, with
 * `stop=true`, stops it. Everything it changes is recorded in the run's ledger first; the release
 * procedure here (the run's Undo, and the `release-instance` runbook) puts it back from that record only.
 *
 * Round trips after the approving click: recheck (1), evidence: console output ‖ every snapshot (1), the
 * quarantine group: create (1), read its rules (1), revoke the default egress rule (1), read them again (1)
 * — none of those four when a quarantine group of an earlier run is reused —, every change at once (1),
 * verify (1).
 */
import { createHash } from 'node:crypto';
import type {
  EC2Client,
  IamInstanceProfileAssociation,
  Instance,
  SecurityGroup,
  SecurityGroupRule,
  Tag,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import {
  AwsAccessDeniedError,
  AwsCallFailedError,
  AwsResourceNotFoundError,
  AwsThrottledError,
  PlanRefusedError,
  QuellError,
} from '../errors.ts';
import { scrubSecrets } from '../logger.ts';
import type { Json } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  type Outcome,
  type OutcomeFile,
  type Plan,
  type PlannedCall,
  ReasonOptionSchema,
  RegionOptionSchema,
  type RoleLimit,
  type RunContext,
} from './define-runbook.ts';
import { typedLedger } from './run-ledger.ts';

/** The EC2 SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadEc2 = () => import('@aws-sdk/client-ec2');

/** Instance ids: `i-` and 8 (older) or 17 hexadecimal digits. */
export const InstanceIdSchema = z
  .string()
  .regex(
    /^i-([0-9a-f]{8}|[0-9a-f]{17})$/,
    'an instance id is i- followed by 8 or 17 hexadecimal digits, like i-0abc1234def567890',
  );

const StopOptionSchema = z
  .enum(['true', 'false'], { error: 'stop is `true` or `false`' })
  .transform((value) => value === 'true')
  .optional();

const IsolateInstanceInputSchema = z
  .object({
    positional: z.tuple([InstanceIdSchema], { error: 'give exactly one instance id' }),
    options: z
      .object({
        account: AccountOptionSchema,
        region: RegionOptionSchema,
        reason: ReasonOptionSchema,
        stop: StopOptionSchema,
      })
      .strict(),
  })
  .transform(({ positional: [instanceId], options }) => ({
    instanceId,
    account: options.account,
    region: options.region,
    reason: options.reason,
    stop: options.stop ?? false,
  }));

type IsolateInstanceInput = z.infer<typeof IsolateInstanceInputSchema>;

/** Tags quell writes: on a quarantine group (which VPC, which run) and on an isolated instance. */
export const TAG = {
  quarantine: 'quell-quarantine',
  runId: 'quell-run-id',
  isolated: 'quell-isolated',
  evidence: 'quell-evidence',
} as const;

/** The caveat every isolate-instance card carries (AWS docs, "Security group connection tracking"). */
export const TRACKED_CONNECTION_CAVEAT =
  'Security groups are stateful: connections already tracked when the groups change keep flowing until they end or time out (idle TCP: 5 days by default), and only traffic that was untracked (rules allowing all, both ways) stops at once (AWS docs, "Security group connection tracking"). For a complete cut, use `stop=true` or a deny network ACL on the subnet (`isolate-vpc`).';

/** The console output kept in the evidence: its most recent part (AWS returns at most the last 64 KB). */
const CONSOLE_TAIL_BYTES = 64 * 1024;

// ─── reading the instance ─────────────────────────────────────────────────────────────────────────────

/** What quell reads of an instance and its VPC, for the plan, the recheck, the evidence and the verify. */
interface InstanceReading {
  instance: Instance | undefined;
  /** The active instance profile association (associating or associated), if any. */
  profile: IamInstanceProfileAssociation | undefined;
  /** Every security group of the instance's VPC, with its rules and tags. */
  groups: SecurityGroup[];
}

async function describeInstance(ec2: EC2Client, instanceId: string, signal?: AbortSignal) {
  const { DescribeInstancesCommand } = await loadEc2();
  // A filter instead of InstanceIds: an unknown id then reads as "no instance" rather than an error.
  const out = await ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [instanceId] }] }),
    { abortSignal: signal },
  );
  return out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
}

async function describeProfile(ec2: EC2Client, instanceId: string, signal?: AbortSignal) {
  const { DescribeIamInstanceProfileAssociationsCommand } = await loadEc2();
  const out = await ec2.send(
    new DescribeIamInstanceProfileAssociationsCommand({
      Filters: [{ Name: 'instance-id', Values: [instanceId] }],
    }),
    { abortSignal: signal },
  );
  return (out.IamInstanceProfileAssociations ?? []).find(
    (a) => a.State === 'associated' || a.State === 'associating',
  );
}

async function listVpcGroups(ec2: EC2Client, vpcId: string): Promise<SecurityGroup[]> {
  const { paginateDescribeSecurityGroups } = await loadEc2();
  const groups: SecurityGroup[] = [];
  for await (const page of paginateDescribeSecurityGroups(
    { client: ec2 },
    { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
  )) {
    groups.push(...(page.SecurityGroups ?? []));
  }
  return groups;
}

/** Reads everything in one parallel wave when the VPC is known (recheck, verify), else in two. */
async function readInstance(ec2: EC2Client, instanceId: string, vpcId?: string): Promise<InstanceReading> {
  if (vpcId) {
    const [instance, profile, groups] = await Promise.all([
      describeInstance(ec2, instanceId),
      describeProfile(ec2, instanceId),
      listVpcGroups(ec2, vpcId),
    ]);
    return { instance, profile, groups };
  }
  const [instance, profile] = await Promise.all([
    describeInstance(ec2, instanceId),
    describeProfile(ec2, instanceId),
  ]);
  const groups = instance?.VpcId ? await listVpcGroups(ec2, instance.VpcId) : [];
  return { instance, profile, groups };
}

/** The instance's network interfaces with the security groups each is on, sorted by device index. */
function enisOf(instance: Instance | undefined): { eniId: string; groups: string[]; device: number }[] {
  return (instance?.NetworkInterfaces ?? [])
    .filter((n) => n.NetworkInterfaceId)
    .map((n) => ({
      eniId: n.NetworkInterfaceId ?? '',
      groups: (n.Groups ?? []).map((g) => g.GroupId ?? '').sort(),
      device: n.Attachment?.DeviceIndex ?? 0,
    }))
    .sort((a, b) => a.device - b.device || a.eniId.localeCompare(b.eniId));
}

/** The EBS volumes attached to the instance. */
function volumesOf(instance: Instance | undefined): { volumeId: string; device: string }[] {
  return (instance?.BlockDeviceMappings ?? [])
    .filter((m) => m.Ebs?.VolumeId)
    .map((m) => ({ volumeId: m.Ebs?.VolumeId ?? '', device: m.DeviceName ?? '' }))
    .sort((a, b) => a.volumeId.localeCompare(b.volumeId));
}

function tagOf(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** How many rules a group has, in both directions. */
function ruleCount(group: SecurityGroup): number {
  return (group.IpPermissions?.length ?? 0) + (group.IpPermissionsEgress?.length ?? 0);
}

/**
 * Whether a security group isolates what is on it, judged by its rules alone: no inbound and no outbound
 * rule. Tags prove nothing: anyone who may tag a group can tag an allow-all one `quell-quarantine`.
 */
export function isQuarantineGroup(group: SecurityGroup): boolean {
  return ruleCount(group) === 0;
}

/** Whether a group carries quell's quarantine tag for `vpcId` (a label to find quell's groups, never proof). */
export function hasQuarantineTag(group: SecurityGroup, vpcId: string): boolean {
  return tagOf(group.Tags, TAG.quarantine) === vpcId;
}

/** Whether every group of an ENI is a quarantine by its rules (an ENI always has at least one group). */
function onlyOnQuarantine(groups: string[], byId: Map<string, SecurityGroup>): boolean {
  return (
    groups.length > 0 &&
    groups.every((id) => byId.get(id) !== undefined && isQuarantineGroup(byId.get(id) as SecurityGroup))
  );
}

/** A quarantine group of another run in the VPC that still has no rules. */
function findReusableGroup(groups: SecurityGroup[], vpcId: string, runId: string): SecurityGroup | undefined {
  return groups
    .filter((g) => hasQuarantineTag(g, vpcId) && tagOf(g.Tags, TAG.runId) !== runId && isQuarantineGroup(g))
    .sort((a, b) => String(a.GroupId).localeCompare(String(b.GroupId)))[0];
}

/** The group this run created (an earlier attempt of it), found by its tags. */
function ownGroup(groups: SecurityGroup[], vpcId: string, runId: string): SecurityGroup | undefined {
  return groups.find((g) => hasQuarantineTag(g, vpcId) && tagOf(g.Tags, TAG.runId) === runId);
}

function list(items: string[], max = 8): string {
  if (items.length === 0) return 'none';
  return items.length > max
    ? `${items.slice(0, max).join(', ')} and ${items.length - max} more`
    : items.join(', ');
}

/** The AWS error code of a failed call, for the record and the summary. */
function errorCodeOf(error: unknown): string {
  if (error instanceof AwsCallFailedError) return error.awsCode;
  if (error instanceof AwsAccessDeniedError) return 'AccessDenied';
  if (error instanceof AwsThrottledError) return 'Throttled';
  if (error instanceof QuellError) return error.code;
  return error instanceof Error ? error.name : 'Error';
}

/** What to do about failures that have a fix (a missing IAM action, a throttle), each message once. */
function adviceFor(errors: unknown[]): string {
  const messages = new Set(
    errors
      .filter((e) => e instanceof AwsAccessDeniedError || e instanceof AwsThrottledError)
      .map((e) => (e as Error).message),
  );
  return messages.size > 0 ? ` ${[...messages].join(' ')}` : '';
}

// ─── the record of what was changed (the run ledger) ──────────────────────────────────────────────────

const ChangeStateSchema = z.enum(['recorded', 'applied', 'failed', 'restored']);

/**
 * What isolate-instance changed, written to the run's ledger before the change (keys
 * `instance/<account>/<region>/<instance>/…`): each ENI's previous groups, the instance profile
 * association, whether the instance was stopped and tagged, and the evidence snapshots. The first write of
 * an entry holds the original; a retry cannot overwrite it.
 */
const SavedInstanceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('eni'),
    instanceId: z.string(),
    vpcId: z.string(),
    eniId: z.string(),
    previousGroups: z.array(z.string()),
    quarantineGroupId: z.string(),
    state: ChangeStateSchema,
    error: z.string().nullable(),
  }),
  z.object({
    kind: z.literal('profile'),
    instanceId: z.string(),
    associationId: z.string(),
    instanceProfileArn: z.string(),
    state: ChangeStateSchema,
    error: z.string().nullable(),
  }),
  z.object({
    kind: z.literal('instance'),
    instanceId: z.string(),
    previousState: z.string(),
    stopRequested: z.boolean(),
    stopped: z.boolean(),
    tagged: z.boolean(),
    state: ChangeStateSchema,
    error: z.string().nullable(),
  }),
  z.object({
    kind: z.literal('evidence'),
    instanceId: z.string(),
    snapshots: z.array(z.object({ volumeId: z.string(), snapshotId: z.string() })),
  }),
]);

type SavedInstance = z.infer<typeof SavedInstanceSchema>;
type SavedEntry = { runId: string; key: string; value: SavedInstance; recordedAt: number };

function instancePrefix(ctx: RunContext, instanceId: string): string {
  return `instance/${ctx.account.id}/${ctx.region}/${instanceId}/`;
}

function keyOf(ctx: RunContext, value: SavedInstance): string {
  const base = instancePrefix(ctx, value.instanceId);
  return value.kind === 'eni' ? `${base}eni/${value.eniId}` : `${base}${value.kind}`;
}

/** The recorded changes of one instance (of one run, when given), oldest first. */
async function listSaved(ctx: RunContext, instanceId: string, runId?: string): Promise<SavedEntry[]> {
  const entries = await typedLedger(ctx.ledger, SavedInstanceSchema).list({
    prefix: instancePrefix(ctx, instanceId),
    ...(runId !== undefined ? { runId } : {}),
  });
  return entries.map((e) => ({ runId: e.runId, key: e.key, value: e.value, recordedAt: e.recordedAt }));
}

async function recordSaved(ctx: RunContext, values: SavedInstance[]): Promise<void> {
  await typedLedger(ctx.ledger, SavedInstanceSchema).put(
    values.map((value) => ({ runId: ctx.runId, key: keyOf(ctx, value), value })),
  );
}

async function settleSaved(ctx: RunContext, entries: { runId: string; value: SavedInstance }[]) {
  await typedLedger(ctx.ledger, SavedInstanceSchema).update(
    entries.map((e) => ({ runId: e.runId, key: keyOf(ctx, e.value), value: e.value })),
  );
}

// ─── isolate ──────────────────────────────────────────────────────────────────────────────────────────

/** What execute needs, fixed at plan time. */
type IsolateData = {
  instanceId: string;
  vpcId: string;
  stop: boolean;
  /** A quarantine group of an earlier run with no rules; null: create one. */
  reuseGroupId: string | null;
  /** The ENIs to move, with the groups each is on. */
  moves: { eniId: string; groups: string[] }[];
  /** ENIs already only on groups with no rules: left where they are. */
  alreadyQuarantined: string[];
  /** The instance profile association to remove. */
  profile: { associationId: string; arn: string } | null;
};

/** The evidence as the audit chain and the run's result hold it (the document itself is the thread file). */
type EvidenceSummary = {
  filename: string;
  sha256: string;
  bytes: number;
  snapshots: { volumeId: string; snapshotId: string }[];
  consoleOutputBytes: number | null;
  problems: string[];
};

type IsolateResult = {
  evidence: EvidenceSummary | null;
  quarantineGroupId: string | null;
  created: boolean;
  moved: string[];
  failed: { eniId: string; error: string }[];
  profileRemoved: boolean | null;
  tagged: boolean;
  stopped: boolean | null;
  problems: string[];
};

/** The facts the approval rests on, in the same shape for the plan and the recheck. */
function isolateMaterial(
  ctx: RunContext,
  instanceId: string,
  reading: InstanceReading,
  own: SavedEntry[],
): Json {
  const { instance, profile, groups } = reading;
  const vpcId = instance?.VpcId ?? '';
  const enis: Record<string, string> = {};
  for (const eni of enisOf(instance)) {
    // An ENI this run already moved counts as being on the groups it had when the run was approved, so
    // that a retry of a partly applied run is not taken for a changed world.
    const mine = own.find((e) => e.value.kind === 'eni' && e.value.eniId === eni.eniId);
    const moved =
      mine?.value.kind === 'eni' && eni.groups.length === 1 && eni.groups[0] === mine.value.quarantineGroupId;
    enis[eni.eniId] = (moved && mine?.value.kind === 'eni' ? mine.value.previousGroups : eni.groups).join(
      ',',
    );
  }
  const ownProfile = own.find((e) => e.value.kind === 'profile')?.value;
  const profileArn =
    profile?.IamInstanceProfile?.Arn ??
    (ownProfile?.kind === 'profile' ? ownProfile.instanceProfileArn : null);
  return {
    accountId: ctx.account.id,
    region: ctx.region,
    instanceId,
    exists: instance !== undefined,
    vpcId,
    enis,
    profileArn,
    volumes: volumesOf(instance).map((v) => v.volumeId),
    reusableGroupId: findReusableGroup(groups, vpcId, ctx.runId)?.GroupId ?? null,
  };
}

/** The reading the recheck made, handed to execute of the same attempt (they run back to back). */
const rechecked = new WeakMap<RunContext, InstanceReading>();

async function readingForExecute(
  ctx: RunContext,
  ec2: EC2Client,
  data: IsolateData,
): Promise<InstanceReading> {
  const seen = rechecked.get(ctx);
  rechecked.delete(ctx);
  return seen ?? readInstance(ec2, data.instanceId, data.vpcId);
}

function describeGroups(ids: string[], byId: Map<string, SecurityGroup>): string {
  return (
    ids
      .map((id) => {
        const g = byId.get(id);
        return g ? `${id} (${g.GroupName ?? ''}, ${ruleCount(g)} rule${ruleCount(g) === 1 ? '' : 's'})` : id;
      })
      .join(', ') || 'none'
  );
}

async function planIsolate(ctx: RunContext, input: IsolateInstanceInput): Promise<Plan<IsolateData>> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { instanceId, stop } = input;
  const reading = await readInstance(ec2, instanceId);
  const { instance, profile, groups } = reading;
  const where = `account \`${ctx.account.alias}\` (${ctx.account.id}), ${ctx.region}`;
  if (!instance) {
    throw new AwsResourceNotFoundError(
      `No instance \`${instanceId}\` in ${where}. Check the id, and give \`region=\` if it is in another region.`,
    );
  }
  const state = instance.State?.Name ?? 'unknown';
  if (state === 'terminated' || state === 'shutting-down') {
    throw new PlanRefusedError(`\`${instanceId}\` is ${state}: there is nothing to isolate.`);
  }
  const vpcId = instance.VpcId;
  if (!vpcId) {
    throw new PlanRefusedError(
      `\`${instanceId}\` is not in a VPC (EC2-Classic): security groups cannot be changed on its network interfaces.`,
    );
  }
  const byId = new Map(groups.map((g) => [g.GroupId ?? '', g]));
  const enis = enisOf(instance);
  const moves = enis.filter((e) => !onlyOnQuarantine(e.groups, byId));
  const alreadyQuarantined = enis.filter((e) => onlyOnQuarantine(e.groups, byId)).map((e) => e.eniId);
  const isolatedTag = tagOf(instance.Tags, TAG.isolated);
  const willStop = stop && (state === 'running' || state === 'pending');
  if (moves.length === 0 && !profile && (isolatedTag !== undefined || !willStop)) {
    throw new PlanRefusedError(
      `\`${instanceId}\` is already isolated: every network interface is on a security group with no rules (${list(alreadyQuarantined)}) and it has no instance profile. \`release-instance ${instanceId}\` puts it back.`,
    );
  }

  const reusable = findReusableGroup(groups, vpcId, ctx.runId);
  // Groups tagged as a quarantine whose rules let traffic through: named, and never used.
  const posing = groups.filter((g) => hasQuarantineTag(g, vpcId) && !isQuarantineGroup(g));
  const quarantineLabel = reusable?.GroupId ?? '<new quarantine group>';
  const volumes = volumesOf(instance);

  const calls: PlannedCall[] = [
    { action: 'ec2:GetConsoleOutput', params: { InstanceId: instanceId } },
    ...volumes.map((v) => ({
      action: 'ec2:CreateSnapshot',
      params: {
        VolumeId: v.volumeId,
        device: v.device,
        Tags: `${TAG.runId}=${ctx.runId}, ${TAG.evidence}=true`,
      },
    })),
  ];
  if (!reusable) {
    calls.push(
      {
        action: 'ec2:CreateSecurityGroup',
        params: {
          VpcId: vpcId,
          GroupName: `quell-quarantine-${ctx.runId}`,
          Tags: `${TAG.quarantine}=${vpcId}, ${TAG.runId}=${ctx.runId}`,
        },
      },
      {
        action: 'ec2:RevokeSecurityGroupEgress',
        params: { GroupId: quarantineLabel, rules: 'the default allow-all egress rule(s)' },
      },
    );
  }
  for (const move of moves) {
    calls.push({
      action: 'ec2:ModifyNetworkInterfaceAttribute',
      params: { NetworkInterfaceId: move.eniId, Groups: quarantineLabel, previous: move.groups.join(',') },
    });
  }
  if (profile) {
    calls.push({
      action: 'ec2:DisassociateIamInstanceProfile',
      params: { AssociationId: profile.AssociationId ?? '', profile: profile.IamInstanceProfile?.Arn ?? '' },
    });
  }
  calls.push({
    action: 'ec2:CreateTags',
    params: { Resources: instanceId, Tags: `${TAG.isolated}=${ctx.runId}` },
  });
  if (willStop) calls.push({ action: 'ec2:StopInstances', params: { InstanceIds: instanceId } });

  const notes: string[] = [
    `Evidence first: before anything changes, quell snapshots every attached EBS volume (tagged ${TAG.runId}=${ctx.runId}, ${TAG.evidence}=true) and attaches a JSON file of the instance's metadata, network interfaces, security groups with their rules, instance profile, tags and console output to this thread; its SHA-256 goes into the audit log.`,
    TRACKED_CONNECTION_CAVEAT,
    `Each network interface's groups and the instance profile are recorded before they change; Undo (or \`release-instance ${instanceId}\`) puts them back from that record.`,
  ];
  if (stop && !willStop) notes.push(`stop=true: the instance is ${state}, so it is not stopped.`);
  if (willStop)
    notes.push(
      'stop=true: the instance is stopped (not terminated; memory is lost, EBS volumes stay). Release starts it again.',
    );
  if (reusable)
    notes.push(
      `Reuses quarantine group ${reusable.GroupId} left by run ${tagOf(reusable.Tags, TAG.runId) ?? 'unknown'}: it has no rules.`,
    );
  if (posing.length > 0)
    notes.push(
      `NOT a quarantine: ${list(posing.map((g) => `${g.GroupId} (${ruleCount(g)} rules)`))} ${posing.length === 1 ? 'is' : 'are'} tagged \`${TAG.quarantine}=${vpcId}\` but ${posing.length === 1 ? 'has' : 'have'} rules that let traffic through. quell goes by the rules, not the tag: ${posing.length === 1 ? 'it is' : 'they are'} not used.`,
    );
  if (alreadyQuarantined.length > 0)
    notes.push(`Already on groups with no rules, left where they are: ${list(alreadyQuarantined)}.`);

  const name = tagOf(instance.Tags, 'Name');
  const profileArn = profile?.IamInstanceProfile?.Arn;
  return {
    summary: `Isolate ${instanceId}${name ? ` (${name})` : ''}: capture evidence, move ${moves.length} network interface(s) onto a quarantine security group with no rules${profile ? ', remove its instance profile' : ''}${willStop ? ', stop it' : ''}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      [
        'Instance',
        `${instanceId}${name ? ` (${name})` : ''} ${instance.InstanceType ?? ''}, ${state}, ${instance.PrivateIpAddress ?? ''}${instance.PublicIpAddress ? ` / ${instance.PublicIpAddress}` : ''}`,
      ],
      ['VPC / subnet', `${vpcId} / ${instance.SubnetId ?? ''}`],
      [
        'Network interface → current groups',
        enis.map((e) => `${e.eniId}: ${describeGroups(e.groups, byId)}`).join('\n') || 'none',
      ],
      ['Instance profile', profileArn ? `${profileArn} (${profile?.AssociationId ?? ''})` : 'none'],
      ['Volumes to snapshot', list(volumes.map((v) => `${v.volumeId} (${v.device})`))],
      [
        'Quarantine group',
        reusable
          ? `reuse ${reusable.GroupId} (no rules)`
          : `new, tagged ${TAG.runId}=${ctx.runId}, no inbound and no outbound rules`,
      ],
      ['Stop', willStop ? 'yes' : 'no'],
    ],
    calls,
    notes,
    material: isolateMaterial(ctx, instanceId, reading, []),
    data: {
      instanceId,
      vpcId,
      stop,
      reuseGroupId: reusable?.GroupId ?? null,
      moves: moves.map((m) => ({ eniId: m.eniId, groups: m.groups })),
      alreadyQuarantined,
      profile: profile?.AssociationId
        ? { associationId: profile.AssociationId, arn: profileArn ?? '' }
        : null,
    },
  };
}

async function recheckIsolate(ctx: RunContext, plan: Plan<IsolateData>): Promise<Json> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { instanceId, vpcId } = plan.data;
  const [reading, own] = await Promise.all([
    readInstance(ec2, instanceId, vpcId),
    listSaved(ctx, instanceId, ctx.runId),
  ]);
  rechecked.set(ctx, reading);
  return isolateMaterial(ctx, instanceId, reading, own);
}

/** Decodes and trims the console output: its most recent part, credential-shaped strings redacted. */
function consoleText(base64: string | undefined): { text: string; bytes: number; truncated: boolean } {
  const raw = Buffer.from(base64 ?? '', 'base64');
  const tail = raw.length > CONSOLE_TAIL_BYTES ? raw.subarray(raw.length - CONSOLE_TAIL_BYTES) : raw;
  return {
    text: scrubSecrets(tail.toString('utf8')),
    bytes: raw.length,
    truncated: raw.length > tail.length,
  };
}

/**
 * Captures the evidence before any change: the console output and a snapshot of every attached volume (in
 * parallel; a volume this run already snapshotted is not snapshotted again), and the JSON document of
 * everything read. A failure to capture one part is written into the document; it never blocks containment.
 */
async function captureEvidence(
  ctx: RunContext,
  ec2: EC2Client,
  reading: InstanceReading,
  own: SavedEntry[],
): Promise<{ file: OutcomeFile; summary: EvidenceSummary }> {
  const { CreateSnapshotCommand, GetConsoleOutputCommand } = await loadEc2();
  const instance = reading.instance;
  const instanceId = instance?.InstanceId ?? '';
  const earlier = own.flatMap((e) => (e.value.kind === 'evidence' ? e.value.snapshots : []));
  const volumes = volumesOf(instance).filter((v) => !earlier.some((s) => s.volumeId === v.volumeId));
  const [consoleOut, ...snapshotOuts] = await Promise.allSettled([
    ec2.send(new GetConsoleOutputCommand({ InstanceId: instanceId }), { abortSignal: ctx.signal }),
    ...volumes.map((v) =>
      ec2.send(
        new CreateSnapshotCommand({
          VolumeId: v.volumeId,
          Description: `quell evidence: ${instanceId} ${v.device}, run ${ctx.runId}`,
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: [
                { Key: 'Name', Value: `quell-evidence-${instanceId}-${v.device}` },
                { Key: TAG.runId, Value: ctx.runId },
                { Key: TAG.evidence, Value: 'true' },
                { Key: 'quell-instance-id', Value: instanceId },
              ],
            },
          ],
        }),
        { abortSignal: ctx.signal },
      ),
    ),
  ]);
  const problems: string[] = [];
  const snapshots = [...earlier];
  const snapshotRows: Json[] = earlier.map((s) => ({ ...s, fromEarlierAttempt: true }));
  snapshotOuts.forEach((out, i) => {
    const v = volumes[i];
    if (!v) return;
    if (out.status === 'fulfilled' && out.value.SnapshotId) {
      snapshots.push({ volumeId: v.volumeId, snapshotId: out.value.SnapshotId });
      snapshotRows.push({
        volumeId: v.volumeId,
        device: v.device,
        snapshotId: out.value.SnapshotId,
        startTime: out.value.StartTime?.toISOString() ?? null,
        state: out.value.State ?? null,
      });
    } else {
      const error = out.status === 'rejected' ? errorCodeOf(out.reason) : 'no snapshot id';
      problems.push(`snapshot of ${v.volumeId} failed (${error})`);
      snapshotRows.push({ volumeId: v.volumeId, device: v.device, error });
    }
  });
  // Recorded so that a retry does not snapshot the same volumes again (the first record is kept as it is).
  const evidenceRecord: SavedInstance = { kind: 'evidence', instanceId, snapshots };
  if (own.some((e) => e.value.kind === 'evidence'))
    await settleSaved(ctx, [{ runId: ctx.runId, value: evidenceRecord }]);
  else if (snapshots.length > 0) await recordSaved(ctx, [evidenceRecord]);

  let consoleOutput: Json;
  let consoleBytes: number | null = null;
  if (consoleOut.status === 'fulfilled') {
    const c = consoleText(consoleOut.value.Output);
    consoleBytes = c.bytes;
    consoleOutput = {
      timestamp: consoleOut.value.Timestamp?.toISOString() ?? null,
      bytes: c.bytes,
      truncated: c.truncated,
      note: `the most recent ${CONSOLE_TAIL_BYTES} bytes at most, decoded as UTF-8, credential-shaped strings replaced by [redacted]`,
      text: c.text,
    };
  } else {
    const error = errorCodeOf(consoleOut.reason);
    problems.push(`console output not captured (${error})`);
    consoleOutput = { error };
  }

  const byId = new Map(reading.groups.map((g) => [g.GroupId ?? '', g]));
  const attached = [...new Set(enisOf(instance).flatMap((e) => e.groups))].sort();
  const document = {
    kind: 'quell-evidence',
    runbook: 'isolate-instance',
    runId: ctx.runId,
    capturedAt: ctx.now().toISOString(),
    capturedBefore: 'any change made by this run',
    account: { alias: ctx.account.alias, id: ctx.account.id },
    region: ctx.region,
    instance: instance ?? null,
    networkInterfaces: instance?.NetworkInterfaces ?? [],
    securityGroups: attached.map((id) => byId.get(id) ?? { GroupId: id, error: 'not found in the VPC' }),
    instanceProfile: reading.profile ?? null,
    tags: instance?.Tags ?? [],
    consoleOutput,
    snapshots: snapshotRows,
    problems,
  };
  const content = `${JSON.stringify(document, null, 2)}\n`;
  const sha256 = createHash('sha256').update(content, 'utf8').digest('hex');
  const filename = `quell-evidence-${instanceId}-${ctx.runId}.json`;
  return {
    file: {
      filename,
      title: `Evidence: ${instanceId} before isolation (sha256 ${sha256.slice(0, 16)}…)`,
      content,
    },
    summary: {
      filename,
      sha256,
      bytes: Buffer.byteLength(content),
      snapshots,
      consoleOutputBytes: consoleBytes,
      problems,
    },
  };
}

/** The quarantine group's rules as AWS has them now. */
async function groupRules(
  ec2: EC2Client,
  groupId: string,
  signal?: AbortSignal,
): Promise<SecurityGroupRule[]> {
  const { DescribeSecurityGroupRulesCommand } = await loadEc2();
  const out = await ec2.send(
    new DescribeSecurityGroupRulesCommand({ Filters: [{ Name: 'group-id', Values: [groupId] }] }),
    { abortSignal: signal },
  );
  return (out.SecurityGroupRules ?? []).filter((r) => r.GroupId === groupId);
}

/**
 * The quarantine group, with no rules: the reused one, or the one an earlier attempt of this run created,
 * or a new one. A new group comes with AWS's default allow-all egress rule (and its IPv6 twin in a dual-stack
 * VPC): those are read by id and revoked, then the rules are read again. Returns the group and why it
 * cannot be used (it still has rules), if so.
 */
async function ensureQuarantineGroup(
  ctx: RunContext,
  ec2: EC2Client,
  data: IsolateData,
  reading: InstanceReading,
): Promise<{ groupId: string; created: boolean; problem: string | null }> {
  const { CreateSecurityGroupCommand, RevokeSecurityGroupEgressCommand } = await loadEc2();
  const { vpcId, instanceId } = data;
  const already = enisOf(reading.instance)[0]?.groups[0];
  if (data.moves.length === 0 && already) {
    // Every ENI is already on groups with no rules (the plan checked): no group to prepare or create.
    return { groupId: already, created: false, problem: null };
  }
  const reused = data.reuseGroupId ? reading.groups.find((g) => g.GroupId === data.reuseGroupId) : undefined;
  if (reused?.GroupId) {
    // The recheck just read it: it has no rules (else the plan would have changed).
    return { groupId: reused.GroupId, created: false, problem: null };
  }
  let groupId = ownGroup(reading.groups, vpcId, ctx.runId)?.GroupId;
  let created = false;
  if (!groupId) {
    const out = await ec2.send(
      new CreateSecurityGroupCommand({
        VpcId: vpcId,
        GroupName: `quell-quarantine-${ctx.runId}`,
        Description: `quell quarantine (run ${ctx.runId}, first for ${instanceId}): no inbound and no outbound rules`,
        TagSpecifications: [
          {
            ResourceType: 'security-group',
            Tags: [
              { Key: 'Name', Value: `quell-quarantine-${ctx.runId}` },
              { Key: TAG.quarantine, Value: vpcId },
              { Key: TAG.runId, Value: ctx.runId },
            ],
          },
        ],
      }),
      { abortSignal: ctx.signal },
    );
    groupId = out.GroupId;
    created = true;
  }
  if (!groupId) throw new PlanRefusedError('AWS created the security group but returned no id.');
  const rules = await groupRules(ec2, groupId, ctx.signal);
  const ingress = rules.filter((r) => !r.IsEgress);
  if (ingress.length > 0) {
    // quell never writes inbound rules: someone else did. Nothing moves onto a group that admits traffic.
    return { groupId, created, problem: `it has ${ingress.length} inbound rule(s) quell did not write` };
  }
  const egress = rules
    .filter((r) => r.IsEgress && r.SecurityGroupRuleId)
    .map((r) => r.SecurityGroupRuleId ?? '');
  if (egress.length > 0) {
    await ec2.send(new RevokeSecurityGroupEgressCommand({ GroupId: groupId, SecurityGroupRuleIds: egress }), {
      abortSignal: ctx.signal,
    });
    const left = await groupRules(ec2, groupId, ctx.signal);
    if (left.length > 0) return { groupId, created, problem: `it still has ${left.length} rule(s)` };
  }
  return { groupId, created, problem: null };
}

async function executeIsolate(ctx: RunContext, plan: Plan<IsolateData>): Promise<Outcome<IsolateResult>> {
  const {
    CreateTagsCommand,
    DisassociateIamInstanceProfileCommand,
    EC2Client,
    ModifyNetworkInterfaceAttributeCommand,
    StopInstancesCommand,
  } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const data = plan.data;
  const { instanceId, vpcId } = data;
  const [reading, own] = await Promise.all([
    readingForExecute(ctx, ec2, data),
    listSaved(ctx, instanceId, ctx.runId),
  ]);
  const result: IsolateResult = {
    evidence: null,
    quarantineGroupId: null,
    created: false,
    moved: [],
    failed: [],
    profileRemoved: null,
    tagged: false,
    stopped: null,
    problems: [],
  };
  if (!reading.instance) throw new AwsResourceNotFoundError(`\`${instanceId}\` no longer exists.`);

  // 1. Evidence, before anything changes.
  const evidence = await captureEvidence(ctx, ec2, reading, own);
  result.evidence = evidence.summary;
  const files = [evidence.file];
  const evidenceFacts: [string, string][] = [
    [
      'Evidence',
      `${evidence.summary.filename}, sha256 ${evidence.summary.sha256}; snapshots: ${list(evidence.summary.snapshots.map((s) => `${s.snapshotId} (${s.volumeId})`))}${evidence.summary.problems.length ? `; missing: ${list(evidence.summary.problems)}` : ''}`,
    ],
  ];

  // 2. The quarantine group, with no rules.
  const notIsolated = (why: string, partial: boolean): Outcome<IsolateResult> => {
    result.failed = data.moves.map((m) => ({ eniId: m.eniId, error: why }));
    result.problems.push(why);
    return {
      ok: false,
      partial,
      summary: `Evidence captured (sha256 ${evidence.summary.sha256.slice(0, 16)}…), but ${why}: nothing was moved. NOT isolated: ${instanceId}.`,
      facts: [
        ...evidenceFacts,
        [
          'Not isolated',
          list(
            data.moves.map((m) => m.eniId),
            20,
          ),
        ],
      ],
      data: result,
      files,
    };
  };
  let quarantine: Awaited<ReturnType<typeof ensureQuarantineGroup>>;
  try {
    quarantine = await ensureQuarantineGroup(ctx, ec2, data, reading);
  } catch (error) {
    return notIsolated(
      `the quarantine security group could not be prepared (${errorCodeOf(error)})${adviceFor([error])}`,
      evidence.summary.snapshots.length > 0,
    );
  }
  result.quarantineGroupId = quarantine.groupId;
  result.created = quarantine.created;
  if (quarantine.problem) {
    return notIsolated(`quarantine group ${quarantine.groupId} is not usable: ${quarantine.problem}`, true);
  }
  const groupId = quarantine.groupId;

  // 3. Record what changes (each ENI's groups, the profile association, the instance), then change it all at once.
  const current = enisOf(reading.instance);
  const toMove = data.moves.filter((m) => {
    const now = current.find((e) => e.eniId === m.eniId);
    return now !== undefined && !(now.groups.length === 1 && now.groups[0] === groupId);
  });
  const already = data.moves.filter((m) => {
    const now = current.find((e) => e.eniId === m.eniId);
    return now !== undefined && now.groups.length === 1 && now.groups[0] === groupId;
  });
  for (const m of data.moves)
    if (!current.some((e) => e.eniId === m.eniId))
      result.failed.push({ eniId: m.eniId, error: 'network interface no longer attached' });
  const profile = reading.profile;
  const state = reading.instance.State?.Name ?? 'unknown';
  const stop = data.stop && (state === 'running' || state === 'pending');
  const records: SavedInstance[] = [
    ...toMove.map(
      (m): SavedInstance => ({
        kind: 'eni',
        instanceId,
        vpcId,
        eniId: m.eniId,
        previousGroups: current.find((e) => e.eniId === m.eniId)?.groups ?? m.groups,
        quarantineGroupId: groupId,
        state: 'recorded',
        error: null,
      }),
    ),
    {
      kind: 'instance',
      instanceId,
      previousState: state,
      stopRequested: data.stop,
      stopped: false,
      tagged: false,
      state: 'recorded',
      error: null,
    },
  ];
  if (profile?.AssociationId && profile.IamInstanceProfile?.Arn)
    records.push({
      kind: 'profile',
      instanceId,
      associationId: profile.AssociationId,
      instanceProfileArn: profile.IamInstanceProfile.Arn,
      state: 'recorded',
      error: null,
    });
  await recordSaved(ctx, records);

  const [moved, disassociated, tagged, stopped] = await Promise.all([
    Promise.allSettled(
      toMove.map((m) =>
        ec2.send(
          new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: m.eniId, Groups: [groupId] }),
          {
            abortSignal: ctx.signal,
          },
        ),
      ),
    ),
    profile?.AssociationId
      ? ec2
          .send(new DisassociateIamInstanceProfileCommand({ AssociationId: profile.AssociationId }), {
            abortSignal: ctx.signal,
          })
          .then(
            () => null,
            (error: unknown) => error,
          )
      : Promise.resolve(undefined),
    ec2
      .send(
        new CreateTagsCommand({
          Resources: [instanceId],
          Tags: [
            { Key: TAG.isolated, Value: ctx.runId },
            { Key: 'quell-quarantine-group', Value: groupId },
            { Key: 'quell-evidence-sha256', Value: evidence.summary.sha256 },
          ],
        }),
        { abortSignal: ctx.signal },
      )
      .then(
        () => null,
        (error: unknown) => error,
      ),
    stop
      ? ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: ctx.signal }).then(
          () => null,
          (error: unknown) => error,
        )
      : Promise.resolve(undefined),
  ]);

  // 4. Settle the record.
  const settled: { runId: string; value: SavedInstance }[] = [];
  result.moved.push(...already.map((m) => m.eniId));
  moved.forEach((outcome, i) => {
    const m = toMove[i];
    const record = records.find((r) => r.kind === 'eni' && r.eniId === m?.eniId);
    if (!m || record?.kind !== 'eni') return;
    if (outcome.status === 'fulfilled') {
      result.moved.push(m.eniId);
      settled.push({ runId: ctx.runId, value: { ...record, state: 'applied' } });
    } else {
      const error = errorCodeOf(outcome.reason);
      result.failed.push({ eniId: m.eniId, error });
      settled.push({ runId: ctx.runId, value: { ...record, state: 'failed', error } });
    }
  });
  const profileRecord = records.find((r) => r.kind === 'profile');
  if (profileRecord?.kind === 'profile') {
    result.profileRemoved = disassociated === null;
    if (disassociated !== null)
      result.problems.push(`instance profile not removed (${errorCodeOf(disassociated)})`);
    settled.push({
      runId: ctx.runId,
      value: {
        ...profileRecord,
        state: disassociated === null ? 'applied' : 'failed',
        error: disassociated === null ? null : errorCodeOf(disassociated),
      },
    });
  }
  result.tagged = tagged === null;
  if (tagged !== null) result.problems.push(`instance not tagged (${errorCodeOf(tagged)})`);
  if (stop) {
    result.stopped = stopped === null;
    if (stopped !== null) result.problems.push(`instance not stopped (${errorCodeOf(stopped)})`);
  }
  settled.push({
    runId: ctx.runId,
    value: {
      kind: 'instance',
      instanceId,
      previousState: state,
      stopRequested: data.stop,
      stopped: stop && stopped === null,
      tagged: result.tagged,
      state: 'applied',
      error: null,
    },
  });
  // The instance entry of an earlier attempt keeps its first previousState; only its outcome flags change.
  const earlierInstance = own.find((e) => e.value.kind === 'instance')?.value;
  if (earlierInstance?.kind === 'instance') {
    const last = settled.at(-1);
    if (last?.value.kind === 'instance') {
      last.value.previousState = earlierInstance.previousState;
      last.value.stopped = last.value.stopped || earlierInstance.stopped;
      last.value.tagged = last.value.tagged || earlierInstance.tagged;
    }
  }
  await settleSaved(ctx, settled);

  const errors = [
    ...moved.map((o) => (o.status === 'rejected' ? o.reason : null)),
    disassociated,
    tagged,
    stopped,
  ];
  const problems = [...result.failed.map((f) => `${f.eniId} not moved (${f.error})`), ...result.problems];
  const ok = problems.length === 0;
  const done = [
    `${result.moved.length} network interface(s) on quarantine group ${groupId} (${quarantine.created ? 'created' : 'reused'}, no rules)`,
    result.profileRemoved ? `instance profile ${profile?.IamInstanceProfile?.Arn ?? ''} removed` : null,
    result.tagged ? 'tagged' : null,
    result.stopped ? 'stopping' : null,
  ].filter((s): s is string => s !== null);
  return {
    ok,
    partial: !ok,
    summary: ok
      ? `Isolated ${instanceId}: ${done.join(', ')}. Evidence: ${evidence.summary.filename} (sha256 ${evidence.summary.sha256.slice(0, 16)}…), ${evidence.summary.snapshots.length} snapshot(s).`
      : `${instanceId} partly isolated: ${done.join(', ')}. NOT done: ${list(problems, 20)}.${adviceFor(errors)} Retry does the rest under the same approval; Undo puts back what was changed.`,
    facts: [
      ...evidenceFacts,
      ['Quarantine group', `${groupId} (${quarantine.created ? 'created' : 'reused'})`],
      ['Moved', list(result.moved, 20)],
      ['Problems', list(problems, 20)],
    ],
    data: result,
    files,
  };
}

/**
 * Reads back: every network interface of the instance on groups that all have no rules (the quarantine
 * group's rules read again), no instance profile, the tag, the evidence snapshots, and with stop=true a
 * stopping or stopped instance.
 */
async function verifyIsolate(
  ctx: RunContext,
  plan: Plan<IsolateData>,
  result: Outcome<IsolateResult>,
): Promise<Outcome> {
  const { DescribeSnapshotsCommand, EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { instanceId, vpcId } = plan.data;
  const groupId = result.data.quarantineGroupId;
  const [reading, rules, snapshots] = await Promise.all([
    readInstance(ec2, instanceId, vpcId),
    groupId ? groupRules(ec2, groupId) : Promise.resolve([]),
    ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [
          { Name: `tag:${TAG.runId}`, Values: [ctx.runId] },
          { Name: `tag:${TAG.evidence}`, Values: ['true'] },
        ],
      }),
    ),
  ]);
  const byId = new Map(reading.groups.map((g) => [g.GroupId ?? '', g]));
  const enis = enisOf(reading.instance);
  const outside = enis
    .filter((e) => !onlyOnQuarantine(e.groups, byId))
    .map((e) => `${e.eniId} (on ${e.groups.join(',')})`);
  const profileLeft = reading.profile?.IamInstanceProfile?.Arn ?? null;
  const tagOk = tagOf(reading.instance?.Tags, TAG.isolated) === ctx.runId;
  const state = reading.instance?.State?.Name ?? 'gone';
  const stopOk = !result.data.stopped || state === 'stopping' || state === 'stopped';
  const snapshotIds = new Set((snapshots.Snapshots ?? []).map((s) => s.SnapshotId));
  const missingSnapshots = (result.data.evidence?.snapshots ?? []).filter(
    (s) => !snapshotIds.has(s.snapshotId),
  );
  const problems = [
    ...(outside.length ? [`NOT isolated: ${list(outside)}`] : []),
    ...(rules.length ? [`quarantine group ${groupId} has ${rules.length} rule(s)`] : []),
    ...(profileLeft ? [`instance profile ${profileLeft} still associated`] : []),
    ...(tagOk ? [] : ['instance not tagged']),
    ...(stopOk ? [] : [`instance is ${state}, not stopped`]),
    ...(missingSnapshots.length
      ? [`snapshots not found: ${list(missingSnapshots.map((s) => s.snapshotId))}`]
      : []),
  ];
  const ok = problems.length === 0;
  return {
    ok,
    summary: ok
      ? `Verified: all ${enis.length} network interface(s) of ${instanceId} are on security groups with no rules, no instance profile, ${snapshotIds.size} evidence snapshot(s) present${result.data.stopped ? `, instance ${state}` : ''}.`
      : `Verification: ${problems.join('; ')}.`,
    facts: [
      ['Interfaces isolated', `${enis.length - outside.length}/${enis.length}`],
      ['Quarantine rules', rules.length === 0 ? 'none (verified)' : `${rules.length}`],
      ['Instance profile', profileLeft ?? 'none'],
    ],
    data: { outside, rules: rules.length, profileLeft, state, snapshots: snapshotIds.size },
  };
}

// ─── release (the Undo of isolate-instance, and the release-instance runbook) ──────────────────────────

/** What a release does, fixed at plan time. */
export type ReleaseData = {
  instanceId: string;
  vpcId: string;
  moves: { eniId: string; fromGroups: string[]; toGroups: string[] }[];
  /** The instance profile to associate again. */
  profileArn: string | null;
  /** Start the instance (isolate-instance stopped it). */
  start: boolean;
  /** The isolating runs whose tag is removed from the instance. */
  untag: string[];
  /** Quarantine groups quell created that nothing uses once the moves are done. */
  deleteGroupIds: string[];
  /** Recorded entries this release settles. */
  settle: { runId: string; key: string }[];
};

export type ReleaseResult = {
  restored: string[];
  failed: { eniId: string; error: string }[];
  profileRestored: boolean | null;
  started: boolean | null;
  untagged: boolean | null;
  deleted: string[];
  notDeleted: { groupId: string; error: string }[];
};

async function enisUsingGroups(
  ec2: EC2Client,
  groupIds: string[],
): Promise<{ eniId: string; groupId: string }[]> {
  const { paginateDescribeNetworkInterfaces } = await loadEc2();
  if (groupIds.length === 0) return [];
  const out: { eniId: string; groupId: string }[] = [];
  for await (const page of paginateDescribeNetworkInterfaces(
    { client: ec2 },
    { Filters: [{ Name: 'group-id', Values: groupIds }] },
  )) {
    for (const n of page.NetworkInterfaces ?? [])
      for (const g of n.Groups ?? [])
        if (n.NetworkInterfaceId && g.GroupId && groupIds.includes(g.GroupId))
          out.push({ eniId: n.NetworkInterfaceId, groupId: g.GroupId });
  }
  return out;
}

/** Plans putting back everything quell's isolations of the instance changed, from the ledger only. */
export async function planRelease(ctx: RunContext, instanceId: string): Promise<Plan<ReleaseData>> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const saved = await listSaved(ctx, instanceId);
  const where = `account \`${ctx.account.alias}\` (${ctx.account.id}), ${ctx.region}`;
  const open = saved.filter(
    (e) => e.value.kind !== 'evidence' && 'state' in e.value && e.value.state !== 'restored',
  );
  if (open.length === 0) {
    throw new PlanRefusedError(
      `quell has no open record of isolating \`${instanceId}\` in ${where}: there is nothing to release.`,
    );
  }
  const vpcId = open.flatMap((e) => (e.value.kind === 'eni' ? [e.value.vpcId] : []))[0];
  const quarantineIds = [
    ...new Set(open.flatMap((e) => (e.value.kind === 'eni' ? [e.value.quarantineGroupId] : []))),
  ].sort();
  const [reading, users] = await Promise.all([
    readInstance(ec2, instanceId, vpcId),
    enisUsingGroups(ec2, quarantineIds),
  ]);
  const { instance, profile, groups } = reading;
  if (!instance) {
    throw new PlanRefusedError(
      `\`${instanceId}\` no longer exists in ${where}: there is nothing to release.`,
    );
  }
  const byId = new Map(groups.map((g) => [g.GroupId ?? '', g]));
  const current = enisOf(instance);
  const notes: string[] = [];

  // The oldest open record of an ENI holds the groups it had before quell first moved it.
  const moves: ReleaseData['moves'] = [];
  const eniRecords = open.filter((e) => e.value.kind === 'eni');
  const byEni = new Map<string, SavedEntry[]>();
  for (const e of eniRecords)
    if (e.value.kind === 'eni') byEni.set(e.value.eniId, [...(byEni.get(e.value.eniId) ?? []), e]);
  for (const [eniId, records] of [...byEni].sort(([a], [b]) => a.localeCompare(b))) {
    const first = records[0]?.value;
    if (first?.kind !== 'eni') continue;
    const now = current.find((e) => e.eniId === eniId);
    if (!now) {
      notes.push(`${eniId} is no longer attached to ${instanceId}; nothing to put back.`);
      continue;
    }
    const toGroups = first.previousGroups.filter((id) => byId.has(id));
    const gone = first.previousGroups.filter((id) => !byId.has(id));
    const ownQuarantines = new Set(
      records.flatMap((r) => (r.value.kind === 'eni' ? [r.value.quarantineGroupId] : [])),
    );
    if (now.groups.join(',') === [...toGroups].sort().join(',')) {
      notes.push(`${eniId} is already back on ${toGroups.join(', ')}.`);
      continue;
    }
    if (!now.groups.every((g) => ownQuarantines.has(g))) {
      notes.push(
        `${eniId} is now on ${now.groups.join(', ')}, not on quell's quarantine group: someone changed it; left alone.`,
      );
      continue;
    }
    if (toGroups.length === 0) {
      notes.push(`${eniId}: every group it had (${gone.join(', ')}) is gone; left on the quarantine group.`);
      continue;
    }
    if (gone.length > 0)
      notes.push(`${eniId}: ${gone.join(', ')} no longer exist; it goes back to ${toGroups.join(', ')}.`);
    moves.push({ eniId, fromGroups: now.groups, toGroups });
  }

  // The instance profile: associated again unless someone associated another one meanwhile.
  let profileArn: string | null = null;
  const profileRecord = open.find((e) => e.value.kind === 'profile')?.value;
  if (profileRecord?.kind === 'profile' && profileRecord.state !== 'failed') {
    const now = profile?.IamInstanceProfile?.Arn;
    if (!now) profileArn = profileRecord.instanceProfileArn;
    else if (now === profileRecord.instanceProfileArn)
      notes.push(`The instance profile ${now} is already associated.`);
    else
      notes.push(
        `The instance now has another instance profile (${now}); ${profileRecord.instanceProfileArn} is not associated again.`,
      );
  }

  // Started again only when an isolation stopped it and it is still stopped.
  const instanceRecords = open.flatMap((e) =>
    e.value.kind === 'instance' ? [{ runId: e.runId, value: e.value }] : [],
  );
  const stoppedByQuell = instanceRecords.some((r) => r.value.stopped);
  const state = instance.State?.Name ?? 'unknown';
  const start = stoppedByQuell && state === 'stopped';
  if (stoppedByQuell && !start)
    notes.push(`isolate-instance stopped the instance; it is ${state} now, so it is not started.`);
  const untag = instanceRecords
    .filter((r) => r.value.tagged && tagOf(instance.Tags, TAG.isolated) === r.runId)
    .map((r) => r.runId);

  // Quarantine groups quell created, that no other network interface uses once these move back.
  const movedAway = new Set(moves.map((m) => m.eniId));
  const deleteGroupIds: string[] = [];
  for (const id of quarantineIds) {
    const group = byId.get(id);
    if (!group || !vpcId || !hasQuarantineTag(group, vpcId)) continue;
    const staying = users.filter((u) => u.groupId === id && !movedAway.has(u.eniId)).map((u) => u.eniId);
    if (staying.length === 0) deleteGroupIds.push(id);
    else notes.push(`Quarantine group ${id} is kept: ${list([...new Set(staying)])} still use it.`);
  }
  if (moves.length === 0 && !profileArn && !start && untag.length === 0 && deleteGroupIds.length === 0) {
    throw new PlanRefusedError(
      `Nothing to release on \`${instanceId}\`: ${notes.length ? notes.join(' ') : 'everything recorded is back.'}`,
    );
  }
  if (profileArn)
    notes.push(
      'Associating the instance profile again needs `iam:PassRole` on its role (the respond role has it).',
    );

  const calls: PlannedCall[] = [
    ...moves.map((m) => ({
      action: 'ec2:ModifyNetworkInterfaceAttribute',
      params: { NetworkInterfaceId: m.eniId, Groups: m.toGroups.join(','), now: m.fromGroups.join(',') },
    })),
    ...(profileArn
      ? [
          {
            action: 'ec2:AssociateIamInstanceProfile',
            params: { InstanceId: instanceId, IamInstanceProfile: profileArn },
          },
        ]
      : []),
    ...(start ? [{ action: 'ec2:StartInstances', params: { InstanceIds: instanceId } }] : []),
    ...untag.map((runId) => ({
      action: 'ec2:DeleteTags',
      params: {
        Resources: instanceId,
        Tags: `${TAG.isolated}=${runId}, quell-quarantine-group, quell-evidence-sha256`,
      },
    })),
    ...deleteGroupIds.map((id) => ({ action: 'ec2:DeleteSecurityGroup', params: { GroupId: id } })),
  ];
  const name = tagOf(instance.Tags, 'Name');
  return {
    summary: `Release ${instanceId}${name ? ` (${name})` : ''}: put ${moves.length} network interface(s) back on their previous groups${profileArn ? ', associate its instance profile again' : ''}${start ? ', start it' : ''}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      ['Instance', `${instanceId}${name ? ` (${name})` : ''}, ${state}`],
      [
        'Network interface → restored groups',
        moves
          .map((m) => `${m.eniId}: ${m.fromGroups.join(',')} → ${describeGroups(m.toGroups, byId)}`)
          .join('\n') || 'none',
      ],
      ['Instance profile', profileArn ?? 'unchanged'],
      ['Start', start ? 'yes' : 'no'],
      ['Quarantine groups deleted', list(deleteGroupIds)],
    ],
    calls,
    notes,
    material: {
      instanceId,
      moves: Object.fromEntries(moves.map((m) => [m.eniId, m.fromGroups.join(',')])),
      profileArn,
      start,
    },
    data: {
      instanceId,
      vpcId: vpcId ?? instance.VpcId ?? '',
      moves,
      profileArn,
      start,
      untag,
      deleteGroupIds,
      settle: open.map((e) => ({ runId: e.runId, key: e.key })),
    },
  };
}

const releaseRechecked = new WeakMap<RunContext, InstanceReading>();

/** Re-reads the instance; an ENI or profile already put back by an earlier attempt counts as unchanged. */
export async function recheckRelease(ctx: RunContext, plan: Plan<ReleaseData>): Promise<Json> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { instanceId, vpcId } = plan.data;
  const reading = await readInstance(ec2, instanceId, vpcId);
  releaseRechecked.set(ctx, reading);
  const current = enisOf(reading.instance);
  const moves: Record<string, string> = {};
  for (const m of plan.data.moves) {
    const now = current.find((e) => e.eniId === m.eniId)?.groups.join(',') ?? 'gone';
    moves[m.eniId] = now === [...m.toGroups].sort().join(',') ? m.fromGroups.join(',') : now;
  }
  const now = reading.profile?.IamInstanceProfile?.Arn;
  const state = reading.instance?.State?.Name;
  return {
    instanceId,
    moves,
    profileArn: plan.data.profileArn && (!now || now === plan.data.profileArn) ? plan.data.profileArn : null,
    start: plan.data.start && (state === 'stopped' || state === 'pending' || state === 'running'),
  };
}

/** Puts every ENI back and the profile, starts the instance, removes the tag (all at once), then deletes the groups. */
export async function executeRelease(
  ctx: RunContext,
  plan: Plan<ReleaseData>,
): Promise<Outcome<ReleaseResult>> {
  const {
    AssociateIamInstanceProfileCommand,
    DeleteSecurityGroupCommand,
    DeleteTagsCommand,
    EC2Client,
    ModifyNetworkInterfaceAttributeCommand,
    StartInstancesCommand,
  } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { instanceId, vpcId, moves, profileArn, start, untag, deleteGroupIds, settle } = plan.data;
  const seen = releaseRechecked.get(ctx);
  releaseRechecked.delete(ctx);
  const reading = seen ?? (await readInstance(ec2, instanceId, vpcId));
  const current = enisOf(reading.instance);
  const result: ReleaseResult = {
    restored: [],
    failed: [],
    profileRestored: null,
    started: null,
    untagged: null,
    deleted: [],
    notDeleted: [],
  };
  const isBack = (m: ReleaseData['moves'][number]) =>
    current.find((e) => e.eniId === m.eniId)?.groups.join(',') === [...m.toGroups].sort().join(',');
  const toMove = moves.filter((m) => current.some((e) => e.eniId === m.eniId) && !isBack(m));
  result.restored.push(...moves.filter(isBack).map((m) => m.eniId));
  for (const m of moves)
    if (!current.some((e) => e.eniId === m.eniId))
      result.failed.push({ eniId: m.eniId, error: 'no longer attached' });
  const associate = profileArn !== null && !reading.profile;
  if (profileArn && reading.profile?.IamInstanceProfile?.Arn === profileArn) result.profileRestored = true;
  const state = reading.instance?.State?.Name;
  const doStart = start && state === 'stopped';
  if (start && !doStart) result.started = state === 'pending' || state === 'running';

  const settledCall = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (error: unknown) => error,
    );
  const [moved, associated, started, untagged] = await Promise.all([
    Promise.allSettled(
      toMove.map((m) =>
        ec2.send(
          new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: m.eniId, Groups: m.toGroups }),
          {
            abortSignal: ctx.signal,
          },
        ),
      ),
    ),
    associate
      ? settledCall(
          ec2.send(
            new AssociateIamInstanceProfileCommand({
              InstanceId: instanceId,
              IamInstanceProfile: { Arn: profileArn },
            }),
            { abortSignal: ctx.signal },
          ),
        )
      : Promise.resolve(undefined),
    doStart
      ? settledCall(
          ec2.send(new StartInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: ctx.signal }),
        )
      : Promise.resolve(undefined),
    untag.length > 0
      ? settledCall(
          ec2.send(
            new DeleteTagsCommand({
              Resources: [instanceId],
              Tags: [
                ...untag.map((runId) => ({ Key: TAG.isolated, Value: runId })),
                { Key: 'quell-quarantine-group' },
                { Key: 'quell-evidence-sha256' },
              ],
            }),
            { abortSignal: ctx.signal },
          ),
        )
      : Promise.resolve(undefined),
  ]);
  moved.forEach((outcome, i) => {
    const m = toMove[i];
    if (!m) return;
    if (outcome.status === 'fulfilled') result.restored.push(m.eniId);
    else result.failed.push({ eniId: m.eniId, error: errorCodeOf(outcome.reason) });
  });
  if (associate) result.profileRestored = associated === null;
  if (doStart) result.started = started === null;
  if (untag.length > 0) result.untagged = untagged === null;

  // A quarantine group still holding an ENI that failed to move back cannot be deleted (AWS refuses anyway).
  const failedEnis = new Set(result.failed.map((f) => f.eniId));
  const stillUsed = new Set(moves.filter((m) => failedEnis.has(m.eniId)).flatMap((m) => m.fromGroups));
  const deletable = deleteGroupIds.filter((id) => !stillUsed.has(id));
  for (const id of deleteGroupIds)
    if (stillUsed.has(id)) result.notDeleted.push({ groupId: id, error: 'still in use' });
  const deleted = await Promise.allSettled(
    deletable.map((id) =>
      ec2.send(new DeleteSecurityGroupCommand({ GroupId: id }), { abortSignal: ctx.signal }),
    ),
  );
  deleted.forEach((outcome, i) => {
    const id = deletable[i];
    if (!id) return;
    if (outcome.status === 'fulfilled') result.deleted.push(id);
    else result.notDeleted.push({ groupId: id, error: errorCodeOf(outcome.reason) });
  });

  const problems = [
    ...result.failed.map((f) => `${f.eniId} not restored (${f.error})`),
    ...(result.profileRestored === false
      ? [`instance profile not associated (${errorCodeOf(associated)})`]
      : []),
    ...(result.started === false ? [`instance not started (${errorCodeOf(started)})`] : []),
    ...(result.untagged === false ? [`tag not removed (${errorCodeOf(untagged)})`] : []),
    ...result.notDeleted.map((d) => `${d.groupId} not deleted (${d.error})`),
  ];
  const ok = problems.length === 0;

  // Settle the records of what is back: every entry unless its ENI or the profile failed.
  const saved = await listSaved(ctx, instanceId);
  const keys = new Set(settle.map((s) => `${s.runId}/${s.key}`));
  await settleSaved(
    ctx,
    saved
      .filter((e) => keys.has(`${e.runId}/${e.key}`))
      .filter((e) => !(e.value.kind === 'eni' && failedEnis.has(e.value.eniId)))
      .filter((e) => !(e.value.kind === 'profile' && result.profileRestored === false))
      .filter(
        (e) => !(e.value.kind === 'instance' && (result.started === false || result.untagged === false)),
      )
      .flatMap((e) =>
        'state' in e.value ? [{ runId: e.runId, value: { ...e.value, state: 'restored' as const } }] : [],
      ),
  );
  const errors = [...moved, ...deleted].map((o) => (o.status === 'rejected' ? o.reason : null));
  return {
    ok,
    partial:
      !ok && (result.restored.length > 0 || result.profileRestored === true || result.deleted.length > 0),
    summary: ok
      ? `Released ${instanceId}: ${result.restored.length} network interface(s) back on their previous groups${result.profileRestored ? `, instance profile ${profileArn} associated` : ''}${result.started ? ', started' : ''}${result.deleted.length ? `; deleted ${list(result.deleted)}` : ''}.`
      : `${instanceId} partly released: ${result.restored.length} of ${moves.length} network interface(s) back. ${list(problems, 20)}.${adviceFor([...errors, associated, started, untagged])}`,
    facts: [
      ['Restored', list(result.restored, 20)],
      ['Instance profile', result.profileRestored ? (profileArn ?? '') : 'unchanged'],
      ['Deleted', list(result.deleted)],
      ['Problems', list(problems, 20)],
    ],
    data: result,
  };
}

/** Reads back: every moved ENI on its previous groups, the profile associated, deleted groups gone. */
export async function verifyRelease(
  ctx: RunContext,
  plan: Plan<ReleaseData>,
  result: Outcome<ReleaseResult>,
): Promise<Outcome> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const reading = await readInstance(ec2, plan.data.instanceId, plan.data.vpcId);
  const current = enisOf(reading.instance);
  const wrong = plan.data.moves
    .filter((m) => current.some((e) => e.eniId === m.eniId))
    .filter(
      (m) => current.find((e) => e.eniId === m.eniId)?.groups.join(',') !== [...m.toGroups].sort().join(','),
    )
    .map((m) => m.eniId);
  const profileOk =
    !plan.data.profileArn || reading.profile?.IamInstanceProfile?.Arn === plan.data.profileArn;
  const lingering = result.data.deleted.filter((id) => reading.groups.some((g) => g.GroupId === id));
  const ok = wrong.length === 0 && profileOk && lingering.length === 0;
  return {
    ok,
    summary: ok
      ? `Verified: every network interface is back on its previous groups${plan.data.profileArn ? ' and the instance profile is associated' : ''}.`
      : `Verification: ${[
          wrong.length ? `not back: ${list(wrong)}` : '',
          profileOk ? '' : `instance profile is ${reading.profile?.IamInstanceProfile?.Arn ?? 'none'}`,
          lingering.length ? `still present: ${list(lingering)}` : '',
        ]
          .filter(Boolean)
          .join('; ')}.`,
    facts: [
      ['Interfaces back', `${plan.data.moves.length - wrong.length}/${plan.data.moves.length}`],
      ['Instance state', reading.instance?.State?.Name ?? 'gone'],
    ],
    data: { wrong, profileOk, lingering },
  };
}

/** IAM actions of the release (Undo and release-instance). */
export const RELEASE_IAM = [
  'ec2:DescribeInstances',
  'ec2:DescribeIamInstanceProfileAssociations',
  'ec2:DescribeSecurityGroups',
  'ec2:ModifyNetworkInterfaceAttribute',
  'ec2:AssociateIamInstanceProfile',
  // AssociateIamInstanceProfile passes the profile's role to EC2: AWS checks iam:PassRole, no call of its own.
  'iam:PassRole',
  'ec2:StartInstances',
  'ec2:DeleteTags',
  'ec2:DeleteSecurityGroup',
];

/**
 * Role-wide limits (`quell iam-policy`): the respond role tags only what an isolation tags — an instance
 * as isolated, and the quarantine group and evidence snapshots as they are created — and removes tags,
 * revokes egress and deletes groups only on what quell tagged.
 */
export const INSTANCE_ROLE_LIMITS: RoleLimit[] = [
  {
    sid: 'TagIsolatedInstances',
    actions: ['ec2:CreateTags'],
    resources: ['arn:*:ec2:*:*:instance/*'],
    conditions: { StringLike: { [`aws:RequestTag/${TAG.isolated}`]: 'r*' } },
  },
  {
    sid: 'TagQuarantineGroupsOnCreate',
    actions: ['ec2:CreateTags'],
    resources: ['arn:*:ec2:*:*:security-group/*'],
    conditions: {
      StringEquals: { 'ec2:CreateAction': 'CreateSecurityGroup' },
      StringLike: { [`aws:RequestTag/${TAG.quarantine}`]: 'vpc-*' },
    },
  },
  {
    sid: 'TagEvidenceSnapshotsOnCreate',
    actions: ['ec2:CreateTags'],
    resources: ['arn:*:ec2:*:*:snapshot/*'],
    conditions: {
      StringEquals: { 'ec2:CreateAction': 'CreateSnapshot', [`aws:RequestTag/${TAG.evidence}`]: 'true' },
    },
  },
  {
    sid: 'QuarantineGroupsOnly',
    actions: ['ec2:RevokeSecurityGroupEgress', 'ec2:DeleteSecurityGroup'],
    resources: ['arn:*:ec2:*:*:security-group/*'],
    conditions: { StringLike: { [`aws:ResourceTag/${TAG.quarantine}`]: 'vpc-*' } },
  },
  {
    // Release associates the instance profile again, which passes its role to EC2: only to EC2.
    sid: 'PassRolesToEc2Only',
    actions: ['iam:PassRole'],
    resources: ['arn:*:iam::*:role/*'],
    conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
  },
  {
    sid: 'UntagIsolatedInstances',
    actions: ['ec2:DeleteTags'],
    resources: ['arn:*:ec2:*:*:instance/*'],
    conditions: { StringLike: { [`aws:ResourceTag/${TAG.isolated}`]: 'r*' } },
  },
];

/** The runbook. */
export const isolateInstance = defineRunbook({
  id: 'isolate-instance',
  title: 'Isolate an EC2 instance behind a quarantine security group',
  risk: 'destructive',
  description:
    'capture evidence (metadata, console output, EBS snapshots), then move every network interface of an instance onto a security group with no rules and remove its instance profile',
  usage: 'isolate-instance i-0abc… [account=prod] [region=eu-west-1] [stop=true] [reason="…"]',
  input: IsolateInstanceInputSchema,
  access: 'respond',
  iam: {
    // DescribeNetworkInterfaces: the release plan (read role) finds who else uses a quarantine group.
    plan: [
      'ec2:DescribeInstances',
      'ec2:DescribeIamInstanceProfileAssociations',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeNetworkInterfaces',
    ],
    // ec2:CreateTags is also what tagging on create (TagSpecifications) needs.
    execute: [
      'ec2:DescribeInstances',
      'ec2:DescribeIamInstanceProfileAssociations',
      'ec2:DescribeSecurityGroups',
      'ec2:GetConsoleOutput',
      'ec2:CreateSnapshot',
      'ec2:CreateSecurityGroup',
      'ec2:CreateTags',
      'ec2:DescribeSecurityGroupRules',
      'ec2:RevokeSecurityGroupEgress',
      'ec2:ModifyNetworkInterfaceAttribute',
      'ec2:DisassociateIamInstanceProfile',
      'ec2:StopInstances',
      'ec2:DescribeSnapshots',
    ],
    undo: RELEASE_IAM,
    limits: INSTANCE_ROLE_LIMITS,
  },
  plan: planIsolate,
  recheck: recheckIsolate,
  execute: executeIsolate,
  verify: verifyIsolate,
  undo: {
    title: 'Put every network interface back on its groups, associate the instance profile again',
    plan: (ctx, source) => planRelease(ctx, source.plan.data.instanceId),
    recheck: recheckRelease,
    execute: executeRelease,
    verify: verifyRelease,
  },
});
