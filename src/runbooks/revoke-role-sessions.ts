/**
 * revoke-role-sessions: deny every session of an IAM role issued before now (plus a margin for IAM
 * propagation), with the inline policy the IAM console's "Revoke active sessions" writes
 * (`AWSRevokeOlderSessions`: Deny * when `aws:TokenIssueTime` is earlier than the cutoff). For a role
 * that IAM Identity Center manages (`AWSReservedSSO_<PermissionSet>_<hash>`), where an account configures
 * its Identity Center instance, the deny goes into the permission set's inline policy, provisioned to the
 * account: a PutRolePolicy there would be refused or reverted by Identity Center. Undo puts back exactly
 * what was there before (kept in the run's ledger).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { SSOAdminClient } from '@aws-sdk/client-sso-admin';
import { z } from 'zod';
import type { ScopedAws } from '../aws/client-factory.ts';
import { iamRegionFor } from '../aws/partitions.ts';
import type { AccountConfig } from '../config.ts';
import { AccountAliasSchema, AwsRegionSchema } from '../config-fields.ts';
import { AwsResourceNotFoundError, NotAllowedError, PlanRefusedError, QuellError } from '../errors.ts';
import {
  AccountOptionSchema,
  defineConfig,
  defineRunbook,
  type LocateContext,
  type Outcome,
  type Plan,
  ReasonOptionSchema,
  type RunContext,
  readConfig,
  type SessionGrant,
  type SessionTarget,
} from './define-runbook.ts';
import { typedLedger } from './run-ledger.ts';

/** The IAM SDK, loaded by the first run that calls IAM rather than when quell starts (docs/benchmarks.md, memory). */
const loadIam = () => import('@aws-sdk/client-iam');

/** The SSO Admin SDK, loaded by the first run that calls IAM Identity Center rather than when quell starts (docs/benchmarks.md, memory). */
const loadSsoAdmin = () => import('@aws-sdk/client-sso-admin');

const USAGE =
  'revoke-role-sessions arn:aws:iam::111111111111:role/name | <role-name> account=prod [reason="…"]';

/** IAM role names: 1–64 characters of letters, digits and `+=,.@_-` (IAM API reference, CreateRole). */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
/**
 * A role ARN in one of the partitions quell knows, split into its parts: the path is `/`, or `/…/` of the
 * name's characters (stricter than IAM's printable ASCII), at most 512.
 */
const ROLE_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::(\d{12}):role(\/(?:[\w+=,.@-]+\/)*)([\w+=,.@-]{1,64})$/;

/** The parts of a role ARN, checked strictly. */
export interface RoleRef {
  partition: string;
  accountId: string;
  path: string;
  name: string;
  arn: string;
}

/** Parses a role ARN strictly (partition, 12-digit account, path, name charset); undefined when it is not one. */
export function parseRoleArn(text: unknown): RoleRef | undefined {
  if (typeof text !== 'string' || text.length > 2048) return undefined;
  const m = ROLE_ARN.exec(text);
  if (!m) return undefined;
  const [, partition = '', accountId = '', path = '/', name = ''] = m;
  if (path.length > 512) return undefined;
  return { partition, accountId, path, name, arn: text };
}

/** AWS service-linked roles live under this path; their owning service manages them. */
const SERVICE_LINKED_PATH = '/aws-service-role/';
/** Roles that IAM Identity Center creates for a permission set in each account it is provisioned to. */
const SSO_ROLE_PATH = '/aws-reserved/sso.amazonaws.com/';
/** `AWSReservedSSO_<permission set name>_<16 hex digits>` (IAM Identity Center User Guide, "Referencing permission sets in resource policies"). */
const SSO_ROLE_NAME = /^AWSReservedSSO_(.+)_[0-9a-f]{16}$/;

const TargetSchema = z.string().refine((text) => parseRoleArn(text) !== undefined || ROLE_NAME.test(text), {
  error:
    'give an IAM role ARN (arn:aws:iam::<12-digit account>:role/<path/>name) or a role name (letters, digits and +=,.@_-, at most 64) with account=',
});

const RevokeRoleSessionsInputSchema = z
  .object({
    positional: z.tuple([TargetSchema], { error: 'give exactly one role ARN or role name' }),
    options: z.object({ account: AccountOptionSchema, reason: ReasonOptionSchema }).strict(),
  })
  .transform(({ positional: [target], options }, ctx) => {
    const ref = parseRoleArn(target);
    if (!ref && options.account === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['options', 'account'],
        message: 'a role given by name needs `account=` (or give the role ARN)',
      });
      return z.NEVER;
    }
    if (ref?.path.startsWith(SERVICE_LINKED_PATH)) {
      ctx.addIssue({
        code: 'custom',
        path: ['positional', 0],
        message: `\`${ref.name}\` is an AWS service-linked role (path ${SERVICE_LINKED_PATH}): its service manages it and its sessions; quell does not change it`,
      });
      return z.NEVER;
    }
    return {
      roleName: ref?.name ?? target,
      /** From the ARN: the account, partition and path it names (checked against the configuration and IAM). */
      arnAccountId: ref?.accountId ?? null,
      arnPartition: ref?.partition ?? null,
      arnPath: ref?.path ?? null,
      account: options.account,
      reason: options.reason,
      region: undefined,
    };
  });

type RevokeRoleSessionsInput = z.infer<typeof RevokeRoleSessionsInputSchema>;

/**
 * The account's IAM Identity Center instance, for roles Identity Center manages: `instanceArn` and its
 * `region`, and `account`, the alias of the configured account that administers the instance (the
 * management or delegated administrator account; default: this account).
 */
export const RevokeRoleSessionsConfig = defineConfig({
  key: 'identityCenter',
  schema: z
    .object({
      instanceArn: z
        .string()
        .regex(
          /^arn:(aws|aws-us-gov|aws-cn):sso:::instance\/(sso)?ins-[a-zA-Z0-9-.]{16}$/,
          'must be an IAM Identity Center instance ARN (arn:aws:sso:::instance/ssoins-…)',
        ),
      region: AwsRegionSchema,
      account: AccountAliasSchema.optional(),
    })
    .strict(),
});

/** The inline policy name, the one the IAM console's "Revoke active sessions" uses. */
export const REVOKE_POLICY_NAME = 'AWSRevokeOlderSessions';
/** The statement id quell writes (and finds again in a permission set's one inline policy). */
export const REVOKE_STATEMENT_SID = 'QuellRevokeOlderSessions';

/**
 * How far past the moment of execution the cutoff lies: IAM is eventually consistent (IAM User Guide,
 * "Changes that I make are not always immediately visible"), so a session minted from a source that was
 * cut off moments ago (a disable-key just before) can still be issued in the seconds after the change;
 * the same figure as disable-key's. Sessions of the role issued within the margin are denied too.
 */
export const ROLE_REVOKE_MARGIN_MS = 5 * 60_000;
const MARGIN_TEXT = `${ROLE_REVOKE_MARGIN_MS / 60_000} minutes`;

/** Reads of a permission set's provisioning status, two seconds apart, before the run says it is pending. */
const PROVISIONING_CHECKS = 10;
const PROVISIONING_INTERVAL_MS = 2_000;

/** The deny statement for sessions issued before `before`. */
export function revokeStatement(before: Date) {
  return {
    Sid: REVOKE_STATEMENT_SID,
    Effect: 'Deny',
    Action: '*',
    Resource: '*',
    Condition: { DateLessThan: { 'aws:TokenIssueTime': before.toISOString() } },
  };
}

/** The role's inline policy: the deny alone. */
export function revokeRolePolicy(before: Date): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [revokeStatement(before)] });
}

/**
 * A permission set has one inline policy: the deny is added to what is there (replacing an earlier
 * quell deny), so its other statements keep applying. Throws PlanRefusedError on a document that is not
 * a policy.
 */
export function mergeRevokeStatement(prior: string | null, before: Date): string {
  if (!prior) return revokeRolePolicy(before);
  let doc: { Version?: unknown; Statement?: unknown };
  try {
    doc = JSON.parse(prior) as typeof doc;
  } catch {
    throw new PlanRefusedError(
      "The permission set's inline policy is not valid JSON; fix it in IAM Identity Center first.",
    );
  }
  const statements = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
  const kept = statements.filter((s) => (s as { Sid?: unknown })?.Sid !== REVOKE_STATEMENT_SID);
  return JSON.stringify({
    ...doc,
    Version: doc.Version ?? '2012-10-17',
    Statement: [...kept, revokeStatement(before)],
  });
}

/** The cutoff a policy document denies sessions before (quell's statement, or the console's), or null. */
export function cutoffOf(document: string | null): string | null {
  if (!document) return null;
  try {
    const doc = JSON.parse(document) as { Statement?: unknown };
    const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    for (const s of statements as {
      Effect?: string;
      Condition?: { DateLessThan?: Record<string, string> };
    }[]) {
      const cutoff = s?.Condition?.DateLessThan?.['aws:TokenIssueTime'];
      if (s?.Effect === 'Deny' && typeof cutoff === 'string') return cutoff;
    }
  } catch {
    return null;
  }
  return null;
}

type IdentityCenterTarget = {
  instanceArn: string;
  region: string;
  /** The configured account whose respond role administers the instance. */
  adminAccount: string;
  permissionSetArn: string;
  permissionSetName: string;
  /** The permission set's inline policy before this run, or null when it had none. */
  priorInlinePolicy: string | null;
};

type RevokeData = {
  mode: 'iam' | 'identity-center';
  accountId: string;
  roleName: string;
  roleArn: string;
  roleId: string;
  policyName: string;
  /** The role's `AWSRevokeOlderSessions` before this run (restored by undo), or null. */
  priorPolicy: string | null;
  identityCenter: IdentityCenterTarget | null;
};

type RevokeResult = {
  runId: string;
  applied: boolean;
  provisioned: boolean;
  provisioningStatus: string | null;
  tokenIssueTimeBefore: string;
  failures: string[];
};

type UndoData = {
  mode: 'iam' | 'identity-center';
  roleName: string;
  policyName: string;
  action: 'delete' | 'restore';
  prior: string | null;
  identityCenter: IdentityCenterTarget | null;
  accountId: string;
};

type UndoResult = { reverted: boolean; provisioned: boolean; failures: string[] };

/** What the run keeps between execute and undo: the document that was there before it. */
const SavedPolicySchema = z.object({
  mode: z.enum(['iam', 'identity-center']),
  target: z.string(),
  prior: z.string().nullable(),
  cutoff: z.string(),
});

function ledgerKey(data: RevokeData): string {
  return data.mode === 'iam'
    ? `role-policy/${data.accountId}/${data.roleName}`
    : `permission-set/${data.identityCenter?.permissionSetArn}/${data.accountId}`;
}

// IAM returns policy documents URL-encoded (RFC 3986); some emulators return them as-is.
function decodePolicy(document: string | undefined): string | null {
  if (!document) return null;
  return document.trimStart().startsWith('{') ? document : decodeURIComponent(document);
}

async function readRolePolicy(iam: IAMClient, roleName: string, policyName: string): Promise<string | null> {
  const { ListRolePoliciesCommand, GetRolePolicyCommand } = await loadIam();
  const names = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName }));
  if (!names.PolicyNames?.includes(policyName)) return null;
  const out = await iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }));
  return decodePolicy(out.PolicyDocument);
}

async function readInlinePolicy(sso: SSOAdminClient, instanceArn: string, permissionSetArn: string) {
  const { GetInlinePolicyForPermissionSetCommand } = await loadSsoAdmin();
  const out = await sso.send(
    new GetInlinePolicyForPermissionSetCommand({
      InstanceArn: instanceArn,
      PermissionSetArn: permissionSetArn,
    }),
  );
  return out.InlinePolicy ? out.InlinePolicy : null;
}

function roleNameOf(roleArn: string): string {
  return roleArn.slice(roleArn.lastIndexOf('/') + 1).toLowerCase();
}

/** Refuses what quell must never lock out: its own roles, and roles AWS services manage. */
function refuseProtectedRole(account: AccountConfig, roleName: string, path: string | null): void {
  const name = roleName.toLowerCase(); // IAM role names are unique case-insensitively
  for (const tier of ['read', 'respond'] as const) {
    if (roleNameOf(account.roles[tier]) === name) {
      throw new PlanRefusedError(
        `\`${roleName}\` is quell's own ${tier} role in \`${account.alias}\`: revoking its sessions would stop quell from acting there. Rotate quell's access separately.`,
      );
    }
  }
  if (path?.startsWith(SERVICE_LINKED_PATH)) {
    throw new PlanRefusedError(
      `\`${roleName}\` is an AWS service-linked role (path ${SERVICE_LINKED_PATH}): its service manages it and its sessions; quell does not change it.`,
    );
  }
}

/** The role's account: the one its ARN names, among those configured (and open to this channel). */
async function locateRoleAccount(ctx: LocateContext, input: RevokeRoleSessionsInput): Promise<AccountConfig> {
  const account = ctx.accounts.find((a) => a.id === input.arnAccountId);
  if (!account) {
    throw new NotAllowedError(
      `Account ${input.arnAccountId ?? '(none)'} of the role is not a configured account this channel may use; nothing is changed there.`,
      'accounts',
    );
  }
  return account;
}

/** The Identity Center scope (the administering account's respond role or read role) and the instance. */
function identityCenterScope(
  ctx: RunContext,
): { scope: ScopedAws; dispose: () => void; adminAccount: string } | null {
  const settings = readConfig(ctx, RevokeRoleSessionsConfig);
  if (!settings) return null;
  const adminAccount = settings.account ?? ctx.account.alias;
  if (adminAccount === ctx.account.alias) return { scope: ctx.aws, dispose: () => undefined, adminAccount };
  const scope = ctx.scopeFor(adminAccount);
  return { scope, dispose: () => scope.dispose(), adminAccount };
}

async function findPermissionSet(sso: SSOAdminClient, instanceArn: string, name: string) {
  const { ListPermissionSetsCommand, DescribePermissionSetCommand } = await loadSsoAdmin();
  let nextToken: string | undefined;
  do {
    const page = await sso.send(
      new ListPermissionSetsCommand({ InstanceArn: instanceArn, NextToken: nextToken, MaxResults: 100 }),
    );
    for (const arn of page.PermissionSets ?? []) {
      const described = await sso.send(
        new DescribePermissionSetCommand({ InstanceArn: instanceArn, PermissionSetArn: arn }),
      );
      if (described.PermissionSet?.Name === name) return arn;
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return undefined;
}

async function planRevoke(ctx: RunContext, input: RevokeRoleSessionsInput): Promise<Plan<RevokeData>> {
  // Everything the input alone decides is refused before any AWS call.
  if (input.arnAccountId !== null && input.arnAccountId !== ctx.account.id) {
    throw new PlanRefusedError(
      `The role is in account ${input.arnAccountId}, not in \`${ctx.account.alias}\` (${ctx.account.id}); give the ARN without \`account=\`, or the account that holds it.`,
    );
  }
  const partition = ctx.account.roles.read.split(':')[1];
  if (input.arnPartition !== null && input.arnPartition !== partition) {
    throw new PlanRefusedError(
      `The role ARN is in partition \`${input.arnPartition}\`, account \`${ctx.account.alias}\` is in \`${partition}\`.`,
    );
  }
  refuseProtectedRole(ctx.account, input.roleName, input.arnPath);

  const { IAMClient, GetRoleCommand } = await loadIam();
  const iam = ctx.aws.client(IAMClient);
  const role = (await iam.send(new GetRoleCommand({ RoleName: input.roleName }))).Role;
  if (!role?.Arn || !role.RoleName) {
    throw new AwsResourceNotFoundError(
      `No role \`${input.roleName}\` in \`${ctx.account.alias}\` (${ctx.account.id}).`,
    );
  }
  const path = role.Path ?? '/';
  refuseProtectedRole(ctx.account, role.RoleName, path);
  if (input.arnPath !== null && input.arnPath !== path) {
    throw new PlanRefusedError(
      `The ARN names path \`${input.arnPath}\`, but \`${role.RoleName}\` has path \`${path}\`: check the ARN.`,
    );
  }
  const facts: [string, string][] = [
    ['Account', `${ctx.account.alias} (${ctx.account.id})`],
    ['Role', role.Arn],
    ['Max session', `${role.MaxSessionDuration ?? 3600} s`],
    ['Last used', role.RoleLastUsed?.LastUsedDate?.toISOString() ?? 'never (or not tracked)'],
  ];
  const cutoffText = `<the time of execution> + ${MARGIN_TEXT} (IAM propagation)`;
  const notes = [
    `The cutoff is taken when the run executes, plus ${MARGIN_TEXT} for IAM to propagate: every session of \`${role.RoleName}\` issued before then is denied, including legitimate ones (a workload using this role gets AccessDenied until it assumes the role again after the cutoff).`,
    'Sessions issued after the cutoff work: whatever could assume the role still can. Cut off the source first (disable-key, or the trust policy).',
  ];

  const ssoName = path.startsWith(SSO_ROLE_PATH) ? SSO_ROLE_NAME.exec(role.RoleName)?.[1] : undefined;
  if (ssoName !== undefined) {
    const center = identityCenterScope(ctx);
    if (!center) {
      throw new PlanRefusedError(
        `\`${role.RoleName}\` is managed by IAM Identity Center (permission set \`${ssoName}\`): a role policy would be reverted. Configure \`identityCenter\` (instanceArn, region) for account \`${ctx.account.alias}\` to revoke through the permission set.`,
      );
    }
    try {
      const settings = readConfig(ctx, RevokeRoleSessionsConfig);
      if (!settings) throw new PlanRefusedError('identityCenter is not configured');
      const { SSOAdminClient } = await loadSsoAdmin();
      const sso = center.scope.client(SSOAdminClient, settings.region);
      const permissionSetArn = await findPermissionSet(sso, settings.instanceArn, ssoName);
      if (!permissionSetArn) {
        throw new AwsResourceNotFoundError(
          `Permission set \`${ssoName}\` (of role \`${role.RoleName}\`) was not found in ${settings.instanceArn}.`,
        );
      }
      const priorInlinePolicy = await readInlinePolicy(sso, settings.instanceArn, permissionSetArn);
      mergeRevokeStatement(priorInlinePolicy, new Date(0)); // refuses a document that is not a policy
      const identityCenter: IdentityCenterTarget = {
        instanceArn: settings.instanceArn,
        region: settings.region,
        adminAccount: center.adminAccount,
        permissionSetArn,
        permissionSetName: ssoName,
        priorInlinePolicy,
      };
      notes.unshift(
        `\`${role.RoleName}\` is managed by IAM Identity Center: the deny goes into permission set \`${ssoName}\`'s inline policy${priorInlinePolicy ? ' (added to its existing statements)' : ''} and is provisioned to ${ctx.account.alias}. The permission set is shared: other accounts it is assigned to get the deny when it is next provisioned to them.`,
      );
      return {
        summary: `Revoke sessions of ${role.RoleName} through permission set ${ssoName}`,
        facts: [...facts, ['Permission set', `${ssoName} (${permissionSetArn})`]],
        calls: [
          {
            action: 'sso:PutInlinePolicyToPermissionSet',
            params: {
              PermissionSetArn: permissionSetArn,
              InlinePolicy: `${priorInlinePolicy ? 'the existing statements + ' : ''}Deny * on * when aws:TokenIssueTime < ${cutoffText}`,
            },
          },
          {
            action: 'sso:ProvisionPermissionSet',
            params: {
              PermissionSetArn: permissionSetArn,
              TargetType: 'AWS_ACCOUNT',
              TargetId: ctx.account.id,
            },
          },
        ],
        notes,
        material: {
          accountId: ctx.account.id,
          roleId: role.RoleId ?? null,
          path,
          permissionSetArn,
          priorInlinePolicy,
        },
        data: {
          mode: 'identity-center',
          accountId: ctx.account.id,
          roleName: role.RoleName,
          roleArn: role.Arn,
          roleId: role.RoleId ?? '',
          policyName: REVOKE_POLICY_NAME,
          priorPolicy: null,
          identityCenter,
        },
      };
    } finally {
      center.dispose();
    }
  }

  const priorPolicy = await readRolePolicy(iam, role.RoleName, REVOKE_POLICY_NAME);
  if (priorPolicy) {
    notes.unshift(
      `\`${REVOKE_POLICY_NAME}\` already exists (cutoff ${cutoffOf(priorPolicy) ?? 'unknown'}), from the console or an earlier run: it is replaced with the new cutoff (undo restores it).`,
    );
  }
  return {
    summary: `Revoke every session of ${role.RoleName} issued before the run executes`,
    facts,
    calls: [
      {
        action: 'iam:PutRolePolicy',
        params: {
          RoleName: role.RoleName,
          PolicyName: REVOKE_POLICY_NAME,
          PolicyDocument: `Deny * on * when aws:TokenIssueTime < ${cutoffText}`,
        },
      },
    ],
    notes,
    material: { accountId: ctx.account.id, roleId: role.RoleId ?? null, path, priorPolicy },
    data: {
      mode: 'iam',
      accountId: ctx.account.id,
      roleName: role.RoleName,
      roleArn: role.Arn,
      roleId: role.RoleId ?? '',
      policyName: REVOKE_POLICY_NAME,
      priorPolicy,
      identityCenter: null,
    },
  };
}

/** The administering scope of an Identity Center target (disposed by the caller). */
function adminScope(
  ctx: RunContext,
  target: IdentityCenterTarget,
): { scope: ScopedAws; dispose: () => void } {
  if (target.adminAccount === ctx.account.alias) return { scope: ctx.aws, dispose: () => undefined };
  const scope = ctx.scopeFor(target.adminAccount);
  return { scope, dispose: () => scope.dispose() };
}

/**
 * Provisions the permission set to the account and follows the request until it leaves IN_PROGRESS
 * (bounded); returns the last status seen.
 */
async function provision(
  ctx: RunContext,
  sso: SSOAdminClient,
  target: IdentityCenterTarget,
  accountId: string,
) {
  const { ProvisionPermissionSetCommand, DescribePermissionSetProvisioningStatusCommand } =
    await loadSsoAdmin();
  const out = await sso.send(
    new ProvisionPermissionSetCommand({
      InstanceArn: target.instanceArn,
      PermissionSetArn: target.permissionSetArn,
      TargetType: 'AWS_ACCOUNT',
      TargetId: accountId,
    }),
    { abortSignal: ctx.signal },
  );
  let status = out.PermissionSetProvisioningStatus;
  for (let i = 0; status?.Status === 'IN_PROGRESS' && status.RequestId && i < PROVISIONING_CHECKS; i++) {
    await sleep(PROVISIONING_INTERVAL_MS, undefined, { signal: ctx.signal });
    status = (
      await sso.send(
        new DescribePermissionSetProvisioningStatusCommand({
          InstanceArn: target.instanceArn,
          ProvisionPermissionSetRequestId: status.RequestId,
        }),
      )
    ).PermissionSetProvisioningStatus;
  }
  if (status?.Status === 'FAILED')
    throw new PlanRefusedError(`Provisioning failed: ${status.FailureReason ?? 'no reason given'}`);
  return status?.Status ?? 'unknown';
}

async function executeRevoke(ctx: RunContext, plan: Plan<RevokeData>): Promise<Outcome<RevokeResult>> {
  const data = plan.data;
  const before = new Date(ctx.now().getTime() + ROLE_REVOKE_MARGIN_MS);
  const cutoff = before.toISOString();
  const target = data.mode === 'iam' ? data.roleArn : (data.identityCenter?.permissionSetArn ?? '');
  const prior = data.mode === 'iam' ? data.priorPolicy : (data.identityCenter?.priorInlinePolicy ?? null);
  // Intent before action: what was there before, kept for undo (a retry keeps the first record).
  await typedLedger(ctx.ledger, SavedPolicySchema).put([
    { runId: ctx.runId, key: ledgerKey(data), value: { mode: data.mode, target, prior, cutoff } },
  ]);
  const failures: string[] = [];
  let applied = false;
  let provisioned = false;
  let provisioningStatus: string | null = null;
  if (data.mode === 'iam') {
    try {
      const { IAMClient, PutRolePolicyCommand } = await loadIam();
      await ctx.aws.client(IAMClient).send(
        new PutRolePolicyCommand({
          RoleName: data.roleName,
          PolicyName: data.policyName,
          PolicyDocument: revokeRolePolicy(before),
        }),
        { abortSignal: ctx.signal },
      );
      applied = true;
    } catch (error) {
      failures.push(messageOf(error));
    }
  } else if (data.identityCenter) {
    const center = data.identityCenter;
    const admin = adminScope(ctx, center);
    try {
      const { SSOAdminClient, PutInlinePolicyToPermissionSetCommand } = await loadSsoAdmin();
      const sso = admin.scope.client(SSOAdminClient, center.region);
      await sso.send(
        new PutInlinePolicyToPermissionSetCommand({
          InstanceArn: center.instanceArn,
          PermissionSetArn: center.permissionSetArn,
          InlinePolicy: mergeRevokeStatement(center.priorInlinePolicy, before),
        }),
        { abortSignal: ctx.signal },
      );
      applied = true;
      provisioningStatus = await provision(ctx, sso, center, data.accountId);
      provisioned = provisioningStatus === 'SUCCEEDED';
      if (!provisioned)
        failures.push(
          `Provisioning to ${data.accountId} is still ${provisioningStatus}; check it in IAM Identity Center.`,
        );
    } catch (error) {
      failures.push(messageOf(error));
    } finally {
      admin.dispose();
    }
  }
  const ok = failures.length === 0;
  const where =
    data.mode === 'iam'
      ? `\`${data.policyName}\` on ${data.roleName}`
      : `permission set ${data.identityCenter?.permissionSetName}, provisioned to ${data.accountId}`;
  return {
    ok,
    ...(applied && !ok ? { partial: true } : {}),
    summary: ok
      ? `Sessions of ${data.roleName} issued before ${cutoff} are denied (${where}; the time of execution plus ${MARGIN_TEXT} for IAM propagation).`
      : `${applied ? `The deny was written (${where}), but` : 'The deny was NOT written:'} ${failures.join(' ')}`,
    facts: [
      ['Sessions revoked', applied ? `issued before ${cutoff}` : 'no'],
      ...(data.mode === 'identity-center'
        ? ([['Provisioning', provisioningStatus ?? 'not started']] as [string, string][])
        : []),
    ],
    data: {
      runId: ctx.runId,
      applied,
      provisioned,
      provisioningStatus,
      tokenIssueTimeBefore: cutoff,
      failures,
    },
  };
}

async function readCurrent(ctx: RunContext, data: RevokeData | UndoData): Promise<string | null> {
  if (data.mode === 'iam') {
    const { IAMClient } = await loadIam();
    return readRolePolicy(ctx.aws.client(IAMClient), data.roleName, REVOKE_POLICY_NAME);
  }
  const center = data.identityCenter;
  if (!center) return null;
  const { SSOAdminClient } = await loadSsoAdmin();
  const admin = adminScope(ctx, center);
  try {
    return await readInlinePolicy(
      admin.scope.client(SSOAdminClient, center.region),
      center.instanceArn,
      center.permissionSetArn,
    );
  } finally {
    admin.dispose();
  }
}

async function verifyRevoke(
  ctx: RunContext,
  plan: Plan<RevokeData>,
  result: Outcome<RevokeResult>,
): Promise<Outcome> {
  const current = await readCurrent(ctx, plan.data);
  const inPlace = cutoffOf(current) === result.data.tokenIssueTimeBefore;
  const ok = inPlace && (plan.data.mode === 'iam' || result.data.provisioned);
  return {
    ok,
    summary: ok
      ? 'Verified: the session deny is in place with the cutoff written.'
      : 'Verification failed: see the facts.',
    facts: [
      [
        'Session deny',
        inPlace ? `present, cutoff ${result.data.tokenIssueTimeBefore}` : 'missing or different',
      ],
    ],
    data: { present: current !== null, cutoff: cutoffOf(current) },
  };
}

async function planUndo(
  ctx: RunContext,
  original: { plan: Plan<RevokeData>; result: Outcome<RevokeResult> },
): Promise<Plan<UndoData>> {
  const data = original.plan.data;
  const saved = (
    await typedLedger(ctx.ledger, SavedPolicySchema).list({
      runId: original.result.data.runId,
      prefix: ledgerKey(data),
    })
  ).find((e) => e.key === ledgerKey(data))?.value;
  if (!saved)
    throw new PlanRefusedError('This run kept no record of the policy before it; nothing is undone.');
  const current = await readCurrent(ctx, data);
  if (cutoffOf(current) !== original.result.data.tokenIssueTimeBefore) {
    throw new PlanRefusedError(
      `The session deny is no longer the one this run wrote (cutoff now ${cutoffOf(current) ?? 'none'}); nothing is undone. Check it by hand.`,
    );
  }
  const action: UndoData['action'] = saved.prior ? 'restore' : 'delete';
  const calls: Plan['calls'] =
    data.mode === 'iam'
      ? [
          action === 'delete'
            ? {
                action: 'iam:DeleteRolePolicy',
                params: { RoleName: data.roleName, PolicyName: data.policyName },
              }
            : {
                action: 'iam:PutRolePolicy',
                params: {
                  RoleName: data.roleName,
                  PolicyName: data.policyName,
                  PolicyDocument: 'the policy as it was before the run',
                },
              },
        ]
      : [
          action === 'delete'
            ? {
                action: 'sso:DeleteInlinePolicyFromPermissionSet',
                params: { PermissionSetArn: saved.target },
              }
            : {
                action: 'sso:PutInlinePolicyToPermissionSet',
                params: {
                  PermissionSetArn: saved.target,
                  InlinePolicy: 'the inline policy as it was before the run',
                },
              },
          {
            action: 'sso:ProvisionPermissionSet',
            params: { PermissionSetArn: saved.target, TargetType: 'AWS_ACCOUNT', TargetId: data.accountId },
          },
        ];
  return {
    summary: `Undo: lift the session revocation of ${data.roleName}`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Role', data.roleArn],
      ['Cutoff lifted', original.result.data.tokenIssueTimeBefore],
    ],
    calls,
    notes: action === 'restore' ? ['The policy that was there before the run is put back as it was.'] : [],
    material: { current },
    data: {
      mode: data.mode,
      roleName: data.roleName,
      policyName: data.policyName,
      action,
      prior: saved.prior,
      identityCenter: data.identityCenter,
      accountId: data.accountId,
    },
  };
}

async function executeUndo(ctx: RunContext, plan: Plan<UndoData>): Promise<Outcome<UndoResult>> {
  const d = plan.data;
  const failures: string[] = [];
  let reverted = false;
  let provisioned = false;
  if (d.mode === 'iam') {
    const { IAMClient, DeleteRolePolicyCommand, PutRolePolicyCommand } = await loadIam();
    const iam = ctx.aws.client(IAMClient);
    try {
      if (d.action === 'delete')
        await iam.send(new DeleteRolePolicyCommand({ RoleName: d.roleName, PolicyName: d.policyName }));
      else
        await iam.send(
          new PutRolePolicyCommand({
            RoleName: d.roleName,
            PolicyName: d.policyName,
            PolicyDocument: d.prior ?? '',
          }),
        );
      reverted = true;
    } catch (error) {
      failures.push(messageOf(error));
    }
  } else if (d.identityCenter) {
    const center = d.identityCenter;
    const admin = adminScope(ctx, center);
    try {
      const {
        SSOAdminClient,
        DeleteInlinePolicyFromPermissionSetCommand,
        PutInlinePolicyToPermissionSetCommand,
      } = await loadSsoAdmin();
      const sso = admin.scope.client(SSOAdminClient, center.region);
      if (d.action === 'delete')
        await sso.send(
          new DeleteInlinePolicyFromPermissionSetCommand({
            InstanceArn: center.instanceArn,
            PermissionSetArn: center.permissionSetArn,
          }),
        );
      else
        await sso.send(
          new PutInlinePolicyToPermissionSetCommand({
            InstanceArn: center.instanceArn,
            PermissionSetArn: center.permissionSetArn,
            InlinePolicy: d.prior ?? '',
          }),
        );
      reverted = true;
      const status = await provision(ctx, sso, center, d.accountId);
      provisioned = status === 'SUCCEEDED';
      if (!provisioned) failures.push(`Provisioning to ${d.accountId} is still ${status}.`);
    } catch (error) {
      failures.push(messageOf(error));
    } finally {
      admin.dispose();
    }
  }
  const ok = failures.length === 0;
  return {
    ok,
    ...(reverted && !ok ? { partial: true } : {}),
    summary: ok
      ? `Undone: the session revocation of ${d.roleName} is lifted (${d.action === 'delete' ? 'policy removed' : 'prior policy restored'}).`
      : `Undo ${reverted ? 'partly applied' : 'NOT applied'}: ${failures.join(' ')}`,
    facts: [
      ['Session deny', reverted ? (d.action === 'delete' ? 'removed' : 'restored as before') : 'NOT changed'],
    ],
    data: { reverted, provisioned, failures },
  };
}

async function verifyUndo(ctx: RunContext, plan: Plan<UndoData>): Promise<Outcome> {
  const current = await readCurrent(ctx, plan.data);
  const ok = plan.data.action === 'delete' ? current === null : current === plan.data.prior;
  return {
    ok,
    summary: ok
      ? 'Verified: the policy is back as it was before the run.'
      : 'Undo verification failed: see the facts.',
    facts: [
      [
        'Session deny now',
        current === null ? 'absent' : current === plan.data.prior ? 'as before the run' : 'present',
      ],
    ],
    data: { present: current !== null },
  };
}

function messageOf(error: unknown): string {
  return error instanceof QuellError ? error.message : error instanceof Error ? error.name : String(error);
}

// ─── session policies ────────────────────────────────────────────────────────────────────────────────

/** The Identity Center ARNs one revocation touches: the instance, the permission set, the account. */
function identityCenterArns(target: IdentityCenterTarget, accountId: string, partition: string): string[] {
  return [target.instanceArn, target.permissionSetArn, `arn:${partition}:sso:::account/${accountId}`];
}

/**
 * What a revocation's session may do: read and write the one role's inline policies (IAM), or the one
 * permission set's inline policy and its provisioning to the role's account (Identity Center).
 */
function revokeGrants(plan: Plan<RevokeData>, target: SessionTarget): SessionGrant[] {
  const { data } = plan;
  const role = {
    actions: ['iam:GetRole', 'iam:ListRolePolicies', 'iam:GetRolePolicy'],
    resources: [data.roleArn],
  };
  if (data.mode === 'iam' || !data.identityCenter) {
    return [{ ...role, actions: [...role.actions, 'iam:PutRolePolicy'] }];
  }
  return [
    role,
    {
      actions: [
        'sso:GetInlinePolicyForPermissionSet',
        'sso:PutInlinePolicyToPermissionSet',
        'sso:ProvisionPermissionSet',
        'sso:DescribePermissionSetProvisioningStatus',
      ],
      resources: identityCenterArns(data.identityCenter, data.accountId, target.partition),
    },
  ];
}

/** What an undo's session may do: read the policy back and make only the change it planned. */
function undoRevokeGrants(plan: Plan<UndoData>, target: SessionTarget): SessionGrant[] {
  const { data } = plan;
  if (data.mode === 'iam' || !data.identityCenter) {
    const base = `arn:${target.partition}:iam::${data.accountId}:role/`;
    const change = data.action === 'delete' ? 'iam:DeleteRolePolicy' : 'iam:PutRolePolicy';
    return [
      {
        actions: ['iam:ListRolePolicies', 'iam:GetRolePolicy', change],
        // Role names are unique in an account: with or without a path, only that role.
        resources: [`${base}${data.roleName}`, `${base}*/${data.roleName}`],
      },
    ];
  }
  const change =
    data.action === 'delete'
      ? 'sso:DeleteInlinePolicyFromPermissionSet'
      : 'sso:PutInlinePolicyToPermissionSet';
  return [
    {
      actions: [
        'sso:GetInlinePolicyForPermissionSet',
        change,
        'sso:ProvisionPermissionSet',
        'sso:DescribePermissionSetProvisioningStatus',
      ],
      resources: identityCenterArns(data.identityCenter, data.accountId, target.partition),
    },
  ];
}

/** The runbook. */
export const revokeRoleSessions = defineRunbook({
  id: 'revoke-role-sessions',
  title: 'Revoke the active sessions of a role',
  risk: 'mutating',
  description:
    'deny every session of an IAM role issued before now (the console\'s "Revoke active sessions")',
  usage: USAGE,
  input: RevokeRoleSessionsInputSchema,
  access: 'respond',
  iam: {
    plan: [
      'iam:GetRole',
      'iam:ListRolePolicies',
      'iam:GetRolePolicy',
      'sso:ListPermissionSets',
      'sso:DescribePermissionSet',
      'sso:GetInlinePolicyForPermissionSet',
    ],
    // The re-check (GetRole, and the policy) runs with the respond role.
    execute: [
      'iam:GetRole',
      'iam:PutRolePolicy',
      'iam:ListRolePolicies',
      'iam:GetRolePolicy',
      'sso:PutInlinePolicyToPermissionSet',
      'sso:ProvisionPermissionSet',
      'sso:DescribePermissionSetProvisioningStatus',
      'sso:GetInlinePolicyForPermissionSet',
    ],
    undo: [
      'iam:ListRolePolicies',
      'iam:GetRolePolicy',
      'iam:DeleteRolePolicy',
      'iam:PutRolePolicy',
      'sso:GetInlinePolicyForPermissionSet',
      'sso:DeleteInlinePolicyFromPermissionSet',
      'sso:PutInlinePolicyToPermissionSet',
      'sso:ProvisionPermissionSet',
      'sso:DescribePermissionSetProvisioningStatus',
    ],
  },
  // IAM is global; its endpoint region depends on the partition (commercial, GovCloud, China).
  defaultRegion: (account) => iamRegionFor(account.roles.read),
  config: RevokeRoleSessionsConfig,
  locateAccount: locateRoleAccount,
  plan: planRevoke,
  async recheck(ctx, plan) {
    // Only what the approval rests on. On a retry of a partial run, the document this run already
    // changed counts as the one it found (kept in its ledger), so its own change does not supersede it.
    const { data } = plan;
    const { IAMClient, GetRoleCommand } = await loadIam();
    const [role, current, saved] = await Promise.all([
      ctx.aws.client(IAMClient).send(new GetRoleCommand({ RoleName: data.roleName })),
      readCurrent(ctx, data),
      typedLedger(ctx.ledger, SavedPolicySchema).list({ runId: ctx.runId, prefix: ledgerKey(data) }),
    ]);
    const found = saved.find((e) => e.key === ledgerKey(data))?.value.prior ?? current;
    const base = {
      accountId: ctx.account.id,
      roleId: role.Role?.RoleId ?? null,
      path: role.Role?.Path ?? '/',
    };
    return data.mode === 'iam'
      ? { ...base, priorPolicy: found }
      : {
          ...base,
          permissionSetArn: data.identityCenter?.permissionSetArn ?? null,
          priorInlinePolicy: found,
        };
  },
  execute: executeRevoke,
  verify: verifyRevoke,
  sessionGrants: revokeGrants,
  undo: {
    title: 'Lift the session revocation',
    plan: planUndo,
    execute: executeUndo,
    verify: verifyUndo,
    sessionGrants: undoRevokeGrants,
  },
});
