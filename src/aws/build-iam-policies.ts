/**
 * Least-privilege IAM policies generated from the runbooks' declared actions: the read role gets what
 * plans call; the respond role gets what plans, executions, verifications and undos of `respond`
 * runbooks call; the trust policy lets only quell's principal assume them, with a `quell-` session name,
 * a source identity and quell's session tags (and the external id, when configured).
 */

/** What the generator needs to know about a runbook. */
export interface RunbookIamDeclaration {
  id: string;
  access: 'read' | 'respond';
  iam: { plan: string[]; execute: string[]; undo?: string[] };
}

/** An IAM policy document. */
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Record<string, unknown>[];
}

/** The session tags quell sets on every AssumeRole. */
export const SESSION_TAG_KEYS = ['quell-run-id', 'quell-runbook', 'quell-requester'];

const sid = (id: string) =>
  id
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** The permissions policy of one role tier: one statement per runbook, actions sorted. */
export function buildPermissionsPolicy(
  runbooks: readonly RunbookIamDeclaration[],
  tier: 'read' | 'respond',
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
    const unique = [...new Set(actions)].sort();
    return unique.length === 0
      ? []
      : [{ Sid: sid(runbook.id), Effect: 'Allow', Action: unique, Resource: '*' }];
  });
  return { Version: '2012-10-17', Statement: statements };
}

/** The trust policy for both role tiers. */
export function buildTrustPolicy(principalArn: string, externalId?: string): PolicyDocument {
  const condition: Record<string, Record<string, unknown>> = {
    // StringLike on the run-id tag requires the tag to be present (ForAllValues alone also matches no tags).
    StringLike: {
      'sts:RoleSessionName': 'quell-*',
      'sts:SourceIdentity': '*',
      'aws:RequestTag/quell-run-id': 'r*',
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
 * The policy quell's own principal (task role, instance profile) needs. With audit checkpoints, one more
 * statement: the checkpoint writer's actions, or (when they run under a role of their own) assuming that role.
 * With `findings`, the findings queue's statements.
 */
export function buildBotPolicy(
  roleArns: string[],
  secretArns: string[],
  anchor?: { settings: AuditAnchorIamSettings; region: string },
  findings?: { queueUrl: string; dlqUrl?: string | undefined; region: string },
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
  return { Version: '2012-10-17', Statement: statements };
}
