/**
 * Least-privilege IAM policies generated from the runbooks' declared actions: the read role gets what
 * plans call; the respond role gets what plans, executions, verifications and undos of `respond`
 * runbooks call, with the actions a runbook narrows (`iam.limits`) in statements of their own and, when
 * the configured regions are known, every statement kept to them (`aws:RequestedRegion`); the trust
 * policy lets only quell's principal assume them, with a `quell-` session name, a source identity of the
 * shape quell sets, quell's session tags (and the external id, when configured). Each run's session is
 * narrowed further by its session policy (build-session-policy.ts).
 */
import type { Config } from '../config.ts';
import type { PolicyConditions } from './build-session-policy.ts';
import { operatorOf } from './operator-identity.ts';
import { iamRegionFor } from './partitions.ts';

/**
 * Some of a runbook's actions narrowed in the role policy, for every run: `resources` (ARN patterns,
 * default every resource) and `conditions` (tag or name conditions). `sid` names the statement after the
 * runbook's (`QuarantineAcls` → `IsolateVpcQuarantineAcls`).
 */
export interface RoleLimit {
  sid: string;
  actions: string[];
  resources?: string[];
  conditions?: PolicyConditions;
}

/** What the generator needs to know about a runbook. */
export interface RunbookIamDeclaration {
  id: string;
  access: 'read' | 'respond';
  iam: { plan: string[]; execute: string[]; undo?: string[]; limits?: RoleLimit[] };
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Record<string, unknown>[];
}

/** The session tags quell sets on every AssumeRole. */
export const SESSION_TAG_KEYS = ['quell-run-id', 'quell-runbook', 'quell-requester'];

/**
 * The requester of scheduled runs (src/runbooks/engine/run-notifier.ts SCHEDULER_USER), which is the
 * SourceIdentity of their sessions.
 */
export const SCHEDULER_SOURCE_IDENTITY = 'quell-scheduler';

/** The statement id of a runbook (`isolate-vpc` → `IsolateVpc`). */
export const sid = (id: string) =>
  id
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** Where the roles may act: the configured regions, and the regions of the global services' endpoints. */
export interface RoleRegions {
  /** Every region of every configured account (and `aws.region`). */
  regions: string[];
  /** Where IAM answers in the accounts' partitions (IAM calls carry that region: us-east-1 commercial). */
  globalRegions: string[];
}

/** Services whose requests carry the region of their global endpoint, not the run's region. */
const GLOBAL_SERVICES = new Set(['iam', 'sts']);

function withRegions(
  actions: string[],
  conditions: PolicyConditions | undefined,
  regions: RoleRegions | undefined,
): PolicyConditions | undefined {
  if (!regions) return conditions;
  const wanted = new Set<string>();
  for (const action of actions) {
    const service = action.split(':')[0] ?? '';
    for (const region of GLOBAL_SERVICES.has(service) ? regions.globalRegions : regions.regions)
      wanted.add(region);
  }
  if (wanted.size === 0) return conditions;
  const stringEquals = { ...(conditions?.StringEquals ?? {}), 'aws:RequestedRegion': [...wanted].sort() };
  return { ...(conditions ?? {}), StringEquals: stringEquals };
}

/**
 * The permissions policy of one role tier: one statement per runbook (actions sorted), plus one per
 * limit the runbook declares for actions of that tier. With `regions`, each statement holds only in them.
 */
export function buildPermissionsPolicy(
  runbooks: readonly RunbookIamDeclaration[],
  tier: 'read' | 'respond',
  options: { regions?: RoleRegions | undefined } = {},
): PolicyDocument {
  const statements = runbooks.flatMap((runbook) => {
    // Plans always use the read role; a read-access runbook (trail, drift) also executes with it.
    const actions =
      tier === 'read'
        ? runbook.access === 'read'
          ? [...runbook.iam.plan, ...runbook.iam.execute]
          : runbook.iam.plan
        : runbook.access === 'respond'
          ? [...runbook.iam.plan, ...runbook.iam.execute, ...(runbook.iam.undo ?? [])]
          : runbook.iam.plan.concat(runbook.iam.execute);
    const unique = new Set(actions);
    const limited = (runbook.iam.limits ?? []).flatMap((limit) => {
      const own = [...new Set(limit.actions.filter((a) => unique.has(a)))].sort();
      return own.length === 0 ? [] : [{ ...limit, actions: own }];
    });
    const limitedActions = new Set(limited.flatMap((l) => l.actions));
    const plain = [...unique].filter((a) => !limitedActions.has(a)).sort();
    const statement = (
      id: string,
      list: string[],
      resource: string | string[],
      conditions?: PolicyConditions,
    ) => {
      const condition = withRegions(list, conditions, options.regions);
      return {
        Sid: id,
        Effect: 'Allow',
        Action: list,
        Resource: resource,
        ...(condition ? { Condition: condition } : {}),
      };
    };
    return [
      ...(plain.length === 0 ? [] : [statement(sid(runbook.id), plain, '*')]),
      ...limited.map((l) =>
        statement(`${sid(runbook.id)}${l.sid}`, l.actions, l.resources ?? '*', l.conditions),
      ),
    ];
  });
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * The source identities quell sets: a Slack user id (`U…`, or `W…` on Enterprise Grid), the scheduler,
 * and the names of the break-glass operators the configuration knows (`operatorNames`, from
 * approvals.identities). Anything else — a session minted by whoever else holds quell's principal, with
 * a name of their choosing — is refused by the trust policy.
 */
export function sourceIdentityPatterns(operatorNames: readonly string[] = []): string[] {
  return ['U*', 'W*', SCHEDULER_SOURCE_IDENTITY, ...[...new Set(operatorNames)].sort()];
}

/**
 * What the configuration tells the role policies: the regions of every account (and `aws.region`), where
 * IAM answers in their partitions, and the names of the break-glass operators (approvals.identities, as
 * operator-identity.ts derives a SourceIdentity from an ARN). Without a configuration: nothing narrows.
 */
export function rolePolicyOptionsOf(config: Pick<Config, 'aws' | 'accounts' | 'approvals'> | undefined): {
  regions?: RoleRegions;
  operatorNames: string[];
} {
  if (!config) return { operatorNames: [] };
  const regions = [...new Set([config.aws.region, ...config.accounts.flatMap((a) => a.regions)])].sort();
  const globalRegions = [...new Set(config.accounts.map((a) => iamRegionFor(a.roles.respond)))].sort();
  const operatorNames = Object.values(config.approvals.identities)
    .flat()
    .flatMap((arn) => {
      try {
        return [operatorOf(arn).name];
      } catch {
        return []; // an identity no operator can prove (root, a Slack-like name) names no SourceIdentity
      }
    });
  return { regions: { regions, globalRegions }, operatorNames };
}

/** The trust policy for both role tiers. */
export function buildTrustPolicy(
  principalArn: string,
  externalId?: string,
  options: { operatorNames?: readonly string[] } = {},
): PolicyDocument {
  const condition: Record<string, Record<string, unknown>> = {
    // StringLike on the session tags requires each to be present (ForAllValues alone also matches no tags).
    StringLike: {
      'sts:RoleSessionName': 'quell-*',
      'sts:SourceIdentity': sourceIdentityPatterns(options.operatorNames),
      'aws:RequestTag/quell-run-id': 'r*',
      'aws:RequestTag/quell-runbook': '?*',
      'aws:RequestTag/quell-requester': '?*',
    },
    'ForAllValues:StringEquals': { 'aws:TagKeys': SESSION_TAG_KEYS },
  };
  if (externalId) condition.StringEquals = { 'sts:ExternalId': externalId };
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'QuellAssumeWithIdentity',
        Effect: 'Allow',
        Principal: { AWS: principalArn },
        Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
        Condition: condition,
      },
    ],
  };
}

/** What the IAM statements for audit checkpoints need to know (docs/audit.md). */
export interface AuditAnchorIamSettings {
  bucket: string;
  prefix: string;
  chainId: string;
  region?: string | undefined;
  kmsKeyId?: string | undefined;
  hmacSecretArn?: string | undefined;
  roleArn?: string | undefined;
}

/** The key's ARN for a policy: an ARN as given, else a placeholder to fill in (IAM matches keys, not aliases). */
function kmsKeyResource(keyId: string, region: string): string {
  if (keyId.startsWith('arn:') && keyId.includes(':key/')) return keyId;
  return `arn:aws:kms:${region}:<KEY_ACCOUNT_ID>:key/<KEY_ID${keyId.includes('alias/') ? ` behind ${keyId.slice(keyId.indexOf('alias/'))}` : ` ${keyId}`}>`;
}

/**
 * Writing checkpoints: put (with Object Lock retention) under the chain's folder, and sign with the KMS key
 * or read the HMAC secret. Deliberately no delete, no retention change and no bucket configuration.
 */
export function buildAuditAnchorStatement(
  anchor: AuditAnchorIamSettings,
  region: string,
): Record<string, unknown> {
  const actions = ['s3:PutObject', 's3:PutObjectRetention'];
  const resources = [`arn:aws:s3:::${anchor.bucket}/${anchor.prefix}${anchor.chainId}/*`];
  if (anchor.kmsKeyId) {
    actions.push('kms:DescribeKey', 'kms:Sign');
    resources.push(kmsKeyResource(anchor.kmsKeyId, anchor.region ?? region));
  }
  if (anchor.hmacSecretArn) {
    actions.push('secretsmanager:GetSecretValue');
    resources.push(anchor.hmacSecretArn);
  }
  return { Sid: 'WriteAuditCheckpoints', Effect: 'Allow', Action: actions, Resource: resources };
}

/** What `quell audit verify` needs: list and read every checkpoint version, and verify signatures. */
export function buildAuditVerifierPolicy(anchor: AuditAnchorIamSettings, region: string): PolicyDocument {
  const statements: Record<string, unknown>[] = [
    {
      Sid: 'ListAuditCheckpoints',
      Effect: 'Allow',
      Action: ['s3:ListBucketVersions'],
      Resource: [`arn:aws:s3:::${anchor.bucket}`],
      Condition: { StringLike: { 's3:prefix': [`${anchor.prefix}${anchor.chainId}/*`] } },
    },
    {
      Sid: 'ReadAuditCheckpoints',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      Resource: [`arn:aws:s3:::${anchor.bucket}/${anchor.prefix}${anchor.chainId}/*`],
    },
  ];
  if (anchor.kmsKeyId)
    statements.push({
      Sid: 'VerifyAuditCheckpoints',
      Effect: 'Allow',
      Action: ['kms:DescribeKey', 'kms:Verify'],
      Resource: [kmsKeyResource(anchor.kmsKeyId, anchor.region ?? region)],
    });
  if (anchor.hmacSecretArn)
    statements.push({
      Sid: 'VerifyAuditCheckpoints',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue'],
      Resource: [anchor.hmacSecretArn],
    });
  return { Version: '2012-10-17', Statement: statements };
}

/** The ARN of an SQS queue from its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`). */
export function queueArnOf(queueUrl: string, fallbackRegion: string): string {
  const url = new URL(queueUrl);
  const [, account, name] = url.pathname.split('/');
  const host = /^sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(url.hostname);
  const partition = host?.[2] ? 'aws-cn' : 'aws';
  return `arn:${partition}:sqs:${host?.[1] ?? fallbackRegion}:${account}:${name}`;
}

/**
 * The findings queue (docs/findings.md): receive, delete and read the attributes of the queue, and send
 * unreadable messages to the dead-letter queue. Nothing else: no purge, no queue changes.
 */
export function buildFindingsQueueStatements(findings: {
  queueUrl: string;
  dlqUrl?: string | undefined;
  region: string;
}): Record<string, unknown>[] {
  const statements: Record<string, unknown>[] = [
    {
      Sid: 'ReceiveFindings',
      Effect: 'Allow',
      Action: ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
      Resource: [queueArnOf(findings.queueUrl, findings.region)],
    },
  ];
  if (findings.dlqUrl)
    statements.push({
      Sid: 'DeadLetterFindings',
      Effect: 'Allow',
      Action: ['sqs:SendMessage'],
      Resource: [queueArnOf(findings.dlqUrl, findings.region)],
    });
  return statements;
}

/**
 * Evidence and case files (docs/evidence.md): put them, with their Object Lock retention, under the
 * configured prefix. Deliberately no read, no delete and no retention change.
 */
export function buildEvidenceStatement(evidence: {
  bucket: string;
  prefix: string;
}): Record<string, unknown> {
  return {
    Sid: 'WriteEvidence',
    Effect: 'Allow',
    Action: ['s3:PutObject', 's3:PutObjectRetention'],
    Resource: [`arn:aws:s3:::${evidence.bucket}/${evidence.prefix}*`],
  };
}

/**
 * The policy quell's own principal (task role, instance profile) needs. With audit checkpoints, one more
 * statement: the checkpoint writer's actions, or (when they run under a role of their own) assuming that role.
 * With `findings`, the findings queue's statements; with `evidence`, writing to the evidence bucket.
 */
export function buildBotPolicy(
  roleArns: string[],
  secretArns: string[],
  anchor?: { settings: AuditAnchorIamSettings; region: string },
  findings?: { queueUrl: string; dlqUrl?: string | undefined; region: string },
  evidence?: { bucket: string; prefix: string },
): PolicyDocument {
  const statements: Record<string, unknown>[] = [
    {
      Sid: 'AssumeQuellRoles',
      Effect: 'Allow',
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
      Resource: roleArns.length > 0 ? [...new Set(roleArns)].sort() : ['arn:aws:iam::*:role/quell-*'],
    },
  ];
  if (secretArns.length > 0) {
    statements.push({
      Sid: 'ReadSlackSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue'],
      Resource: secretArns,
    });
  }
  if (anchor?.settings.roleArn) {
    statements.push({
      Sid: 'AssumeAuditCheckpointRole',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: [anchor.settings.roleArn],
    });
  } else if (anchor) {
    statements.push(buildAuditAnchorStatement(anchor.settings, anchor.region));
  }
  if (findings) statements.push(...buildFindingsQueueStatements(findings));
  if (evidence) statements.push(buildEvidenceStatement(evidence));
  return { Version: '2012-10-17', Statement: statements };
}
