/**
 * Who must approve what, and who may: required counts per runbook (from config, else by risk), the
 * approver list of users and user groups (group membership looked up at click time), break-glass users,
 * and the channel guardrails that say what may run where. Everything fails closed.
 */
import type { Config } from '../config.ts';
import { NotAllowedError } from '../errors.ts';

/** A runbook's risk decides its default number of approvals. */
export type Risk = 'read-only' | 'mutating' | 'destructive';

const DEFAULT_REQUIRED: Record<Risk, number> = { 'read-only': 0, mutating: 1, destructive: 2 };

/**
 * How fresh a membership answer must be: `now` asks Slack (an approval is checked against the group at
 * click time); `recent` may come from a short-lived cache (who may request, what `help` and the Home tab
 * show: the click that acts is checked `now` again).
 */
export type Freshness = 'now' | 'recent';

/** Looks up Slack user-group membership (implemented over the Slack API by the commands layer). */
export interface ApproverDirectory {
  /** The members of a user group (S…); `recent` when not said. */
  groupMembers(groupId: string, freshness?: Freshness): Promise<ReadonlySet<string>>;
}

/**
 * Runbooks that make the same change as another runbook's Undo, with that Undo's risk (an Undo runs at its
 * runbook's risk): they need at least the approvals that Undo needs, or typing the stand-alone command
 * would skip an approver. restore-vpc puts back exactly what the Undo of isolate-vpc (destructive) does,
 * release-instance what the Undo of isolate-instance (destructive) does.
 */
const UNDO_EQUIVALENTS: Readonly<Record<string, { undoOf: string; risk: Risk }>> = {
  'restore-vpc': { undoOf: 'isolate-vpc', risk: 'destructive' },
  'release-instance': { undoOf: 'isolate-instance', risk: 'destructive' },
};

/** How many distinct approvals a runbook needs. Read-only runbooks need none. */
export function requiredApprovals(config: Config, runbookId: string, risk: Risk): number {
  if (risk === 'read-only') return 0;
  const configured = config.approvals.runbooks[runbookId]?.required;
  // A changing runbook always needs at least one other person unless break-glass is used.
  const own = Math.max(configured ?? DEFAULT_REQUIRED[risk], 1);
  const equivalent = UNDO_EQUIVALENTS[runbookId];
  return equivalent ? Math.max(own, requiredApprovals(config, equivalent.undoOf, equivalent.risk)) : own;
}

/**
 * Who can change a policy: the people who maintain quell's configuration. quell does not know them, so
 * it names the approvers (the security leads who decide runs), users and groups alike.
 */
export function policyContacts(config: Config): string[] {
  return [...config.approvals.approvers];
}

/** Whether the user may skip approval (and owes a post-hoc review). */
export function isBreakGlass(config: Config, userId: string): boolean {
  return config.approvals.breakGlass.includes(userId);
}

/**
 * Whether `userId` is listed directly or through a group; throws NotAllowedError when not. Group
 * membership is asked of Slack `now` unless the caller only shows something (`recent`).
 */
export async function assertApprover(
  config: Config,
  directory: ApproverDirectory,
  userId: string,
  freshness: Freshness = 'now',
): Promise<void> {
  if (await isListed(config.approvals.approvers, directory, userId, freshness)) return;
  throw new NotAllowedError(
    'You are not an approver for quell. Approvers are listed in `approvals.approvers` of the configuration; ask your security lead to add you or your user group.',
    'approvals.approvers',
    policyContacts(config),
  );
}

/**
 * Whether `userId` is an approver right now (listed directly or through a group, asked of Slack `now`):
 * an earlier approval counts toward the quorum only while its approver still is one.
 */
export function isApprover(config: Config, directory: ApproverDirectory, userId: string): Promise<boolean> {
  return isListed(config.approvals.approvers, directory, userId, 'now');
}

/**
 * Whether `userId` may request the runbook (per-runbook `requesters`; everyone when not set). `recent`
 * membership when a request is made; `now` when a click acts under an earlier request (a retry).
 */
export async function assertRequester(
  config: Config,
  directory: ApproverDirectory,
  runbookId: string,
  userId: string,
  freshness: Freshness = 'recent',
): Promise<void> {
  const requesters = config.approvals.runbooks[runbookId]?.requesters;
  if (!requesters || (await isListed(requesters, directory, userId, freshness))) return;
  throw new NotAllowedError(
    `You may not request \`${runbookId}\`: \`approvals.runbooks.${runbookId}.requesters\` does not list you or a group of yours. Ask your security lead.`,
    `approvals.runbooks.${runbookId}.requesters`,
    policyContacts(config),
  );
}

/** The Slack users `approvals.identities` gives an AWS identity (ARN) to; none for an unknown one. */
export function slackUsersOf(config: Config, awsIdentity: string | undefined): string[] {
  if (awsIdentity === undefined) return [];
  return Object.entries(config.approvals.identities)
    .filter(([, arns]) => arns.includes(awsIdentity))
    .map(([user]) => user);
}

/**
 * Whether a break-glass CLI operator may request the runbook: per-runbook `requesters` list Slack users,
 * and the operator is known only by the AWS identity they proved, so the list is satisfied only through
 * `approvals.identities` (never by a name the operator typed). Throws NotAllowedError when not.
 */
export async function assertCliRequester(
  config: Config,
  directory: ApproverDirectory,
  runbookId: string,
  awsIdentity: string | undefined,
): Promise<void> {
  const requesters = config.approvals.runbooks[runbookId]?.requesters;
  if (!requesters) return;
  for (const user of slackUsersOf(config, awsIdentity))
    if (await isListed(requesters, directory, user, 'recent')) return;
  throw new NotAllowedError(
    `You may not request \`${runbookId}\` from the CLI: \`approvals.runbooks.${runbookId}.requesters\` lists Slack users, and your AWS identity ${awsIdentity ?? '(unknown)'} is not given to one of them under \`approvals.identities\` (--as does not count). Ask your security lead.`,
    `approvals.runbooks.${runbookId}.requesters`,
    policyContacts(config),
  );
}

/**
 * Whether `reviewer` may review a break-glass run from the CLI whose operator proved `operatorArn`: not
 * when `approvals.identities` gives that ARN to the reviewer, and not when it gives it to nobody (quell
 * could not tell the reviewer is someone else; adding the ARN to its owner's entry unblocks the review).
 */
export function assertNotOperator(config: Config, operatorArn: string, reviewer: string): void {
  const owners = slackUsersOf(config, operatorArn);
  if (owners.includes(reviewer))
    throw new NotAllowedError(
      `You ran this break-glass run from the CLI (as ${operatorArn}, which \`approvals.identities\` gives to you): someone else has to review it.`,
      'two-people',
    );
  if (owners.length === 0)
    throw new NotAllowedError(
      `This break-glass run was run from the CLI by ${operatorArn}, which \`approvals.identities\` gives to nobody, so quell cannot tell that you are not its operator. Add the ARN to its owner's entry under \`approvals.identities\`, then review it.`,
      'approvals.identities',
      policyContacts(config),
    );
}

async function isListed(
  principals: readonly string[],
  directory: ApproverDirectory,
  userId: string,
  freshness: Freshness,
): Promise<boolean> {
  if (principals.includes(userId)) return true;
  const groups = principals.filter((p) => p.startsWith('S'));
  for (const group of groups) {
    if ((await directory.groupMembers(group, freshness)).has(userId)) return true;
  }
  return false;
}

/** Whether the channel's guardrail allows the runbook on the account (alias, or undefined before it is known). */
export function channelAllows(
  config: Config,
  channel: string,
  runbookId: string,
  accountAlias?: string,
): boolean {
  const rule = config.channels[channel];
  if (!rule) return false;
  const runbookOk = rule.runbooks.includes('*') || rule.runbooks.includes(runbookId);
  const accountOk =
    accountAlias === undefined || rule.accounts.includes('*') || rule.accounts.includes(accountAlias);
  return runbookOk && accountOk;
}

/** Throws NotAllowedError naming the rule when the channel's guardrail refuses. */
export function assertChannelAllows(
  config: Config,
  channel: string,
  runbookId: string,
  accountAlias?: string,
): void {
  const rule = config.channels[channel];
  const contacts = policyContacts(config);
  if (!rule) {
    const place = channel.startsWith('D') ? 'this direct message' : 'this channel';
    throw new NotAllowedError(
      `quell runs nothing in ${place}: it has no entry under \`channels\` in the configuration (a direct message counts as a channel of its own). Use an incident channel, or ask your security lead to add \`${channel}\`.`,
      `channels.${channel}`,
      contacts,
    );
  }
  if (!channelAllows(config, channel, runbookId)) {
    throw new NotAllowedError(
      `\`${runbookId}\` may not run in this channel (\`channels.${channel}.runbooks\` allows ${rule.runbooks.map((r) => `\`${r}\``).join(', ') || 'nothing'}). Ask your security lead to change it.`,
      `channels.${channel}.runbooks`,
      contacts,
    );
  }
  if (accountAlias !== undefined && !channelAllows(config, channel, runbookId, accountAlias)) {
    throw new NotAllowedError(
      `Account \`${accountAlias}\` may not be used from this channel (\`channels.${channel}.accounts\` allows ${rule.accounts.map((a) => `\`${a}\``).join(', ') || 'nothing'}). Ask your security lead to change it.`,
      `channels.${channel}.accounts`,
      contacts,
    );
  }
}
