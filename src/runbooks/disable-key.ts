/**
 * disable-key: deactivate an IAM user's access key and revoke the sessions already minted from the
 * user's credentials (an inline deny on `aws:TokenIssueTime` earlier than the moment the key is confirmed
 * Inactive plus a margin for IAM propagation, the pattern of the console's "revoke active sessions").
 * Undo re-activates the key and removes (or restores) the deny.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { IAMClient } from '@aws-sdk/client-iam';
import { z } from 'zod';
import type { SessionGrant, SessionTarget } from '../aws/build-session-policy.ts';
import type { ScopedAws } from '../aws/client-factory.ts';
import { iamRegionFor } from '../aws/partitions.ts';
import type { AccountConfig } from '../config.ts';
import { AwsResourceNotFoundError, PlanRefusedError, QuellError, RunStateConflictError } from '../errors.ts';
import type { Json, RunRecord } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  type EvidenceDocument,
  type Outcome,
  type Plan,
  ReasonOptionSchema,
  type RunContext,
} from './define-runbook.ts';
import type { CommandArgs } from './engine/command-grammar.ts';
import { type AssumedRoles, describeAssumedRoles, findAssumedRoles } from './find-assumed-roles.ts';
import { parseRoleArn } from './revoke-role-sessions.ts';

/** The IAM SDK, loaded by the first run that calls IAM rather than when quell starts (docs/benchmarks.md, memory). */
const loadIam = () => import('@aws-sdk/client-iam');

/** Long-term (AKIA) and temporary (ASIA) access key ids: 4 letters, then 16 base32 characters. */
export const AccessKeyIdSchema = z
  .string()
  .regex(
    /^(AKIA|ASIA)[A-Z2-7]{16}$/,
    'an access key id is AKIA or ASIA followed by 16 characters A–Z or 2–7, like AKIAIOSFODNN7EXAMPLE',
  );

const DisableKeyInputSchema = z
  .object({
    positional: z.tuple([AccessKeyIdSchema], { error: 'give exactly one access key id' }),
    options: z.object({ account: AccountOptionSchema, reason: ReasonOptionSchema }).strict(),
  })
  .transform(({ positional: [keyId], options }) => ({
    keyId,
    account: options.account,
    reason: options.reason,
    region: undefined,
  }));

type DisableKeyInput = z.infer<typeof DisableKeyInputSchema>;

/** What execute needs, fixed at plan time. */
type DisableKeyData = {
  keyId: string;
  userName: string;
  accountId: string;
  statusBefore: 'Active' | 'Inactive';
  policyName: string;
  /** The same-named inline policy before this run (restored by undo), or null. */
  priorPolicy: string | null;
};

type DisableKeyResult = {
  keyDeactivated: boolean;
  policyAttached: boolean;
  /** When a read-back first showed the key Inactive (ISO 8601), or null when none did. */
  keyConfirmedInactiveAt: string | null;
  tokenIssueTimeBefore: string;
  failures: string[];
  /** The roles the key assumed in the 24 hours before (CloudTrail), looked up after the change. */
  assumedRoles?: AssumedRoles;
};

type UndoData = {
  keyId: string;
  userName: string;
  policyName: string;
  reactivate: boolean;
  policyAction: 'delete' | 'restore' | 'none';
  priorPolicy: string | null;
};

type UndoResult = { keyReactivated: boolean; policyReverted: boolean; failures: string[] };

/**
 * The command behind a succeeded run's "Look up this key's activity" button: `trail` for the key in the
 * stored plan (never from the message), the last 24 hours, in the same account.
 */
export function keyActivityArgs(run: RunRecord): CommandArgs {
  const keyId = (run.plan as { data?: { keyId?: unknown } } | null)?.data?.keyId;
  const parsed = AccessKeyIdSchema.safeParse(keyId);
  if (!parsed.success) throw new RunStateConflictError(`Run \`${run.id}\` has no access key on record.`);
  return {
    positional: [],
    options: { key: parsed.data, since: '24h', ...(run.accountAlias ? { account: run.accountAlias } : {}) },
  };
}

/** How many "Revoke sessions of <role>" buttons a card offers at most (the most recently assumed roles). */
export const REVOKE_ROLE_BUTTONS = 3;

/** The role behind button `index` of a succeeded run: from the stored result, never from the message. */
function assumedRoleAt(run: RunRecord, index: number): string | undefined {
  const roles = (run.result as { execute?: { data?: { assumedRoles?: { roles?: unknown } } } } | null)
    ?.execute?.data?.assumedRoles?.roles;
  if (!Array.isArray(roles)) return undefined;
  return parseRoleArn((roles[index] as { arn?: unknown } | undefined)?.arn)?.arn;
}

/**
 * The follow-up for the `index`-th role the key assumed: offered only when the run's stored CloudTrail
 * lookup found one; starts revoke-role-sessions for that role (its account is read from the ARN).
 */
function revokeRoleFollowUp(index: number) {
  return {
    actionId: `quell_revoke_role_sessions_${index + 1}`,
    label: 'Revoke sessions of the role',
    runbook: 'revoke-role-sessions',
    offered: (run: RunRecord) => assumedRoleAt(run, index) !== undefined,
    labelFor: (run: RunRecord) => {
      const arn = assumedRoleAt(run, index) ?? '';
      const name = arn.slice(arn.lastIndexOf('/') + 1);
      return `Revoke sessions of ${name.length > 50 ? `${name.slice(0, 49)}…` : name}`;
    },
    args: (run: RunRecord): CommandArgs => {
      const arn = assumedRoleAt(run, index);
      if (!arn)
        throw new RunStateConflictError(`Run \`${run.id}\` has no assumed role on record for this button.`);
      return { positional: [arn], options: {} };
    },
  };
}

/** The inline policy name: one per key, so undoing one key never lifts another key's revocation. */
export function revokePolicyName(keyId: string): string {
  return `quell-revoke-sessions-${keyId}`;
}

/**
 * How far past the moment a read-back shows the key Inactive the revocation cutoff lies. IAM is eventually
 * consistent (IAM User Guide, "Changes that I make are not always immediately visible"): for a while after
 * UpdateAccessKey another endpoint may still accept the key, and a session minted there then lives up to
 * 36 hours (GetSessionToken). Sessions of the user issued within the margin are denied too.
 */
export const IAM_PROPAGATION_MARGIN_MS = 5 * 60_000;
const MARGIN_TEXT = `${IAM_PROPAGATION_MARGIN_MS / 60_000} minutes`;

/** Read-backs of the key's status after UpdateAccessKey, one second apart, before giving up. */
const CONFIRM_ATTEMPTS = 5;
const CONFIRM_INTERVAL_MS = 1_000;

/** The deny-all policy for sessions issued before `before` (the console's "revoke active sessions"). */
export function revokeSessionsPolicy(before: Date): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'QuellRevokeOlderSessions',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { DateLessThan: { 'aws:TokenIssueTime': before.toISOString() } },
      },
    ],
  });
}

// IAM returns policy documents URL-encoded (RFC 3986); some emulators return them as-is.
function decodePolicy(document: string | undefined): string | null {
  if (!document) return null;
  return document.trimStart().startsWith('{') ? document : decodeURIComponent(document);
}

async function findKey(iam: IAMClient, userName: string, keyId: string) {
  const { ListAccessKeysCommand } = await loadIam();
  const out = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  return out.AccessKeyMetadata?.find((k) => k.AccessKeyId === keyId);
}

async function readInlinePolicy(
  iam: IAMClient,
  userName: string,
  policyName: string,
): Promise<string | null> {
  const { ListUserPoliciesCommand, GetUserPolicyCommand } = await loadIam();
  const names = await iam.send(new ListUserPoliciesCommand({ UserName: userName }));
  if (!names.PolicyNames?.includes(policyName)) return null;
  const out = await iam.send(new GetUserPolicyCommand({ UserName: userName, PolicyName: policyName }));
  return decodePolicy(out.PolicyDocument);
}

/** The owner of `keyId` in the scope's account, or undefined when the key is not in that account. */
async function findOwner(aws: ScopedAws, keyId: string) {
  const { IAMClient, GetAccessKeyLastUsedCommand } = await loadIam();
  const iam = aws.client(IAMClient);
  let lastUsed: {
    UserName?: string | undefined;
    AccessKeyLastUsed?: { LastUsedDate?: Date; ServiceName?: string; Region?: string } | undefined;
  };
  try {
    lastUsed = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: keyId }));
  } catch (error) {
    if (error instanceof AwsResourceNotFoundError) return undefined;
    throw error;
  }
  if (!lastUsed.UserName) return undefined;
  // GetAccessKeyLastUsed can answer for keys of other accounts; the key must be listed under the user here.
  let key: Awaited<ReturnType<typeof findKey>>;
  try {
    key = await findKey(iam, lastUsed.UserName, keyId);
  } catch (error) {
    if (error instanceof AwsResourceNotFoundError) return undefined;
    throw error;
  }
  if (!key) return undefined;
  return { userName: lastUsed.UserName, key, lastUsed: lastUsed.AccessKeyLastUsed };
}

function refuseTemporaryKey(keyId: string): void {
  if (keyId.startsWith('ASIA')) {
    throw new PlanRefusedError(
      `\`${keyId}\` is a temporary (ASIA…) session credential: it cannot be deactivated, it expires by itself. Find the role that issued it with \`trail key=${keyId}\` and revoke that role's sessions.`,
    );
  }
}

function describeLastUse(
  lastUsed: { LastUsedDate?: Date; ServiceName?: string; Region?: string } | undefined,
): string {
  if (!lastUsed?.LastUsedDate) return 'never used';
  const service = lastUsed.ServiceName && lastUsed.ServiceName !== 'N/A' ? ` (${lastUsed.ServiceName}` : '';
  const region = lastUsed.Region && lastUsed.Region !== 'N/A' ? `, ${lastUsed.Region})` : service ? ')' : '';
  return `${lastUsed.LastUsedDate.toISOString()}${service}${region}`;
}

async function planDisable(ctx: RunContext, input: DisableKeyInput): Promise<Plan<DisableKeyData>> {
  const { IAMClient } = await loadIam();
  refuseTemporaryKey(input.keyId);
  const owner = await findOwner(ctx.aws, input.keyId);
  if (!owner) {
    throw new AwsResourceNotFoundError(
      `No access key \`${input.keyId}\` in account \`${ctx.account.alias}\` (${ctx.account.id}). Check the key id, or leave out \`account=\` to search every configured account.`,
    );
  }
  const iam = ctx.aws.client(IAMClient);
  const policyName = revokePolicyName(input.keyId);
  const priorPolicy = await readInlinePolicy(iam, owner.userName, policyName);
  const statusBefore = owner.key.Status === 'Inactive' ? 'Inactive' : 'Active';
  const calls: Plan['calls'] = [];
  if (statusBefore === 'Active') {
    calls.push({
      action: 'iam:UpdateAccessKey',
      params: { UserName: owner.userName, AccessKeyId: input.keyId, Status: 'Inactive' },
    });
  }
  calls.push({
    action: 'iam:PutUserPolicy',
    params: {
      UserName: owner.userName,
      PolicyName: policyName,
      PolicyDocument: `Deny * on * when aws:TokenIssueTime < <the time the key reads back Inactive> + ${MARGIN_TEXT} (IAM propagation)`,
    },
  });
  const notes: string[] = [];
  if (statusBefore === 'Inactive')
    notes.push('The key is already Inactive: it will not be changed; only its sessions are revoked.');
  if (priorPolicy)
    notes.push(
      `\`${policyName}\` already exists from an earlier run; it is replaced with the new time (undo restores it).`,
    );
  notes.push(
    `The session cutoff is taken after the key reads back Inactive, plus ${MARGIN_TEXT} for IAM to propagate the change: every temporary session of \`${owner.userName}\` issued before then is denied, including one minted from this key while it was being turned off (and any the user starts with another key in those ${MARGIN_TEXT}). The user's other active keys keep working.`,
  );
  return {
    summary:
      statusBefore === 'Active'
        ? `Disable ${input.keyId} of ${owner.userName} and revoke its sessions`
        : `Revoke sessions of ${owner.userName} (${input.keyId} is already Inactive)`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', 'global (IAM)'],
      ['Access key', input.keyId],
      ['Owner', owner.userName],
      ['Status', statusBefore],
      ['Created', owner.key.CreateDate?.toISOString() ?? 'unknown'],
      ['Last used', describeLastUse(owner.lastUsed)],
    ],
    calls,
    notes,
    material: {
      accountId: ctx.account.id,
      userName: owner.userName,
      keyId: input.keyId,
      status: statusBefore,
      priorPolicy,
    },
    data: {
      keyId: input.keyId,
      userName: owner.userName,
      accountId: ctx.account.id,
      statusBefore,
      policyName,
      priorPolicy,
    },
  };
}

/**
 * Reads the key back until it shows Inactive (IAM is eventually consistent), a second apart; returns the
 * time of the read that showed it, or null.
 */
async function confirmInactive(ctx: RunContext, iam: IAMClient, userName: string, keyId: string) {
  for (let attempt = 0; attempt < CONFIRM_ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(CONFIRM_INTERVAL_MS, undefined, { signal: ctx.signal });
    const key = await findKey(iam, userName, keyId);
    if (key?.Status === 'Inactive') return ctx.now();
  }
  return null;
}

/**
 * Turns the key off, reads it back until it shows Inactive, and only then writes the session deny, with
 * the cutoff at that moment plus the propagation margin: a session minted from the key after the approval
 * but before the key was really off is issued before the cutoff, and denied.
 */
async function executeDisable(
  ctx: RunContext,
  plan: Plan<DisableKeyData>,
): Promise<Outcome<DisableKeyResult>> {
  const { IAMClient, UpdateAccessKeyCommand, PutUserPolicyCommand } = await loadIam();
  const { keyId, userName, policyName, statusBefore } = plan.data;
  const iam = ctx.aws.client(IAMClient);
  const failures: string[] = [];
  let keyDeactivated = false;
  if (statusBefore === 'Active') {
    try {
      await iam.send(
        new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: keyId, Status: 'Inactive' }),
        {
          abortSignal: ctx.signal,
        },
      );
      keyDeactivated = true;
    } catch (error) {
      failures.push(messageOf(error));
    }
  }
  let confirmedAt: Date | null = null;
  if (failures.length === 0) {
    confirmedAt = await confirmInactive(ctx, iam, userName, keyId);
    if (!confirmedAt)
      failures.push(
        `${keyId} did not read back as Inactive after ${CONFIRM_ATTEMPTS} tries; check it in the IAM console.`,
      );
  }
  // Even when the key could not be turned off, the sessions issued so far are revoked.
  const before = new Date((confirmedAt ?? ctx.now()).getTime() + IAM_PROPAGATION_MARGIN_MS);
  let policyAttached = false;
  try {
    await iam.send(
      new PutUserPolicyCommand({
        UserName: userName,
        PolicyName: policyName,
        PolicyDocument: revokeSessionsPolicy(before),
      }),
      { abortSignal: ctx.signal },
    );
    policyAttached = true;
  } catch (error) {
    failures.push(messageOf(error));
  }
  const cutoff = before.toISOString();
  // After the change, not before it: the roles the key assumed, whose sessions outlive the key (the
  // card offers to revoke them). Never fails the run; a CloudTrail that cannot be read is said so.
  const assumedRoles = await findAssumedRoles(ctx, keyId, [
    ...new Set([iamRegionFor(ctx.account.roles.read), ...ctx.account.regions]),
  ]);
  const why = confirmedAt
    ? `the key read back Inactive at ${confirmedAt.toISOString()}, plus ${MARGIN_TEXT} for IAM propagation`
    : `the key was NOT confirmed Inactive; ${MARGIN_TEXT} after the attempt`;
  return {
    ok: failures.length === 0,
    summary:
      failures.length === 0
        ? `${statusBefore === 'Active' ? `Deactivated ${keyId}` : `${keyId} was already Inactive`}; sessions of ${userName} issued before ${cutoff} are denied (${why}).`
        : `Partly applied: key ${keyDeactivated ? (confirmedAt ? 'deactivated' : 'deactivated but not confirmed Inactive') : statusBefore === 'Inactive' ? (confirmedAt ? 'already inactive' : 'NOT confirmed Inactive') : 'NOT deactivated'}, session deny ${policyAttached ? `attached (sessions issued before ${cutoff})` : 'NOT attached'}. ${failures.join(' ')}`,
    facts: [
      [
        'Key',
        keyDeactivated
          ? confirmedAt
            ? `Inactive (changed; read back at ${confirmedAt.toISOString()})`
            : 'deactivated, NOT confirmed Inactive'
          : statusBefore === 'Inactive'
            ? 'Inactive (unchanged)'
            : 'unchanged',
      ],
      ['Sessions revoked', policyAttached ? `issued before ${cutoff} (${why})` : 'no'],
      ['Roles it assumed (24 h)', describeAssumedRoles(assumedRoles)],
    ],
    data: {
      keyDeactivated,
      policyAttached,
      keyConfirmedInactiveAt: confirmedAt?.toISOString() ?? null,
      tokenIssueTimeBefore: cutoff,
      failures,
      assumedRoles,
    },
  };
}

async function verifyDisable(
  ctx: RunContext,
  plan: Plan<DisableKeyData>,
  result: Outcome<DisableKeyResult>,
): Promise<Outcome> {
  const { IAMClient } = await loadIam();
  const { keyId, userName, policyName } = plan.data;
  const iam = ctx.aws.client(IAMClient);
  const [key, policy] = await Promise.all([
    findKey(iam, userName, keyId),
    readInlinePolicy(iam, userName, policyName),
  ]);
  const keyInactive = key?.Status === 'Inactive';
  const policyOk =
    (policy?.includes(result.data.tokenIssueTimeBefore) ?? false) && policy?.includes('"Deny"') === true;
  return {
    ok: keyInactive && policyOk,
    summary:
      keyInactive && policyOk
        ? 'Verified: key Inactive, session deny in place.'
        : 'Verification failed: see the facts.',
    facts: [
      ['Key status now', key?.Status ?? 'not found'],
      ['Session deny policy', policyOk ? `${policyName} present` : 'missing or different'],
    ],
    data: { keyStatus: key?.Status ?? null, policyPresent: policy !== null },
  };
}

async function planUndo(
  ctx: RunContext,
  original: { plan: Plan<DisableKeyData>; result: Outcome<DisableKeyResult> },
): Promise<Plan<UndoData>> {
  const { IAMClient } = await loadIam();
  const { keyId, userName, policyName, priorPolicy } = original.plan.data;
  const iam = ctx.aws.client(IAMClient);
  const [key, policy] = await Promise.all([
    findKey(iam, userName, keyId),
    readInlinePolicy(iam, userName, policyName),
  ]);
  if (!key)
    throw new AwsResourceNotFoundError(
      `Access key \`${keyId}\` of \`${userName}\` no longer exists; there is nothing to re-activate.`,
    );
  const reactivate = original.result.data.keyDeactivated && key.Status === 'Inactive';
  const policyAction: UndoData['policyAction'] =
    !original.result.data.policyAttached || policy === null ? 'none' : priorPolicy ? 'restore' : 'delete';
  const calls: Plan['calls'] = [];
  if (reactivate)
    calls.push({
      action: 'iam:UpdateAccessKey',
      params: { UserName: userName, AccessKeyId: keyId, Status: 'Active' },
    });
  if (policyAction === 'delete')
    calls.push({ action: 'iam:DeleteUserPolicy', params: { UserName: userName, PolicyName: policyName } });
  if (policyAction === 'restore') {
    calls.push({
      action: 'iam:PutUserPolicy',
      params: {
        UserName: userName,
        PolicyName: policyName,
        PolicyDocument: 'the policy as it was before the run',
      },
    });
  }
  if (calls.length === 0)
    throw new PlanRefusedError(
      'Nothing to undo: the key and the session policy are already as they were before the run.',
    );
  const notes = original.result.data.keyDeactivated
    ? []
    : ['The key was already Inactive before the run, so it stays Inactive.'];
  return {
    summary: `Undo: ${reactivate ? `re-activate ${keyId}` : `leave ${keyId} ${key.Status}`} and ${policyAction === 'none' ? 'leave the session policy' : 'lift the session revocation'}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Access key', keyId],
      ['Owner', userName],
      ['Status now', key.Status ?? 'unknown'],
    ],
    calls,
    notes,
    material: { keyId, userName, status: key.Status ?? null, policy },
    data: { keyId, userName, policyName, reactivate, policyAction, priorPolicy },
  };
}

async function executeUndo(ctx: RunContext, plan: Plan<UndoData>): Promise<Outcome<UndoResult>> {
  const { IAMClient, UpdateAccessKeyCommand, DeleteUserPolicyCommand, PutUserPolicyCommand } =
    await loadIam();
  const { keyId, userName, policyName, reactivate, policyAction, priorPolicy } = plan.data;
  const iam = ctx.aws.client(IAMClient);
  const [update, policy] = await Promise.allSettled([
    reactivate
      ? iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: keyId, Status: 'Active' }))
      : Promise.resolve(undefined),
    policyAction === 'delete'
      ? iam.send(new DeleteUserPolicyCommand({ UserName: userName, PolicyName: policyName }))
      : policyAction === 'restore' && priorPolicy
        ? iam.send(
            new PutUserPolicyCommand({
              UserName: userName,
              PolicyName: policyName,
              PolicyDocument: priorPolicy,
            }),
          )
        : Promise.resolve(undefined),
  ]);
  const failures = [update, policy].flatMap((r) => (r.status === 'rejected' ? [messageOf(r.reason)] : []));
  return {
    ok: failures.length === 0,
    summary:
      failures.length === 0
        ? `Undone: ${reactivate ? `${keyId} is Active again` : `${keyId} unchanged`}, session revocation lifted.`
        : 'Undo partly applied.',
    facts: [
      ['Key', reactivate && update.status === 'fulfilled' ? 'Active (changed)' : 'unchanged'],
      [
        'Session policy',
        policyAction === 'none'
          ? 'unchanged'
          : policy.status === 'fulfilled'
            ? policyAction === 'delete'
              ? 'removed'
              : 'restored'
            : 'NOT changed',
      ],
    ],
    data: {
      keyReactivated: reactivate && update.status === 'fulfilled',
      policyReverted: policyAction !== 'none' && policy.status === 'fulfilled',
      failures,
    },
  };
}

async function verifyUndo(ctx: RunContext, plan: Plan<UndoData>): Promise<Outcome> {
  const { IAMClient } = await loadIam();
  const { keyId, userName, policyName, reactivate, policyAction, priorPolicy } = plan.data;
  const iam = ctx.aws.client(IAMClient);
  const [key, policy] = await Promise.all([
    findKey(iam, userName, keyId),
    readInlinePolicy(iam, userName, policyName),
  ]);
  const keyOk = !reactivate || key?.Status === 'Active';
  const policyOk =
    policyAction === 'none' || (policyAction === 'delete' ? policy === null : policy === priorPolicy);
  return {
    ok: keyOk && policyOk,
    summary:
      keyOk && policyOk
        ? 'Verified: the key and the session policy are back as they were.'
        : 'Undo verification failed: see the facts.',
    facts: [
      ['Key status now', key?.Status ?? 'not found'],
      [
        'Session deny policy',
        policy === null ? 'absent' : policy === priorPolicy ? 'as before the run' : 'present',
      ],
    ],
    data: { keyStatus: key?.Status ?? null, policyPresent: policy !== null },
  };
}

/**
 * How far back the evidence reads the key's CloudTrail, and at most how many events it keeps: five pages,
 * about two seconds at CloudTrail's 2 requests per second, so that a busy key does not hold the
 * containment up (the card's "Look up this key's activity" button reads the rest).
 */
const EVIDENCE_WINDOW_MS = 24 * 3_600_000;
const EVIDENCE_MAX_EVENTS = 250;

/**
 * Evidence before the key is turned off: its metadata and last use, the user's attached and inline
 * policies and groups, and the key's last 24 hours of CloudTrail management events in the run's region
 * (where IAM's global events are recorded), newest first.
 */
async function captureKeyEvidence(ctx: RunContext, plan: Plan<DisableKeyData>): Promise<EvidenceDocument> {
  const { keyId, userName } = plan.data;
  const {
    IAMClient,
    ListAccessKeysCommand,
    GetAccessKeyLastUsedCommand,
    ListAttachedUserPoliciesCommand,
    ListUserPoliciesCommand,
    ListGroupsForUserCommand,
  } = await loadIam();
  const { CloudTrailClient, LookupEventsCommand } = await import('@aws-sdk/client-cloudtrail');
  const iam = ctx.aws.client(IAMClient);
  const trail = ctx.aws.client(CloudTrailClient);
  const until = ctx.now();
  const since = new Date(until.getTime() - EVIDENCE_WINDOW_MS);
  const readEvents = async () => {
    const events: Json[] = [];
    let NextToken: string | undefined;
    do {
      const page = await trail.send(
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: 'AccessKeyId', AttributeValue: keyId }],
          StartTime: since,
          EndTime: until,
          MaxResults: 50,
          NextToken,
        }),
        { abortSignal: ctx.signal },
      );
      for (const e of page.Events ?? []) {
        events.push({
          eventId: e.EventId ?? null,
          eventTime: e.EventTime?.toISOString() ?? null,
          eventName: e.EventName ?? null,
          eventSource: e.EventSource ?? null,
          username: e.Username ?? null,
          readOnly: e.ReadOnly ?? null,
          resources: (e.Resources ?? []).map((r) => ({
            type: r.ResourceType ?? null,
            name: r.ResourceName ?? null,
          })),
          record: parseRecord(e.CloudTrailEvent),
        });
      }
      NextToken = page.NextToken;
    } while (NextToken && events.length < EVIDENCE_MAX_EVENTS);
    return { events: events.slice(0, EVIDENCE_MAX_EVENTS), truncated: NextToken !== undefined };
  };
  const opts = { abortSignal: ctx.signal };
  const [keys, lastUsed, attached, inline, groups, cloudTrail] = await Promise.all([
    iam.send(new ListAccessKeysCommand({ UserName: userName }), opts),
    iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: keyId }), opts),
    iam.send(new ListAttachedUserPoliciesCommand({ UserName: userName }), opts),
    iam.send(new ListUserPoliciesCommand({ UserName: userName }), opts),
    iam.send(new ListGroupsForUserCommand({ UserName: userName }), opts),
    readEvents(),
  ]);
  const key = keys.AccessKeyMetadata?.find((k) => k.AccessKeyId === keyId);
  return {
    key: {
      accessKeyId: keyId,
      userName,
      status: key?.Status ?? null,
      createDate: key?.CreateDate?.toISOString() ?? null,
      lastUsedDate: lastUsed.AccessKeyLastUsed?.LastUsedDate?.toISOString() ?? null,
      lastUsedService: lastUsed.AccessKeyLastUsed?.ServiceName ?? null,
      lastUsedRegion: lastUsed.AccessKeyLastUsed?.Region ?? null,
    },
    userKeys: (keys.AccessKeyMetadata ?? []).map((k) => ({
      accessKeyId: k.AccessKeyId ?? null,
      status: k.Status ?? null,
      createDate: k.CreateDate?.toISOString() ?? null,
    })),
    attachedPolicies: (attached.AttachedPolicies ?? []).map((p) => ({
      name: p.PolicyName ?? null,
      arn: p.PolicyArn ?? null,
    })),
    inlinePolicies: inline.PolicyNames ?? [],
    groups: (groups.Groups ?? []).map((g) => ({ name: g.GroupName ?? null, arn: g.Arn ?? null })),
    cloudTrail: {
      lookup: { attribute: 'AccessKeyId', value: keyId, region: ctx.region },
      since: since.toISOString(),
      until: until.toISOString(),
      eventCount: cloudTrail.events.length,
      truncated: cloudTrail.truncated,
      events: cloudTrail.events,
    },
  };
}

/** A CloudTrail record (JSON text) as data; text that does not parse is kept as it is. */
function parseRecord(text: string | undefined): Json {
  if (!text) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

async function locateKeyAccount(
  ctx: { accounts: AccountConfig[]; scopeFor(account: AccountConfig): ScopedAws },
  input: DisableKeyInput,
): Promise<AccountConfig> {
  refuseTemporaryKey(input.keyId);
  const results = await Promise.allSettled(
    ctx.accounts.map(async (account) => ({
      account,
      owner: await findOwner(ctx.scopeFor(account), input.keyId),
    })),
  );
  const found = results.flatMap((r) => (r.status === 'fulfilled' && r.value.owner ? [r.value.account] : []));
  const failed = results.flatMap((r, i) =>
    r.status === 'rejected' ? [`${ctx.accounts[i]?.alias}: ${messageOf(r.reason)}`] : [],
  );
  if (found.length === 1 && found[0]) return found[0];
  if (found.length > 1) {
    throw new PlanRefusedError(
      `\`${input.keyId}\` was found in several accounts (${found.map((a) => a.alias).join(', ')}); give \`account=\`.`,
    );
  }
  throw new AwsResourceNotFoundError(
    `No configured account has access key \`${input.keyId}\` (searched ${ctx.accounts.map((a) => a.alias).join(', ')}).${failed.length ? ` Could not search: ${failed.join('; ')}` : ''}`,
  );
}

function messageOf(error: unknown): string {
  return error instanceof QuellError ? error.message : error instanceof Error ? error.name : String(error);
}

/**
 * The ARNs of IAM user `userName`, whatever its path: user names are unique in an account, so the ARN
 * without a path and the one with any path before the name match that user and no other.
 */
export function userArns(target: SessionTarget, userName: string): string[] {
  const base = `arn:${target.partition}:iam::${target.accountId}:user/`;
  return [`${base}${userName}`, `${base}*/${userName}`];
}

/** The reads of the recheck and of verify (ListAccessKeys, and the revocation policy by name). */
const KEY_READS = ['iam:ListAccessKeys', 'iam:ListUserPolicies', 'iam:GetUserPolicy'];

/** What a disable-key run's session may do: read and change the key owner's keys and inline policy, nothing else. */
function disableGrants(plan: Plan<DisableKeyData>, target: SessionTarget): SessionGrant[] {
  // The evidence, read before the change: the key's last use, the user's policies and groups.
  const evidence = ['iam:GetAccessKeyLastUsed', 'iam:ListAttachedUserPolicies', 'iam:ListGroupsForUser'];
  const actions = [...KEY_READS, ...evidence, 'iam:PutUserPolicy'];
  if (plan.data.statusBefore === 'Active') actions.push('iam:UpdateAccessKey');
  return [
    { actions, resources: userArns(target, plan.data.userName) },
    // The key's CloudTrail (evidence, and the roles it assumed): LookupEvents has no resource-level
    // permissions (Service Authorization Reference), so its resource can only be `*`.
    { actions: ['cloudtrail:LookupEvents'], resources: ['*'] },
  ];
}

/** What an undo's session may do: the reads of its plan and verify, and only the changes it planned. */
function undoGrants(plan: Plan<UndoData>, target: SessionTarget): SessionGrant[] {
  const actions = [...KEY_READS];
  if (plan.data.reactivate) actions.push('iam:UpdateAccessKey');
  if (plan.data.policyAction === 'delete') actions.push('iam:DeleteUserPolicy');
  if (plan.data.policyAction === 'restore') actions.push('iam:PutUserPolicy');
  return [{ actions, resources: userArns(target, plan.data.userName) }];
}

/** The runbook. */
export const disableKey = defineRunbook({
  id: 'disable-key',
  title: 'Disable an access key',
  risk: 'mutating',
  description: 'deactivate an IAM access key and revoke the sessions already issued from it',
  usage: 'disable-key AKIAXXXXXXXXXXXXXXXX [account=prod] [reason="…"]',
  input: DisableKeyInputSchema,
  access: 'respond',
  iam: {
    plan: ['iam:GetAccessKeyLastUsed', 'iam:ListAccessKeys', 'iam:ListUserPolicies', 'iam:GetUserPolicy'],
    // The evidence (before the change) reads the key's CloudTrail, policies and groups with this role too.
    execute: [
      'iam:UpdateAccessKey',
      'iam:ListAccessKeys',
      'iam:PutUserPolicy',
      // The re-check and verify read the session policy back.
      'iam:ListUserPolicies',
      'iam:GetUserPolicy',
      'iam:GetAccessKeyLastUsed',
      'iam:ListAttachedUserPolicies',
      'iam:ListGroupsForUser',
      'cloudtrail:LookupEvents',
    ],
    // The undo is planned again with this role just before it runs, and verified: it reads the key and policy.
    undo: [
      'iam:UpdateAccessKey',
      'iam:DeleteUserPolicy',
      'iam:PutUserPolicy',
      'iam:ListAccessKeys',
      'iam:ListUserPolicies',
      'iam:GetUserPolicy',
    ],
  },
  // IAM is global; its endpoint region depends on the partition (commercial, GovCloud, China).
  defaultRegion: (account) => iamRegionFor(account.roles.read),
  followUps: [
    {
      // The action id cards have carried since the button was added: keep it.
      actionId: 'quell_trail_key',
      label: "Look up this key's activity",
      runbook: 'trail',
      args: keyActivityArgs,
    },
    // "Revoke sessions of <role>", for each role the key assumed (the latest first).
    ...Array.from({ length: REVOKE_ROLE_BUTTONS }, (_, i) => revokeRoleFollowUp(i)),
  ],
  locateAccount: locateKeyAccount,
  plan: planDisable,
  async recheck(ctx, plan) {
    const { IAMClient } = await loadIam();
    // Only what the decision rests on, read in one round trip: the key's owner and status, and the policy.
    const iam = ctx.aws.client(IAMClient);
    const { keyId, userName, policyName } = plan.data;
    const [key, priorPolicy] = await Promise.all([
      findKey(iam, userName, keyId).catch((error: unknown) => {
        if (error instanceof AwsResourceNotFoundError) return undefined; // the user is gone
        throw error;
      }),
      readInlinePolicy(iam, userName, policyName),
    ]);
    return {
      accountId: ctx.account.id,
      userName: key ? userName : null,
      keyId,
      status: key?.Status ?? null,
      priorPolicy,
    };
  },
  evidence: captureKeyEvidence,
  execute: executeDisable,
  verify: verifyDisable,
  sessionGrants: disableGrants,
  undo: {
    title: 'Re-activate the key and lift the session revocation',
    plan: planUndo,
    execute: executeUndo,
    verify: verifyUndo,
    sessionGrants: undoGrants,
  },
});
