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

/** The policy quell's own principal (task role, instance profile) needs. */
export function buildBotPolicy(roleArns: string[], secretArns: string[]): PolicyDocument {
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
  return { Version: '2012-10-17', Statement: statements };
}
