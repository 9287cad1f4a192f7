/**
 * A security finding as quell shows and acts on it, whichever service raised it (GuardDuty, or any
 * product through Security Hub's ASFF): who, where, how bad, and the resources a runbook can act on
 * (an access key, an instance, a role). Which runbook each kind of resource starts, and with what
 * arguments, is decided here; whether a card offers it depends on the runbooks the engine has and on the
 * channel's guardrail.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { type Config, FINDING_SEVERITIES, type FindingSeverity } from '../config.ts';

/** Where a finding came from. */
export type FindingSource = 'guardduty' | 'securityhub';

/** A resource of the finding that a runbook can act on. */
export type FindingTarget =
  | { kind: 'access-key'; accessKeyId: string; userName: string | null }
  | { kind: 'instance'; instanceId: string; region: string }
  | { kind: 'role'; roleArn: string };

/** A finding, reduced to what the card shows and the buttons need. Stored with its card. */
export interface SecurityFinding {
  source: FindingSource;
  /** GuardDuty's finding id, or the ASFF `Id`: the key of de-duplication. */
  id: string;
  /** GuardDuty's finding type (`UnauthorizedAccess:IAMUser/…`) or the first ASFF `Types` entry. */
  type: string;
  title: string;
  description: string;
  severity: FindingSeverity;
  /** GuardDuty's 1.0–10.0 score, or the ASFF `Normalized` 0–100; null when absent. */
  score: number | null;
  accountId: string;
  region: string;
  /** The product that raised it (`GuardDuty`, `Inspector`, …). */
  product: string;
  updatedAt: string | null;
  /** Resources a runbook can act on, in the finding's order (buttons refer to them by index). */
  targets: FindingTarget[];
  /** Every resource named by the finding, one short line each (for the card), at most 10. */
  resources: string[];
}

/** Which runbook each kind of resource starts. Runbooks are matched by id: a card offers only those the engine has. */
export const TARGET_RUNBOOK: Record<FindingTarget['kind'], string> = {
  'access-key': 'disable-key',
  instance: 'isolate-instance',
  role: 'revoke-role-sessions',
};

/** Long-term IAM user keys only: disable-key refuses temporary (ASIA…) keys, whose sessions belong to a role. */
export const LONG_TERM_KEY = /^AKIA[A-Z2-7]{16}$/;
export const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
/** A role ARN, not a service-linked role (those belong to AWS services and cannot be restricted). */
export const ROLE_ARN =
  /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?!aws-service-role\/)(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;

/** Whether `severity` is at least `min`. */
export function atLeast(severity: FindingSeverity, min: FindingSeverity): boolean {
  return FINDING_SEVERITIES.indexOf(severity) >= FINDING_SEVERITIES.indexOf(min);
}

const FINDING_REF = /^f[0-9a-f]{20}$/;

/** The short reference a finding's buttons carry: derived from its id, so every replica names it alike. */
export function findingRef(findingId: string): string {
  return `f${createHash('sha256').update(findingId).digest('hex').slice(0, 20)}`;
}

/** A button's value: the finding's reference and the index of the resource it acts on. */
export function targetRef(ref: string, index: number): string {
  return `${ref}.${index}`;
}

/** The finding reference and resource index of a button's value; undefined for anything else. */
export function parseTargetRef(value: string): { ref: string; index: number } | undefined {
  const [ref, index, ...rest] = value.split('.');
  if (rest.length > 0 || !ref || !FINDING_REF.test(ref) || !index || !/^\d$/.test(index)) return undefined;
  return { ref, index: Number(index) };
}

/** The account a target belongs to: the role's own account, else the finding's. */
export function targetAccountId(finding: SecurityFinding, target: FindingTarget): string {
  return target.kind === 'role'
    ? (ROLE_ARN.exec(target.roleArn)?.[1] ?? finding.accountId)
    : finding.accountId;
}

/** One button a card offers: which resource, which runbook, in which configured account. */
export interface OfferedAction {
  index: number;
  target: FindingTarget;
  runbook: string;
  accountAlias: string;
}

/**
 * The buttons a finding's card offers in `channel`: a resource whose runbook the engine has (`runbookIds`),
 * in a configured account, where the channel's guardrail allows both. At most 5 (the card's limit).
 */
export function listOfferedActions(
  finding: SecurityFinding,
  config: Pick<Config, 'accounts' | 'channels'>,
  runbookIds: readonly string[],
  channel: string,
): OfferedAction[] {
  const rule = config.channels[channel];
  if (!rule) return [];
  const offered: OfferedAction[] = [];
  finding.targets.forEach((target, index) => {
    const runbook = TARGET_RUNBOOK[target.kind];
    const account = config.accounts.find((a) => a.id === targetAccountId(finding, target));
    if (!account || !runbookIds.includes(runbook)) return;
    if (!rule.runbooks.includes('*') && !rule.runbooks.includes(runbook)) return;
    if (!rule.accounts.includes('*') && !rule.accounts.includes(account.alias)) return;
    offered.push({ index, target, runbook, accountAlias: account.alias });
  });
  return offered.slice(0, 5);
}

/** Command arguments, in the grammar's shape (`positional`, `options`). */
export interface FindingCommandArgs {
  positional: string[];
  options: Record<string, string>;
}

/** The label of a finding's source, as people know it. */
export function sourceLabel(source: FindingSource): string {
  return source === 'guardduty' ? 'GuardDuty' : 'Security Hub';
}

/**
 * The command a button starts, filled from the stored finding: the resource, the account, the region
 * (for an instance) and a reason naming the finding.
 */
export function buildCommandArgs(
  finding: SecurityFinding,
  ref: string,
  action: Pick<OfferedAction, 'target' | 'accountAlias'>,
): FindingCommandArgs {
  const reason = `${sourceLabel(finding.source)} finding ${finding.type} (${ref})`.slice(0, 500);
  const { target, accountAlias } = action;
  switch (target.kind) {
    case 'access-key':
      return { positional: [target.accessKeyId], options: { account: accountAlias, reason } };
    case 'instance':
      return {
        positional: [target.instanceId],
        options: { account: accountAlias, region: target.region, reason },
      };
    case 'role':
      return { positional: [target.roleArn], options: { account: accountAlias, reason } };
  }
}

const TargetSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('access-key'),
    accessKeyId: z.string().regex(LONG_TERM_KEY),
    userName: z.string().max(128).nullable(),
  }),
  z.object({ kind: z.literal('instance'), instanceId: z.string().regex(INSTANCE_ID), region: z.string() }),
  z.object({ kind: z.literal('role'), roleArn: z.string().regex(ROLE_ARN) }),
]);

/** A stored finding, read back (the store holds JSON; the buttons act only on what reads back whole). */
export const SecurityFindingSchema: z.ZodType<SecurityFinding> = z.object({
  source: z.enum(['guardduty', 'securityhub']),
  id: z.string().min(1),
  type: z.string(),
  title: z.string(),
  description: z.string(),
  severity: z.enum(FINDING_SEVERITIES),
  score: z.number().nullable(),
  accountId: z.string().regex(/^\d{12}$/),
  region: z.string(),
  product: z.string(),
  updatedAt: z.string().nullable(),
  targets: z.array(TargetSchema),
  resources: z.array(z.string()),
});
