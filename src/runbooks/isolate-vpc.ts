/**
 * isolate-vpc: move every subnet of a VPC onto a deny-all quarantine network ACL (optionally still
 * allowing one forensic network), recording each subnet's previous ACL in the store before it is moved.
 * The restore procedure here (the run's Undo, and the `restore-vpc` runbook) puts each subnet back from
 * that record and deletes the quarantine ACL once no subnet uses it.
 *
 * Round trips: the plan reads everything in one parallel wave; execution is recheck (1), create the ACL
 * (1, skipped when one is reused), write its rules (1, all in parallel), move every subnet (1, all in
 * parallel, paced by the EC2 rate limiter), verify (1) — independent of the number of subnets.
 */
import type { EC2Client, NetworkAcl, NetworkAclEntry, Tag } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import type { PolicyConditions, SessionGrant, SessionTarget } from '../aws/build-session-policy.ts';
import type { RateLimit } from '../aws/rate-limits.ts';
import {
  AwsAccessDeniedError,
  AwsCallFailedError,
  AwsResourceNotFoundError,
  AwsThrottledError,
  PlanRefusedError,
  QuellError,
} from '../errors.ts';
import type { Json } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  type EvidenceDocument,
  ForceOptionSchema,
  type Outcome,
  type Plan,
  type PlannedCall,
  ReasonOptionSchema,
  RegionOptionSchema,
  type RoleLimit,
  type RunContext,
  type RunLedger,
} from './define-runbook.ts';
import { ForensicCidrSchema, parseCidr } from './parse-cidr.ts';
import { typedLedger } from './run-ledger.ts';

/** The EC2 SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadEc2 = () => import('@aws-sdk/client-ec2');

/** VPC ids: `vpc-` and 8 (older) or 17 hexadecimal digits. */
export const VpcIdSchema = z
  .string()
  .regex(
    /^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/,
    'a VPC id is vpc- followed by 8 or 17 hexadecimal digits, like vpc-0abc1234def567890',
  );

const IsolateVpcInputSchema = z
  .object({
    positional: z.tuple([VpcIdSchema], { error: 'give exactly one VPC id' }),
    options: z
      .object({
        account: AccountOptionSchema,
        region: RegionOptionSchema,
        allow: ForensicCidrSchema.optional(),
        reason: ReasonOptionSchema,
        force: ForceOptionSchema,
      })
      .strict(),
  })
  .transform(({ positional: [vpcId], options }) => ({
    vpcId,
    account: options.account,
    region: options.region,
    reason: options.reason,
    allow: options.allow?.cidr ?? null,
    force: options.force ?? false,
  }));

type IsolateVpcInput = z.infer<typeof IsolateVpcInputSchema>;

/** Tags on a quarantine ACL: which VPC it quarantines, the run that created it, and what it allows. */
export const TAG = {
  quarantine: 'quell-quarantine',
  runId: 'quell-run-id',
  allow: 'quell-allow',
} as const;

// Custom rule numbers run from 1 to 32766 (32767 is AWS's own catch-all deny). The deny-all rules sit at
// the bottom, the forensic allow near the top, so the allow is evaluated first.
const ALLOW_RULE = 100;
const DENY_IPV4_RULE = 32765;
const DENY_IPV6_RULE = 32766;
const AWS_DEFAULT_RULE = 32767;

/** One network-ACL rule quell writes: all protocols, one direction, one network. */
export interface QuarantineRule {
  ruleNumber: number;
  egress: boolean;
  action: 'allow' | 'deny';
  cidr: string;
  ipv6: boolean;
}

/**
 * The quarantine ACL's rules: explicit deny-all in both directions for IPv4 and IPv6 (AWS adds a `*`
 * deny to new ACLs, but an explicit rule does not depend on that, and moto adds none), and, with a
 * forensic network, an allow in both directions (network ACLs are stateless: replies need the egress rule).
 */
export function quarantineRules(allow: string | null): QuarantineRule[] {
  const rules: QuarantineRule[] = [];
  for (const egress of [false, true]) {
    if (allow) {
      const ipv6 = allow.includes(':');
      rules.push({ ruleNumber: ALLOW_RULE, egress, action: 'allow', cidr: allow, ipv6 });
    }
    rules.push({ ruleNumber: DENY_IPV4_RULE, egress, action: 'deny', cidr: '0.0.0.0/0', ipv6: false });
    rules.push({ ruleNumber: DENY_IPV6_RULE, egress, action: 'deny', cidr: '::/0', ipv6: true });
  }
  return rules;
}

function hasRule(entries: NetworkAclEntry[] | undefined, rule: QuarantineRule): boolean {
  return (entries ?? []).some(
    (e) =>
      e.RuleNumber === rule.ruleNumber &&
      e.Egress === rule.egress &&
      e.RuleAction === rule.action &&
      e.Protocol === '-1' &&
      (rule.ipv6 ? e.Ipv6CidrBlock === rule.cidr : e.CidrBlock === rule.cidr),
  );
}

/**
 * The rules an ACL's owner wrote: everything except AWS's own catch-all deny at rule 32767, which no API
 * call can create, change or delete (an entry numbered 32767 that allows is not AWS's, and counts).
 */
function ownEntries(acl: NetworkAcl): NetworkAclEntry[] {
  return (acl.Entries ?? []).filter((e) => !(e.RuleNumber === AWS_DEFAULT_RULE && e.RuleAction === 'deny'));
}

/** Whether an ACL's own rules (ignoring AWS's catch-all) are exactly the quarantine rules for `allow`. */
function hasExactlyRules(acl: NetworkAcl, allow: string | null): boolean {
  const own = ownEntries(acl);
  const wanted = quarantineRules(allow);
  return own.length === wanted.length && wanted.every((rule) => hasRule(own, rule));
}

/** The ACL's own rules that are not among the quarantine rules for `allow`, described for a summary. */
function foreignRules(acl: NetworkAcl, allow: string | null): string[] {
  const wanted = quarantineRules(allow);
  return ownEntries(acl)
    .filter((e) => !wanted.some((rule) => hasRule([e], rule)))
    .map(
      (e) =>
        `rule ${e.RuleNumber} ${e.Egress ? 'egress' : 'ingress'} ${e.RuleAction} ${e.CidrBlock ?? e.Ipv6CidrBlock ?? ''}`,
    );
}

/** Why an ACL that is not a quarantine is not one: the rules it has beyond the quarantine's, else the missing ones. */
function whyNotQuarantine(acl: NetworkAcl | undefined, allow: string | null): string {
  if (!acl) return 'the ACL is gone';
  const extra = foreignRules(acl, allow);
  return extra.length > 0 ? `it has ${list(extra, 3)}` : 'its deny-all rules are missing';
}

/**
 * Whether `acl` isolates the subnets on it, judged by its rules alone: exactly the deny-all entries (both
 * directions, IPv4 and IPv6) and nothing else, or those plus the forensic allow `allow` that this run
 * asked for. Tags prove nothing: anyone who may tag an ACL can tag an allow-all one `quell-quarantine`.
 */
export function enforcesQuarantine(acl: NetworkAcl, allow: string | null): boolean {
  return hasExactlyRules(acl, null) || (allow !== null && hasExactlyRules(acl, allow));
}

function tagOf(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/**
 * Whether `acl` carries quell's quarantine tag for `vpcId`: a label that finds the ACLs quell created
 * (to reuse, restore from or delete), never proof that a subnet on it is isolated (see enforcesQuarantine).
 */
export function hasQuarantineTag(acl: NetworkAcl, vpcId: string): boolean {
  return tagOf(acl.Tags, TAG.quarantine) === vpcId;
}

// ─── the record of each moved subnet (the run ledger) ─────────────────────────────────────────────────

/** Where one subnet stands in a VPC isolation. */
export type AclAssociationState = 'recorded' | 'isolated' | 'failed' | 'restored';

/**
 * A subnet's network-ACL association as it was before isolate-vpc moved it to a quarantine ACL, written
 * to the isolating run's ledger (key `acl/<account>/<region>/<vpc>/<subnet>`) before the move, so that
 * restore-vpc (or the run's Undo) can put it back. `previousAclId` is written once and never changed, so
 * a retry cannot overwrite the original.
 */
const SavedAclSchema = z.object({
  subnetId: z.string(),
  /** The ACL the subnet was on before the run moved it. */
  previousAclId: z.string(),
  /** The quarantine ACL the run moves it to. */
  quarantineAclId: z.string(),
  state: z.enum(['recorded', 'isolated', 'failed', 'restored']),
  /** Why the move (or the restore) failed, as an AWS error code; null otherwise. */
  error: z.string().nullable(),
});

/** A recorded subnet with the run that recorded it, as restore reads it back. */
export type SavedAclAssociation = z.infer<typeof SavedAclSchema> & {
  runId: string;
  recordedAt: number;
  updatedAt: number;
};

/** A change of state of one recorded subnet. */
type AclStateChange = { runId: string; subnetId: string; state: AclAssociationState; error: string | null };

/** Where one VPC's records live in the ledger. */
function aclPrefix(where: { accountId: string; region: string; vpcId: string }): string {
  return `acl/${where.accountId}/${where.region}/${where.vpcId}/`;
}

/** The recorded subnets of one VPC (of one run, when given), oldest first. */
export async function listSavedAcls(
  ledger: RunLedger,
  where: { accountId: string; region: string; vpcId: string; runId?: string },
): Promise<SavedAclAssociation[]> {
  const entries = await typedLedger(ledger, SavedAclSchema).list({
    prefix: aclPrefix(where),
    ...(where.runId !== undefined ? { runId: where.runId } : {}),
  });
  return entries.map((e) => ({
    ...e.value,
    runId: e.runId,
    recordedAt: e.recordedAt,
    updatedAt: e.updatedAt,
  }));
}

/** Records subnets before they move; a subnet this run already recorded keeps its original record. */
async function recordSavedAcls(
  ctx: RunContext,
  vpcId: string,
  rows: { subnetId: string; previousAclId: string; quarantineAclId: string }[],
): Promise<void> {
  const prefix = aclPrefix({ accountId: ctx.account.id, region: ctx.region, vpcId });
  await typedLedger(ctx.ledger, SavedAclSchema).put(
    rows.map((r) => ({
      runId: ctx.runId,
      key: `${prefix}${r.subnetId}`,
      value: { ...r, state: 'recorded', error: null },
    })),
  );
}

/** Changes the state of recorded subnets (of any run of the VPC); a subnet with no record is skipped. */
async function settleSavedAcls(ctx: RunContext, vpcId: string, changes: AclStateChange[]): Promise<void> {
  if (changes.length === 0) return;
  const where = { accountId: ctx.account.id, region: ctx.region, vpcId };
  const recorded = new Map(
    (await listSavedAcls(ctx.ledger, where)).map((r) => [`${r.runId}/${r.subnetId}`, r]),
  );
  await typedLedger(ctx.ledger, SavedAclSchema).update(
    changes.flatMap((c) => {
      const saved = recorded.get(`${c.runId}/${c.subnetId}`);
      if (!saved) return [];
      const { runId, recordedAt, updatedAt, ...value } = saved;
      return [
        {
          runId,
          key: `${aclPrefix(where)}${c.subnetId}`,
          value: { ...value, state: c.state, error: c.error },
        },
      ];
    }),
  );
}

/** Every network ACL of the VPC, with its rules, tags and subnet associations. */
export async function listVpcAcls(ec2: EC2Client, vpcId: string): Promise<NetworkAcl[]> {
  const { paginateDescribeNetworkAcls } = await loadEc2();
  const acls: NetworkAcl[] = [];
  for await (const page of paginateDescribeNetworkAcls(
    { client: ec2 },
    { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
  )) {
    acls.push(...(page.NetworkAcls ?? []));
  }
  return acls;
}

/** Which ACL each subnet of the VPC is associated with. */
function associationsOf(acls: NetworkAcl[]): Map<string, { aclId: string; associationId: string }> {
  const map = new Map<string, { aclId: string; associationId: string }>();
  for (const acl of acls) {
    for (const a of acl.Associations ?? []) {
      if (a.SubnetId && a.NetworkAclAssociationId && acl.NetworkAclId) {
        map.set(a.SubnetId, { aclId: acl.NetworkAclId, associationId: a.NetworkAclAssociationId });
      }
    }
  }
  return map;
}

/**
 * The reading of the VPC's ACLs that the recheck made, handed to execute of the same attempt: they run
 * back to back in one engine call with the same context, so execute need not read the ACLs again.
 */
const rechecked = new WeakMap<RunContext, NetworkAcl[]>();

async function aclsForExecute(ctx: RunContext, ec2: EC2Client, vpcId: string): Promise<NetworkAcl[]> {
  const seen = rechecked.get(ctx);
  rechecked.delete(ctx);
  return seen ?? listVpcAcls(ec2, vpcId);
}

/** The AWS error code of a failed call, for the record and the summary. */
function errorCodeOf(error: unknown): string {
  if (error instanceof AwsCallFailedError) return error.awsCode;
  if (error instanceof AwsAccessDeniedError) return 'AccessDenied';
  if (error instanceof AwsThrottledError) return 'Throttled';
  if (error instanceof QuellError) return error.code;
  return error instanceof Error ? error.name : 'Error';
}

/**
 * What to do about failures that have a fix: an AccessDenied names the missing action and the role, a
 * throttle says to wait. Each distinct message once, for the end of a summary.
 */
function adviceFor(errors: unknown[]): string {
  const messages = new Set(
    errors
      .filter((e) => e instanceof AwsAccessDeniedError || e instanceof AwsThrottledError)
      .map((e) => (e as Error).message),
  );
  return messages.size > 0 ? ` ${[...messages].join(' ')}` : '';
}

function list(items: string[], max = 8): string {
  if (items.length === 0) return 'none';
  return items.length > max
    ? `${items.slice(0, max).join(', ')} and ${items.length - max} more`
    : items.join(', ');
}

function describeAllow(allow: string | null): string {
  if (!allow) return 'nothing, in either direction (IPv4 and IPv6)';
  const cidr = parseCidr(allow);
  return `only ${allow} (${cidr.size} address${cidr.size === '1' ? '' : 'es'}), all protocols and ports, both directions`;
}

// ─── isolate ─────────────────────────────────────────────────────────────────────────────────────────

/** What execute needs, fixed at plan time. */
type IsolateData = {
  vpcId: string;
  allow: string | null;
  /** A quarantine ACL left in the VPC by an earlier run, with exactly the wanted rules; null: create one. */
  reuseAclId: string | null;
  /** The subnets to move, with the ACL each is on. */
  moves: { subnetId: string; aclId: string }[];
  /** Subnets already on a quell quarantine ACL: left where they are. */
  alreadyQuarantined: { subnetId: string; aclId: string }[];
};

type IsolateResult = {
  quarantineAclId: string | null;
  created: boolean;
  isolated: string[];
  failed: { subnetId: string; error: string }[];
  rulesWritten: number;
  ruleFailures: string[];
};

/** The facts the approval rests on, in the same shape for the plan and the recheck. */
function isolateMaterial(
  ctx: RunContext,
  data: { vpcId: string; allow: string | null; isDefault: boolean },
  acls: NetworkAcl[],
  own: { subnetId: string; previousAclId: string; quarantineAclId: string }[],
): Json {
  const subnets: Record<string, string> = {};
  // Subnets the plan leaves where they are because their ACL's rules already deny all traffic: the
  // approval rests on those rules too, so opening one of those ACLs after the plan supersedes the run.
  const alreadyIsolated: string[] = [];
  const aclById = new Map(acls.map((a) => [a.NetworkAclId ?? '', a]));
  for (const [subnetId, { aclId }] of associationsOf(acls)) {
    // A subnet this run already moved counts as being on the ACL it was on when the run was approved, so
    // that a retry of a partly applied run is not taken for a changed world.
    const mine = own.find((r) => r.subnetId === subnetId && r.quarantineAclId === aclId);
    subnets[subnetId] = mine ? mine.previousAclId : aclId;
    const acl = aclById.get(aclId);
    if (!mine && acl && enforcesQuarantine(acl, data.allow)) alreadyIsolated.push(subnetId);
  }
  return {
    accountId: ctx.account.id,
    region: ctx.region,
    vpcId: data.vpcId,
    isDefault: data.isDefault,
    allow: data.allow,
    subnets,
    alreadyIsolated: alreadyIsolated.sort(),
    reusableAclId: findReusableAcl(acls, data.vpcId, data.allow, ctx.runId)?.NetworkAclId ?? null,
  };
}

/** A quarantine ACL of another run with exactly the wanted rules, preferring one that is in use. */
function findReusableAcl(
  acls: NetworkAcl[],
  vpcId: string,
  allow: string | null,
  runId: string,
): NetworkAcl | undefined {
  return acls
    .filter(
      (a) => hasQuarantineTag(a, vpcId) && tagOf(a.Tags, TAG.runId) !== runId && hasExactlyRules(a, allow),
    )
    .sort(
      (a, b) =>
        (b.Associations?.length ?? 0) - (a.Associations?.length ?? 0) ||
        String(a.NetworkAclId).localeCompare(String(b.NetworkAclId)),
    )[0];
}

async function describeVpc(ec2: EC2Client, vpcId: string) {
  const { DescribeVpcsCommand } = await loadEc2();
  // A filter instead of VpcIds: an unknown id then reads as "no VPC" rather than an error.
  const out = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }));
  return out.Vpcs?.[0];
}

async function listSubnets(ec2: EC2Client, vpcId: string) {
  const { paginateDescribeSubnets } = await loadEc2();
  const subnets = [];
  for await (const page of paginateDescribeSubnets(
    { client: ec2 },
    { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
  )) {
    subnets.push(...(page.Subnets ?? []));
  }
  return subnets;
}

async function listInstances(ec2: EC2Client, vpcId: string) {
  const { paginateDescribeInstances } = await loadEc2();
  const instances: { id: string; subnetId: string | undefined }[] = [];
  for await (const page of paginateDescribeInstances(
    { client: ec2 },
    {
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ],
    },
  )) {
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? [])
        if (i.InstanceId) instances.push({ id: i.InstanceId, subnetId: i.SubnetId });
    }
  }
  return instances;
}

async function listNetworkInterfaces(ec2: EC2Client, vpcId: string) {
  const { paginateDescribeNetworkInterfaces } = await loadEc2();
  const enis: { id: string; subnetId: string | undefined; type: string | undefined }[] = [];
  for await (const page of paginateDescribeNetworkInterfaces(
    { client: ec2 },
    { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
  )) {
    for (const n of page.NetworkInterfaces ?? []) {
      if (n.NetworkInterfaceId)
        enis.push({ id: n.NetworkInterfaceId, subnetId: n.SubnetId, type: n.InterfaceType });
    }
  }
  return enis;
}

async function planIsolate(ctx: RunContext, input: IsolateVpcInput): Promise<Plan<IsolateData>> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId, allow } = input;
  // Everything the plan needs, read in one parallel wave.
  const [vpc, subnets, acls, instances, enis] = await Promise.all([
    describeVpc(ec2, vpcId),
    listSubnets(ec2, vpcId),
    listVpcAcls(ec2, vpcId),
    listInstances(ec2, vpcId),
    listNetworkInterfaces(ec2, vpcId),
  ]);
  const where = `account \`${ctx.account.alias}\` (${ctx.account.id}), ${ctx.region}`;
  if (!vpc) {
    throw new AwsResourceNotFoundError(
      `No VPC \`${vpcId}\` in ${where}. Check the id, and give \`region=\` if it is in another region.`,
    );
  }
  const isDefault = vpc.IsDefault === true;
  if (isDefault && !input.force) {
    throw new PlanRefusedError(
      `\`${vpcId}\` is the default VPC of ${where}. Anything launched there without naming a subnet lands in it, so isolating it usually cuts off unrelated workloads, and every later default launch, until it is restored. If that is what you want, repeat the command with \`force=true\`.`,
    );
  }
  if (subnets.length === 0) {
    throw new PlanRefusedError(`\`${vpcId}\` has no subnets: there is nothing to isolate.`);
  }
  const associations = associationsOf(acls);
  const aclById = new Map(acls.map((a) => [a.NetworkAclId ?? '', a]));
  const missing = subnets.filter((s) => !associations.has(s.SubnetId ?? ''));
  if (missing.length > 0) {
    throw new PlanRefusedError(
      `AWS reported no network-ACL association for ${list(missing.map((s) => String(s.SubnetId)))}; this happens for a moment after a subnet is created. Try again in a minute.`,
    );
  }

  const moves: IsolateData['moves'] = [];
  const alreadyQuarantined: IsolateData['alreadyQuarantined'] = [];
  // Subnets on an ACL tagged as a quarantine whose rules let traffic through: named, and moved like any other.
  const posing: { subnetId: string; aclId: string }[] = [];
  const lines: string[] = [];
  for (const subnet of [...subnets].sort((a, b) => String(a.SubnetId).localeCompare(String(b.SubnetId)))) {
    const subnetId = subnet.SubnetId ?? '';
    const { aclId } = associations.get(subnetId) ?? { aclId: '' };
    const acl = aclById.get(aclId);
    const quarantined = acl !== undefined && enforcesQuarantine(acl, allow);
    const tagged = !quarantined && acl !== undefined && hasQuarantineTag(acl, vpcId);
    (quarantined ? alreadyQuarantined : moves).push({ subnetId, aclId });
    if (tagged) posing.push({ subnetId, aclId });
    const name = tagOf(subnet.Tags, 'Name');
    const count = (n: number, what: string) => (n > 0 ? `, ${n} ${what}${n === 1 ? '' : 's'}` : '');
    const label = acl?.IsDefault
      ? ' (default ACL)'
      : quarantined
        ? ' (quarantine: deny-all rules)'
        : tagged
          ? ' (tagged as a quarantine, but its rules let traffic through: NOT isolated)'
          : '';
    lines.push(
      `${subnetId}${name ? ` (${name})` : ''} ${subnet.CidrBlock ?? ''} on ${aclId}${label}${count(instances.filter((i) => i.subnetId === subnetId).length, 'instance')}${count(enis.filter((e) => e.subnetId === subnetId).length, 'ENI')}`,
    );
  }
  if (moves.length === 0) {
    throw new PlanRefusedError(
      `Every subnet of \`${vpcId}\` is already on an ACL whose rules deny all traffic (${list([...new Set(alreadyQuarantined.map((s) => s.aclId))])}); there is nothing to isolate. \`restore-vpc ${vpcId}\` puts them back.`,
    );
  }

  const reusable = findReusableAcl(acls, vpcId, allow, ctx.runId);
  const quarantineLabel = reusable?.NetworkAclId ?? '<new quarantine ACL>';
  const calls: PlannedCall[] = [];
  if (!reusable) {
    calls.push({
      action: 'ec2:CreateNetworkAcl',
      params: {
        VpcId: vpcId,
        Tags: `Name=quell-quarantine-${ctx.runId}, ${TAG.quarantine}=${vpcId}, ${TAG.runId}=${ctx.runId}, ${TAG.allow}=${allow ?? 'none'}`,
      },
    });
    for (const rule of quarantineRules(allow)) {
      calls.push({
        action: 'ec2:CreateNetworkAclEntry',
        params: {
          NetworkAclId: quarantineLabel,
          RuleNumber: String(rule.ruleNumber),
          Egress: String(rule.egress),
          RuleAction: rule.action,
          Protocol: '-1',
          [rule.ipv6 ? 'Ipv6CidrBlock' : 'CidrBlock']: rule.cidr,
        },
      });
    }
  }
  for (const move of moves) {
    calls.push({
      action: 'ec2:ReplaceNetworkAclAssociation',
      params: {
        AssociationId: associations.get(move.subnetId)?.associationId ?? '',
        NetworkAclId: quarantineLabel,
        subnet: move.subnetId,
        previous: move.aclId,
      },
    });
  }

  const notes: string[] = [
    `Every subnet loses all traffic across its boundary, in both directions, existing connections included (network ACLs are stateless). Traffic between instances inside one subnet is not filtered by network ACLs; security groups, routes and instances are not changed.`,
    `Each subnet's current ACL is recorded before it moves; Undo (or \`restore-vpc ${vpcId}\`) puts every subnet back and deletes the quarantine ACL.`,
  ];
  if (isDefault) notes.push(`\`${vpcId}\` is the default VPC; isolating it was forced with \`force=true\`.`);
  if (reusable) {
    notes.push(
      `Reuses quarantine ACL ${reusable.NetworkAclId} left by run ${tagOf(reusable.Tags, TAG.runId) ?? 'unknown'}: it already has exactly these rules.`,
    );
  }
  if (posing.length > 0) {
    notes.push(
      `NOT isolated: ${list(posing.map((s) => s.subnetId))} ${posing.length === 1 ? 'is' : 'are'} on ${list([...new Set(posing.map((s) => s.aclId))])}, tagged \`${TAG.quarantine}=${vpcId}\` but not a quarantine by its rules (${whyNotQuarantine(aclById.get(posing[0]?.aclId ?? ''), allow)}). quell goes by the rules, not the tag: ${posing.length === 1 ? 'it moves' : 'they move'} onto the quarantine ACL like every other subnet.`,
    );
  }
  if (alreadyQuarantined.length > 0) {
    notes.push(
      `${alreadyQuarantined.length} subnet(s) are already on an ACL whose rules deny all traffic${allow ? ` (except ${allow})` : ''}, and stay there: ${list(alreadyQuarantined.map((s) => s.subnetId))}.`,
    );
  }
  if (allow) {
    const cidr = parseCidr(allow);
    if ((cidr.version === 4 && cidr.prefix < 16) || (cidr.version === 6 && cidr.prefix < 48)) {
      notes.push(
        `allow=${allow} is a wide network (${cidr.size} addresses): everything in it can still reach the VPC.`,
      );
    }
  }

  const name = tagOf(vpc.Tags, 'Name');
  return {
    summary: `Isolate ${vpcId}${name ? ` (${name})` : ''}: move ${moves.length} subnet(s) onto a deny-all quarantine ACL${allow ? ` allowing only ${allow}` : ''}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      [
        'VPC',
        `${vpcId}${name ? ` (${name})` : ''} ${vpc.CidrBlock ?? ''}${isDefault ? ' — default VPC' : ''}`,
      ],
      [
        'Subnets',
        `${subnets.length}: ${moves.length} to move${alreadyQuarantined.length ? `, ${alreadyQuarantined.length} already quarantined` : ''}`,
      ],
      ['Subnet → current ACL', lines.join('\n')],
      ['Instances', `${instances.length}${instances.length ? `: ${list(instances.map((i) => i.id))}` : ''}`],
      [
        'Network interfaces',
        `${enis.length}${enis.length ? `: ${list(enis.map((e) => `${e.id}${e.type && e.type !== 'interface' ? ` (${e.type})` : ''}`))}` : ''}`,
      ],
      [
        'Quarantine ACL',
        reusable
          ? `reuse ${reusable.NetworkAclId}`
          : `new, tagged ${TAG.runId}=${ctx.runId}, deny-all rules ${DENY_IPV4_RULE} (IPv4) and ${DENY_IPV6_RULE} (IPv6) both directions`,
      ],
      ['Will allow', describeAllow(allow)],
    ],
    calls,
    notes,
    material: isolateMaterial(ctx, { vpcId, allow, isDefault }, acls, []),
    data: { vpcId, allow, reuseAclId: reusable?.NetworkAclId ?? null, moves, alreadyQuarantined },
  };
}

async function recheckIsolate(ctx: RunContext, plan: Plan<IsolateData>): Promise<Json> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId, allow } = plan.data;
  const [acls, own] = await Promise.all([
    listVpcAcls(ec2, vpcId),
    listSavedAcls(ctx.ledger, { accountId: ctx.account.id, region: ctx.region, vpcId, runId: ctx.runId }),
  ]);
  rechecked.set(ctx, acls);
  const isDefault = (plan.material as { isDefault?: boolean } | null)?.isDefault === true;
  return isolateMaterial(ctx, { vpcId, allow, isDefault }, acls, own);
}

/**
 * Evidence before the subnets move: the VPC's network ACLs (rules and associations, as they were), its
 * security groups (rules included) and its flow-log settings, read in one parallel wave. AWS's objects
 * are kept as the API returned them.
 */
async function captureVpcEvidence(ctx: RunContext, plan: Plan<IsolateData>): Promise<EvidenceDocument> {
  const { EC2Client, paginateDescribeSecurityGroups, DescribeFlowLogsCommand } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId } = plan.data;
  const filter = [{ Name: 'vpc-id', Values: [vpcId] }];
  const readGroups = async () => {
    const groups: unknown[] = [];
    for await (const page of paginateDescribeSecurityGroups({ client: ec2 }, { Filters: filter }))
      groups.push(...(page.SecurityGroups ?? []));
    return groups;
  };
  const readFlowLogs = async () => {
    const logs: unknown[] = [];
    let NextToken: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeFlowLogsCommand({ Filter: [{ Name: 'resource-id', Values: [vpcId] }], NextToken }),
        { abortSignal: ctx.signal },
      );
      logs.push(...(page.FlowLogs ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return logs;
  };
  const [acls, securityGroups, flowLogs] = await Promise.all([
    listVpcAcls(ec2, vpcId),
    readGroups(),
    readFlowLogs(),
  ]);
  return {
    vpc: { vpcId, account: ctx.account.id, region: ctx.region },
    networkAcls: toJson(acls),
    securityGroups: toJson(securityGroups),
    flowLogs: toJson(flowLogs),
  };
}

/** An SDK response as plain JSON (dates as ISO 8601 text, no undefined fields). */
function toJson(value: unknown): Json {
  return JSON.parse(JSON.stringify(value ?? null)) as Json;
}

async function executeIsolate(ctx: RunContext, plan: Plan<IsolateData>): Promise<Outcome<IsolateResult>> {
  const {
    EC2Client,
    CreateNetworkAclCommand,
    CreateNetworkAclEntryCommand,
    ReplaceNetworkAclAssociationCommand,
  } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId, allow, reuseAclId, moves } = plan.data;
  const acls = await aclsForExecute(ctx, ec2, vpcId);
  const result: IsolateResult = {
    quarantineAclId: null,
    created: false,
    isolated: [],
    failed: [],
    rulesWritten: 0,
    ruleFailures: [],
  };

  // 1. The quarantine ACL: the one the plan reuses, else the one an earlier attempt of this run created,
  // else a new one. The client token makes a repeated create return the same ACL.
  let quarantine = reuseAclId
    ? acls.find((a) => a.NetworkAclId === reuseAclId)
    : acls.find((a) => hasQuarantineTag(a, vpcId) && tagOf(a.Tags, TAG.runId) === ctx.runId);
  if (!quarantine) {
    const out = await ec2.send(
      new CreateNetworkAclCommand({
        VpcId: vpcId,
        ClientToken: `quell-${ctx.runId}-quarantine`,
        TagSpecifications: [
          {
            ResourceType: 'network-acl',
            Tags: [
              { Key: 'Name', Value: `quell-quarantine-${ctx.runId}` },
              { Key: TAG.quarantine, Value: vpcId },
              { Key: TAG.runId, Value: ctx.runId },
              { Key: TAG.allow, Value: allow ?? 'none' },
            ],
          },
        ],
      }),
      { abortSignal: ctx.signal },
    );
    quarantine = out.NetworkAcl;
    result.created = true;
  }
  const quarantineAclId = quarantine?.NetworkAclId;
  if (!quarantineAclId) throw new PlanRefusedError('AWS created the network ACL but returned no id.');
  result.quarantineAclId = quarantineAclId;

  // A quarantine ACL with rules quell did not write (someone added an allow to the reused ACL, or to this
  // run's own ACL between attempts) would let traffic through: no subnet moves onto it.
  const foreign = quarantine ? foreignRules(quarantine, allow) : [];
  if (foreign.length > 0) {
    result.failed = moves.map((m) => ({ subnetId: m.subnetId, error: 'quarantine ACL has foreign rules' }));
    return {
      ok: false,
      partial: result.created,
      summary: `Quarantine ACL ${quarantineAclId} has rules quell did not write (${list(foreign, 5)}): it would not isolate anything, so no subnet was moved. NOT isolated: ${list(
        moves.map((m) => m.subnetId),
        20,
      )}. Request isolate-vpc again: it plans a new quarantine ACL.`,
      facts: [
        ['Quarantine ACL', `${quarantineAclId}, foreign rules: ${list(foreign, 5)}`],
        ['Isolated', 'none'],
        [
          'Not isolated',
          list(
            moves.map((m) => m.subnetId),
            20,
          ),
        ],
      ],
      data: result,
    };
  }

  // 2. Its rules, all at once; only those missing (a retry finds the ones already written).
  const missingRules = quarantineRules(allow).filter((rule) => !hasRule(quarantine?.Entries, rule));
  const written = await Promise.allSettled(
    missingRules.map((rule) =>
      ec2.send(
        new CreateNetworkAclEntryCommand({
          NetworkAclId: quarantineAclId,
          RuleNumber: rule.ruleNumber,
          Egress: rule.egress,
          RuleAction: rule.action,
          Protocol: '-1',
          ...(rule.ipv6 ? { Ipv6CidrBlock: rule.cidr } : { CidrBlock: rule.cidr }),
        }),
        { abortSignal: ctx.signal },
      ),
    ),
  );
  result.rulesWritten = written.filter((w) => w.status === 'fulfilled').length;
  written.forEach((w, i) => {
    const rule = missingRules[i];
    if (w.status === 'rejected' && rule)
      result.ruleFailures.push(
        `rule ${rule.ruleNumber} ${rule.egress ? 'egress' : 'ingress'}: ${errorCodeOf(w.reason)}`,
      );
  });
  if (result.ruleFailures.length > 0) {
    // Never move a subnet onto an ACL whose rules are not all in place.
    result.failed = moves.map((m) => ({ subnetId: m.subnetId, error: 'quarantine rules incomplete' }));
    return {
      ok: false,
      partial: result.created || result.rulesWritten > 0,
      summary: `Quarantine ACL ${quarantineAclId} ${result.created ? 'was created' : 'is in place'} but not all of its rules could be written (${result.ruleFailures.join('; ')}); no subnet was moved.${adviceFor(written.map((w) => (w.status === 'rejected' ? w.reason : null)))}`,
      facts: [
        ['Quarantine ACL', `${quarantineAclId} (${result.created ? 'created' : 'reused'}), rules incomplete`],
        ['Isolated', 'none'],
        ['Not isolated', list(moves.map((m) => m.subnetId))],
      ],
      data: result,
    };
  }

  // 3. Record every previous association, then move every subnet at once (paced by the EC2 limiter).
  const current = associationsOf(acls);
  const already = moves.filter((m) => current.get(m.subnetId)?.aclId === quarantineAclId);
  const gone = moves.filter((m) => !current.has(m.subnetId));
  const toMove = moves.filter(
    (m) => current.has(m.subnetId) && current.get(m.subnetId)?.aclId !== quarantineAclId,
  );
  await recordSavedAcls(
    ctx,
    vpcId,
    toMove.map((m) => ({
      subnetId: m.subnetId,
      previousAclId: current.get(m.subnetId)?.aclId ?? m.aclId,
      quarantineAclId,
    })),
  );
  const moved = await Promise.allSettled(
    toMove.map((m) =>
      ec2.send(
        new ReplaceNetworkAclAssociationCommand({
          AssociationId: current.get(m.subnetId)?.associationId,
          NetworkAclId: quarantineAclId,
        }),
        { abortSignal: ctx.signal },
      ),
    ),
  );
  const updates: AclStateChange[] = already.map((m) => ({
    runId: ctx.runId,
    subnetId: m.subnetId,
    state: 'isolated',
    error: null,
  }));
  result.isolated.push(...already.map((m) => m.subnetId));
  moved.forEach((outcome, i) => {
    const m = toMove[i];
    if (!m) return;
    if (outcome.status === 'fulfilled') {
      result.isolated.push(m.subnetId);
      updates.push({ runId: ctx.runId, subnetId: m.subnetId, state: 'isolated', error: null });
    } else {
      const error = errorCodeOf(outcome.reason);
      result.failed.push({ subnetId: m.subnetId, error });
      updates.push({ runId: ctx.runId, subnetId: m.subnetId, state: 'failed', error });
    }
  });
  for (const m of gone) result.failed.push({ subnetId: m.subnetId, error: 'subnet no longer exists' });
  await settleSavedAcls(ctx, vpcId, updates);

  const ok = result.failed.length === 0;
  const notIsolated = result.failed.map((f) => `${f.subnetId} (${f.error})`);
  return {
    ok,
    partial: !ok && (result.isolated.length > 0 || result.created || result.rulesWritten > 0),
    summary: ok
      ? `Isolated ${result.isolated.length} subnet(s) of ${vpcId} on quarantine ACL ${quarantineAclId}, which allows ${allow ? `only ${allow}` : 'nothing'}.`
      : `${result.isolated.length} of ${moves.length} subnet(s) of ${vpcId} isolated on ${quarantineAclId}. Isolated: ${list(result.isolated, 20)}. NOT isolated: ${list(notIsolated, 20)}.${adviceFor(moved.map((o) => (o.status === 'rejected' ? o.reason : null)))} Retry moves the rest under the same approval; Undo puts back what was moved.`,
    facts: [
      ['Quarantine ACL', `${quarantineAclId} (${result.created ? 'created' : 'reused'})`],
      ['Isolated', list(result.isolated, 20)],
      ['Not isolated', list(notIsolated, 20)],
    ],
    data: result,
  };
}

/**
 * Reads back, for every subnet of the VPC, the rules of the ACL it is on now: a subnet counts as isolated
 * only when those rules deny all traffic (see enforcesQuarantine), whatever the ACL is tagged. Every other
 * subnet is named NOT isolated, and the run is not `succeeded`.
 */
async function verifyIsolate(
  ctx: RunContext,
  plan: Plan<IsolateData>,
  result: Outcome<IsolateResult>,
): Promise<Outcome> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId, allow } = plan.data;
  const quarantineAclId = result.data.quarantineAclId;
  const acls = await listVpcAcls(ec2, vpcId);
  const aclById = new Map(acls.map((a) => [a.NetworkAclId ?? '', a]));
  const associations = associationsOf(acls);
  const total = associations.size;
  const outside: string[] = [];
  const reasons = new Map<string, string>();
  for (const [subnetId, { aclId }] of [...associations].sort(([a], [b]) => a.localeCompare(b))) {
    const acl = aclById.get(aclId);
    if (acl && enforcesQuarantine(acl, allow)) continue;
    outside.push(`${subnetId} (on ${aclId})`);
    if (!reasons.has(aclId))
      reasons.set(
        aclId,
        `${aclId}${acl && hasQuarantineTag(acl, vpcId) ? ' is tagged as a quarantine but' : ''}: ${whyNotQuarantine(acl, allow)}`,
      );
  }
  const quarantine = acls.find((a) => a.NetworkAclId === quarantineAclId);
  const rulesOk = quarantine !== undefined && hasExactlyRules(quarantine, allow);
  const ok = outside.length === 0 && rulesOk;
  const isolated = total - outside.length;
  return {
    ok,
    summary: ok
      ? `Verified rule by rule: all ${total} subnet(s) of ${vpcId} are on an ACL that denies all traffic${allow ? ` except ${allow}` : ''}.`
      : `Verification: ${isolated} of ${total} subnet(s) isolated.${outside.length ? ` NOT isolated: ${list(outside, 20)}; ${[...reasons.values()].join('; ')}.` : ''}${rulesOk ? '' : ` The quarantine ACL ${quarantineAclId ?? '(none)'} does not have exactly its deny-all rules${quarantine ? ` (${whyNotQuarantine(quarantine, allow)})` : ''}.`}`,
    facts: [
      ['Subnets isolated', `${isolated}/${total}`],
      ['NOT isolated', list(outside, 20)],
      ['Quarantine rules', rulesOk ? 'exactly deny-all in place' : 'not as written'],
    ],
    data: { onQuarantine: isolated, total, outside, rulesOk },
  };
}

// ─── restore (the Undo of isolate-vpc, and the restore-vpc runbook) ───────────────────────────────────

/** What a restore does, fixed at plan time. */
export type RestoreData = {
  vpcId: string;
  moves: { subnetId: string; fromAclId: string; toAclId: string }[];
  /** Quarantine ACLs no subnet will use once the moves are done. */
  deleteAclIds: string[];
  /** Recorded rows that this restore settles (marked restored when their subnet is back, or left alone). */
  settle: { runId: string; subnetId: string }[];
};

export type RestoreResult = {
  restored: string[];
  failed: { subnetId: string; error: string }[];
  deleted: string[];
  notDeleted: { aclId: string; error: string }[];
};

/** Plans putting every subnet quell isolated in the VPC back on the ACL it had before. */
export async function planRestore(ctx: RunContext, vpcId: string): Promise<Plan<RestoreData>> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const [rows, acls] = await Promise.all([
    listSavedAcls(ctx.ledger, { accountId: ctx.account.id, region: ctx.region, vpcId }),
    listVpcAcls(ec2, vpcId),
  ]);
  const open = rows.filter((r) => r.state !== 'restored');
  const where = `account \`${ctx.account.alias}\` (${ctx.account.id}), ${ctx.region}`;
  const quarantineIds = new Set([
    ...open.map((r) => r.quarantineAclId),
    ...acls.filter((a) => hasQuarantineTag(a, vpcId)).map((a) => a.NetworkAclId ?? ''),
  ]);
  if (open.length === 0 && ![...quarantineIds].some((id) => acls.some((a) => a.NetworkAclId === id))) {
    throw new PlanRefusedError(
      `quell has no record of isolating \`${vpcId}\` in ${where}, and the VPC has no quell quarantine ACL: there is nothing to restore.`,
    );
  }
  const current = associationsOf(acls);
  const existing = new Set(acls.map((a) => a.NetworkAclId));
  const defaultAcl = acls.find((a) => a.IsDefault)?.NetworkAclId;
  // The oldest open record of a subnet holds the ACL it had before quell first moved it.
  const bySubnet = new Map<string, typeof open>();
  for (const r of open) bySubnet.set(r.subnetId, [...(bySubnet.get(r.subnetId) ?? []), r]);

  const moves: RestoreData['moves'] = [];
  const settle: RestoreData['settle'] = [];
  const notes: string[] = [];
  for (const [subnetId, records] of [...bySubnet].sort(([a], [b]) => a.localeCompare(b))) {
    const original = records[0]?.previousAclId ?? '';
    const now = current.get(subnetId);
    settle.push(...records.map((r) => ({ runId: r.runId, subnetId })));
    if (!now) {
      notes.push(`${subnetId} no longer exists; nothing to put back.`);
      continue;
    }
    let target = original;
    if (!existing.has(original)) {
      if (!defaultAcl) {
        notes.push(
          `${subnetId}: its previous ACL ${original} is gone and the VPC has no default ACL; left as it is.`,
        );
        continue;
      }
      target = defaultAcl;
      notes.push(
        `${subnetId}: its previous ACL ${original} no longer exists; it goes to the VPC's default ACL ${defaultAcl}.`,
      );
    }
    if (now.aclId === target) {
      notes.push(`${subnetId} is already back on ${target}.`);
      continue;
    }
    if (!quarantineIds.has(now.aclId)) {
      notes.push(
        `${subnetId} is now on ${now.aclId}, not on a quarantine ACL: someone moved it; left alone.`,
      );
      continue;
    }
    moves.push({ subnetId, fromAclId: now.aclId, toAclId: target });
  }
  const movedAway = new Set(moves.map((m) => m.subnetId));
  // A tagged ACL can also be where a subnet was before (isolate-vpc moves subnets off an ACL that is tagged
  // as a quarantine but does not deny traffic): it is kept for the subnets going back onto it.
  const targets = new Set(moves.map((m) => m.toAclId));
  const deleteAclIds: string[] = [];
  for (const aclId of [...quarantineIds].sort()) {
    const acl = acls.find((a) => a.NetworkAclId === aclId);
    if (!acl || targets.has(aclId)) continue;
    const staying = (acl.Associations ?? []).map((a) => a.SubnetId ?? '').filter((s) => !movedAway.has(s));
    if (staying.length === 0) deleteAclIds.push(aclId);
    else notes.push(`Quarantine ACL ${aclId} is kept: ${list(staying)} still use it.`);
  }
  if (moves.length === 0 && deleteAclIds.length === 0) {
    throw new PlanRefusedError(
      `Nothing to restore in \`${vpcId}\`: ${notes.length ? notes.join(' ') : 'every recorded subnet is back.'}`,
    );
  }
  const calls: PlannedCall[] = [
    ...moves.map((m) => ({
      action: 'ec2:ReplaceNetworkAclAssociation',
      params: {
        AssociationId: current.get(m.subnetId)?.associationId ?? '',
        NetworkAclId: m.toAclId,
        subnet: m.subnetId,
        now: m.fromAclId,
      },
    })),
    ...deleteAclIds.map((id) => ({ action: 'ec2:DeleteNetworkAcl', params: { NetworkAclId: id } })),
  ];
  return {
    summary: `Restore ${vpcId}: put ${moves.length} subnet(s) back on their previous ACL${deleteAclIds.length ? ` and delete ${list(deleteAclIds)}` : ''}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      ['VPC', vpcId],
      [
        'Subnet → restored ACL',
        moves.map((m) => `${m.subnetId}: ${m.fromAclId} → ${m.toAclId}`).join('\n') || 'none',
      ],
      ['Quarantine ACLs deleted', list(deleteAclIds)],
    ],
    calls,
    notes,
    material: { vpcId, moves: Object.fromEntries(moves.map((m) => [m.subnetId, m.fromAclId])) },
    data: { vpcId, moves, deleteAclIds, settle },
  };
}

/** Re-reads the associations; a subnet already put back by an earlier attempt counts as unchanged. */
export async function recheckRestore(ctx: RunContext, plan: Plan<RestoreData>): Promise<Json> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const acls = await listVpcAcls(ec2, plan.data.vpcId);
  rechecked.set(ctx, acls);
  const current = associationsOf(acls);
  const moves: Record<string, string> = {};
  for (const m of plan.data.moves) {
    const now = current.get(m.subnetId)?.aclId ?? 'gone';
    moves[m.subnetId] = now === m.toAclId ? m.fromAclId : now;
  }
  return { vpcId: plan.data.vpcId, moves };
}

/** Puts the subnets back (all at once), then deletes the quarantine ACLs nothing uses any more. */
export async function executeRestore(
  ctx: RunContext,
  plan: Plan<RestoreData>,
): Promise<Outcome<RestoreResult>> {
  const { EC2Client, ReplaceNetworkAclAssociationCommand, DeleteNetworkAclCommand } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const { vpcId, moves, deleteAclIds, settle } = plan.data;
  const acls = await aclsForExecute(ctx, ec2, vpcId);
  const current = associationsOf(acls);
  const result: RestoreResult = { restored: [], failed: [], deleted: [], notDeleted: [] };
  const already = moves.filter((m) => current.get(m.subnetId)?.aclId === m.toAclId);
  const toMove = moves.filter((m) => current.has(m.subnetId) && current.get(m.subnetId)?.aclId !== m.toAclId);
  for (const m of moves)
    if (!current.has(m.subnetId))
      result.failed.push({ subnetId: m.subnetId, error: 'subnet no longer exists' });
  result.restored.push(...already.map((m) => m.subnetId));
  const moved = await Promise.allSettled(
    toMove.map((m) =>
      ec2.send(
        new ReplaceNetworkAclAssociationCommand({
          AssociationId: current.get(m.subnetId)?.associationId,
          NetworkAclId: m.toAclId,
        }),
        { abortSignal: ctx.signal },
      ),
    ),
  );
  moved.forEach((outcome, i) => {
    const m = toMove[i];
    if (!m) return;
    if (outcome.status === 'fulfilled') result.restored.push(m.subnetId);
    else result.failed.push({ subnetId: m.subnetId, error: errorCodeOf(outcome.reason) });
  });
  const failedSubnets = new Set(result.failed.map((f) => f.subnetId));
  // Rows of subnets that are back (or that the plan found nothing to do for) are settled.
  const plannedMoves = new Set(moves.map((m) => m.subnetId));
  const updates: AclStateChange[] = settle
    .filter(
      (s) =>
        !failedSubnets.has(s.subnetId) &&
        (result.restored.includes(s.subnetId) || !plannedMoves.has(s.subnetId)),
    )
    .map((s) => ({ ...s, state: 'restored', error: null }));
  await settleSavedAcls(ctx, vpcId, updates);

  // An ACL still holding a subnet that failed to move back cannot be deleted (AWS refuses anyway).
  const stillUsed = new Set(moves.filter((m) => failedSubnets.has(m.subnetId)).map((m) => m.fromAclId));
  const deletable = deleteAclIds.filter((id) => !stillUsed.has(id));
  for (const id of deleteAclIds)
    if (stillUsed.has(id)) result.notDeleted.push({ aclId: id, error: 'still in use' });
  const deleted = await Promise.allSettled(
    deletable.map((id) =>
      ec2.send(new DeleteNetworkAclCommand({ NetworkAclId: id }), { abortSignal: ctx.signal }),
    ),
  );
  deleted.forEach((outcome, i) => {
    const id = deletable[i];
    if (!id) return;
    if (outcome.status === 'fulfilled' || outcome.reason instanceof AwsResourceNotFoundError)
      result.deleted.push(id);
    else result.notDeleted.push({ aclId: id, error: errorCodeOf(outcome.reason) });
  });

  const ok = result.failed.length === 0 && result.notDeleted.length === 0;
  const problems = [
    ...result.failed.map((f) => `${f.subnetId} not restored (${f.error})`),
    ...result.notDeleted.map((d) => `${d.aclId} not deleted (${d.error})`),
  ];
  return {
    ok,
    partial: !ok && (result.restored.length > 0 || result.deleted.length > 0),
    summary: ok
      ? `Restored ${result.restored.length} subnet(s) of ${vpcId} to their previous ACL${result.deleted.length ? `; deleted ${list(result.deleted)}` : ''}.`
      : `${result.restored.length} of ${moves.length} subnet(s) back on their previous ACL. ${list(problems, 20)}.${adviceFor([...moved, ...deleted].map((o) => (o.status === 'rejected' ? o.reason : null)))}`,
    facts: [
      ['Restored', list(result.restored, 20)],
      ['Deleted', list(result.deleted)],
      ['Problems', list(problems, 20)],
    ],
    data: result,
  };
}

/** Reads back: each moved subnet on its target ACL, each deleted ACL gone. */
export async function verifyRestore(
  ctx: RunContext,
  plan: Plan<RestoreData>,
  result: Outcome<RestoreResult>,
): Promise<Outcome> {
  const { EC2Client } = await loadEc2();
  const ec2 = ctx.aws.client(EC2Client);
  const acls = await listVpcAcls(ec2, plan.data.vpcId);
  const current = associationsOf(acls);
  const wrong = plan.data.moves
    .filter((m) => current.has(m.subnetId) && current.get(m.subnetId)?.aclId !== m.toAclId)
    .map((m) => `${m.subnetId} (on ${current.get(m.subnetId)?.aclId})`);
  const lingering = result.data.deleted.filter((id) => acls.some((a) => a.NetworkAclId === id));
  const ok = wrong.length === 0 && lingering.length === 0;
  return {
    ok,
    summary: ok
      ? 'Verified: every subnet is back on its previous ACL and the quarantine ACL is gone.'
      : `Verification: ${wrong.length ? `not back: ${list(wrong)}` : ''}${lingering.length ? ` still present: ${list(lingering)}` : ''}.`,
    facts: [
      ['Subnets back', `${plan.data.moves.length - wrong.length}/${plan.data.moves.length}`],
      [
        'Quarantine ACLs left',
        list(acls.filter((a) => hasQuarantineTag(a, plan.data.vpcId)).map((a) => a.NetworkAclId ?? '')),
      ],
    ],
    data: { wrong, lingering },
  };
}

/**
 * EC2 throttles per account, Region and API with token buckets
 * (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): mutating actions 50 tokens refilled
 * at 5 per second. Each of the two calls isolate-vpc (and restore) sends for every subnet or rule at once
 * gets a bucket of its own, so that all of them start at once up to the bucket (a VPC has at most 200
 * subnets by default) and are then paced at the refill rate.
 */
export const NETWORK_ACL_RATE_LIMITS: Record<string, RateLimit> = {
  'ec2:ReplaceNetworkAclAssociation': { perSecond: 5, burst: 50, maxConcurrent: 50 },
  'ec2:CreateNetworkAclEntry': { perSecond: 5, burst: 50, maxConcurrent: 50 },
};

// ─── session policies ────────────────────────────────────────────────────────────────────────────────

/** The reads of plan, recheck and verify: EC2 authorises Describe* on no resource (only `*`). */
const NETWORK_READS = [
  'ec2:DescribeVpcs',
  'ec2:DescribeSubnets',
  'ec2:DescribeNetworkAcls',
  'ec2:DescribeInstances',
  'ec2:DescribeNetworkInterfaces',
];

/** ARNs of EC2 resources of one kind in the run's account and region (`*` for any id). */
function ec2Arns(target: SessionTarget, kind: 'vpc' | 'subnet' | 'network-acl', ids: readonly string[]) {
  return ids.map((id) => `arn:${target.partition}:ec2:${target.region}:${target.accountId}:${kind}/${id}`);
}

/** `ec2:Vpc` holds the ARN of the VPC an ACL or subnet belongs to (EC2's condition keys). */
function inVpc(target: SessionTarget, vpcId: string): PolicyConditions {
  return { ArnEquals: { 'ec2:Vpc': ec2Arns(target, 'vpc', [vpcId])[0] ?? '' } };
}

/** Only network ACLs tagged as this VPC's quarantine, in this VPC. */
function quarantineOf(target: SessionTarget, vpcId: string): PolicyConditions {
  return { ...inVpc(target, vpcId), StringEquals: { [`aws:ResourceTag/${TAG.quarantine}`]: vpcId } };
}

/**
 * What an isolate-vpc run's session may do: create one quarantine ACL in the plan's VPC (tagged as its
 * quarantine on creation, the only tagging allowed), write entries only on that VPC's quarantine ACLs, and
 * move only the planned subnets (or, for a plan too large to list them, any subnet of that VPC) onto an ACL
 * of that VPC. Nothing in another VPC, nothing deleted.
 */
export function isolateGrants(plan: Plan<IsolateData>, target: SessionTarget): SessionGrant[] {
  const { vpcId, reuseAclId, moves } = plan.data;
  const anyAcl = ec2Arns(target, 'network-acl', ['*']);
  // The evidence, read before the change, adds the VPC's security groups and flow logs.
  const evidence = ['ec2:DescribeSecurityGroups', 'ec2:DescribeFlowLogs'];
  const grants: SessionGrant[] = [{ actions: [...NETWORK_READS, ...evidence], resources: ['*'] }];
  if (!reuseAclId) {
    const tagged = { StringEquals: { [`aws:RequestTag/${TAG.quarantine}`]: vpcId } };
    grants.push(
      {
        actions: ['ec2:CreateNetworkAcl'],
        resources: [...ec2Arns(target, 'vpc', [vpcId]), ...anyAcl],
        conditions: tagged,
      },
      {
        actions: ['ec2:CreateTags'],
        resources: anyAcl,
        conditions: { StringEquals: { ...tagged.StringEquals, 'ec2:CreateAction': 'CreateNetworkAcl' } },
      },
      { actions: ['ec2:CreateNetworkAclEntry'], resources: anyAcl, conditions: quarantineOf(target, vpcId) },
    );
  }
  if (moves.length > 0) {
    grants.push({
      actions: ['ec2:ReplaceNetworkAclAssociation'],
      resources: [
        ...(reuseAclId ? ec2Arns(target, 'network-acl', [reuseAclId]) : anyAcl),
        ...ec2Arns(
          target,
          'subnet',
          moves.map((m) => m.subnetId),
        ),
      ],
      conditions: inVpc(target, vpcId),
      broad: {
        resources: [...anyAcl, ...ec2Arns(target, 'subnet', ['*'])],
        conditions: inVpc(target, vpcId),
      },
    });
  }
  return grants;
}

/**
 * What a restore's session may do: read the VPC's ACLs, put only the planned subnets back on only their
 * recorded ACLs, and delete only the planned quarantine ACLs (tagged as this VPC's quarantine).
 */
export function restoreGrants(plan: Plan<RestoreData>, target: SessionTarget): SessionGrant[] {
  const { vpcId, moves, deleteAclIds } = plan.data;
  const grants: SessionGrant[] = [{ actions: ['ec2:DescribeNetworkAcls'], resources: ['*'] }];
  if (moves.length > 0)
    grants.push({
      actions: ['ec2:ReplaceNetworkAclAssociation'],
      resources: [
        ...ec2Arns(target, 'network-acl', [...new Set(moves.map((m) => m.toAclId))]),
        ...ec2Arns(
          target,
          'subnet',
          moves.map((m) => m.subnetId),
        ),
      ],
      conditions: inVpc(target, vpcId),
      broad: {
        resources: ec2Arns(target, 'network-acl', ['*']).concat(ec2Arns(target, 'subnet', ['*'])),
        conditions: inVpc(target, vpcId),
      },
    });
  if (deleteAclIds.length > 0)
    grants.push({
      actions: ['ec2:DeleteNetworkAcl'],
      resources: ec2Arns(target, 'network-acl', deleteAclIds),
      conditions: quarantineOf(target, vpcId),
      broad: { resources: ec2Arns(target, 'network-acl', ['*']), conditions: quarantineOf(target, vpcId) },
    });
  return grants;
}

/**
 * Role-wide limits (every run, `quell iam-policy`): entries are written on, and ACLs deleted from, only
 * ACLs tagged as a quarantine; ACLs are created and tagged only as a quarantine, tagging only on creation.
 */
export const NETWORK_ACL_ROLE_LIMITS = {
  deleteQuarantine: {
    sid: 'QuarantineAclsOnly',
    actions: ['ec2:DeleteNetworkAcl', 'ec2:CreateNetworkAclEntry'],
    resources: ['arn:*:ec2:*:*:network-acl/*'],
    conditions: { StringLike: { [`aws:ResourceTag/${TAG.quarantine}`]: 'vpc-*' } },
  },
  tagOnCreate: {
    sid: 'TagQuarantineOnCreate',
    actions: ['ec2:CreateTags'],
    resources: ['arn:*:ec2:*:*:network-acl/*'],
    conditions: {
      StringEquals: { 'ec2:CreateAction': 'CreateNetworkAcl' },
      StringLike: { [`aws:RequestTag/${TAG.quarantine}`]: 'vpc-*' },
    },
  },
  createQuarantine: {
    sid: 'CreateQuarantineAcls',
    actions: ['ec2:CreateNetworkAcl'],
    resources: ['arn:*:ec2:*:*:network-acl/*', 'arn:*:ec2:*:*:vpc/*'],
    conditions: { StringLike: { [`aws:RequestTag/${TAG.quarantine}`]: 'vpc-*' } },
  },
} satisfies Record<string, RoleLimit>;

/** The runbook. */
export const isolateVpc = defineRunbook({
  id: 'isolate-vpc',
  title: 'Isolate a VPC behind a quarantine network ACL',
  risk: 'destructive',
  description:
    'move every subnet of a VPC onto a deny-all quarantine network ACL (optionally allowing one forensic CIDR)',
  usage:
    'isolate-vpc vpc-0abc… [account=prod] [region=eu-west-1] [allow=10.9.0.0/24] [reason="…"] [force=true]',
  input: IsolateVpcInputSchema,
  access: 'respond',
  iam: {
    plan: [
      'ec2:DescribeVpcs',
      'ec2:DescribeSubnets',
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkInterfaces',
    ],
    // ec2:CreateTags is not called on its own: tagging on create (TagSpecifications) needs it.
    // The evidence (before the change) reads the ACLs, security groups and flow logs with this role too.
    execute: [
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeFlowLogs',
      'ec2:CreateNetworkAcl',
      'ec2:CreateTags',
      'ec2:CreateNetworkAclEntry',
      'ec2:ReplaceNetworkAclAssociation',
    ],
    undo: ['ec2:DescribeNetworkAcls', 'ec2:ReplaceNetworkAclAssociation', 'ec2:DeleteNetworkAcl'],
    limits: [
      NETWORK_ACL_ROLE_LIMITS.createQuarantine,
      NETWORK_ACL_ROLE_LIMITS.tagOnCreate,
      NETWORK_ACL_ROLE_LIMITS.deleteQuarantine,
    ],
  },
  rateLimits: NETWORK_ACL_RATE_LIMITS,
  plan: planIsolate,
  recheck: recheckIsolate,
  evidence: captureVpcEvidence,
  execute: executeIsolate,
  verify: verifyIsolate,
  sessionGrants: isolateGrants,
  undo: {
    title: 'Put every subnet back on its previous network ACL and delete the quarantine ACL',
    plan: (ctx, source) => planRestore(ctx, source.plan.data.vpcId),
    recheck: recheckRestore,
    execute: executeRestore,
    verify: verifyRestore,
    sessionGrants: restoreGrants,
  },
});
