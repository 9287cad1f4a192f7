/**
 * The body of a findings-queue message, as EventBridge delivers it: a GuardDuty event ("detail-type":
 * "GuardDuty Finding", the finding in `detail`, docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings_eventbridge.html)
 * or a Security Hub event ("Security Hub Findings - Imported", ASFF findings in `detail.findings`,
 * docs.aws.amazon.com/securityhub/latest/userguide/securityhub-cwe-event-formats.html). Anything else —
 * not JSON, another event, a finding without an id, account or severity — is poison: it is never retried
 * into an exception loop, it goes to the dead-letter queue. Fields quell does not use are ignored; ids it
 * acts on are checked against their exact shapes, so nothing else ever reaches a runbook's arguments.
 */
import { z } from 'zod';
import type { FindingSeverity } from '../config.ts';
import {
  type FindingTarget,
  INSTANCE_ID,
  LONG_TERM_KEY,
  ROLE_ARN,
  type SecurityFinding,
} from './security-finding.ts';

/** What a message holds: findings, or the reason it is poison. */
export type ParsedMessage = { ok: true; findings: ReadFinding[] } | { ok: false; reason: string };

/**
 * A parsed finding and whether it is closed (GuardDuty archived; Security Hub archived, resolved or
 * suppressed): closed ones are acknowledged, not posted.
 */
export type ReadFinding = SecurityFinding & { archived: boolean };

const AccountId = z.string().regex(/^\d{12}$/);
const Text = (max: number) =>
  z
    .string()
    .transform((s) => s.slice(0, max))
    .optional();

const GuardDutyEventSchema = z.object({
  'detail-type': z.literal('GuardDuty Finding'),
  source: z.literal('aws.guardduty'),
  region: z.string().optional(),
  detail: z.object({
    id: z.string().min(1).max(512),
    accountId: AccountId,
    region: z.string().max(32).optional(),
    partition: z.string().max(16).optional(),
    type: z.string().max(256).default(''),
    title: Text(512),
    description: Text(4000),
    severity: z.number().min(0).max(10),
    updatedAt: z.string().max(40).optional(),
    resource: z
      .object({
        resourceType: z.string().max(64).optional(),
        accessKeyDetails: z
          .object({
            accessKeyId: z.string().max(128).optional(),
            principalId: z.string().max(256).optional(),
            userName: z.string().max(128).optional(),
            userType: z.string().max(64).optional(),
          })
          .optional(),
        instanceDetails: z.object({ instanceId: z.string().max(64).optional() }).optional(),
      })
      .default({}),
    service: z.object({ archived: z.boolean().optional() }).optional(),
  }),
});

const AsffResourceSchema = z.object({
  Type: z.string().max(128),
  Id: z.string().max(2048),
  Region: z.string().max(32).optional(),
  Details: z
    .object({
      AwsIamAccessKey: z
        .object({
          AccessKeyId: z.string().max(128).optional(),
          PrincipalName: z.string().max(128).optional(),
          UserName: z.string().max(128).optional(),
        })
        .optional(),
      AwsIamRole: z.object({ RoleName: z.string().max(128).optional() }).optional(),
      AwsEc2Instance: z.object({}).optional(),
    })
    .optional(),
});

const AsffFindingSchema = z.object({
  Id: z.string().min(1).max(512),
  AwsAccountId: AccountId,
  Region: z.string().max(32).optional(),
  ProductName: z.string().max(128).optional(),
  Types: z.array(z.string().max(256)).default([]),
  Title: Text(512),
  Description: Text(4000),
  UpdatedAt: z.string().max(40).optional(),
  Severity: z.object({
    Label: z.enum(['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']).optional(),
    Normalized: z.number().min(0).max(100).optional(),
  }),
  Resources: z.array(AsffResourceSchema).max(100).default([]),
  RecordState: z.string().optional(),
  Workflow: z.object({ Status: z.string().optional() }).optional(),
});

const SecurityHubEventSchema = z.object({
  'detail-type': z.literal('Security Hub Findings - Imported'),
  source: z.literal('aws.securityhub'),
  region: z.string().optional(),
  detail: z.object({ findings: z.array(AsffFindingSchema).min(1).max(100) }),
});

/** GuardDuty's score as a label (docs: guardduty_findings-severity.html; 9.0–10.0 is Critical). */
export function guardDutySeverity(score: number): FindingSeverity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  if (score >= 1) return 'low';
  return 'informational';
}

/** ASFF's label, or its `Normalized` score mapped as Security Hub maps it (0, 1–39, 40–69, 70–89, 90–100). */
function asffSeverity(severity: {
  Label?: string | undefined;
  Normalized?: number | undefined;
}): FindingSeverity {
  if (severity.Label) return severity.Label.toLowerCase() as FindingSeverity;
  const n = severity.Normalized ?? 0;
  if (n >= 90) return 'critical';
  if (n >= 70) return 'high';
  if (n >= 40) return 'medium';
  if (n >= 1) return 'low';
  return 'informational';
}

const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

/** Reads one message body. Never throws. */
export function parseFindingMessage(body: string): ParsedMessage {
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'the message is not JSON' };
  }
  const kind =
    event && typeof event === 'object' ? (event as Record<string, unknown>)['detail-type'] : undefined;
  if (kind === 'GuardDuty Finding') {
    const parsed = GuardDutyEventSchema.safeParse(event);
    if (!parsed.success)
      return { ok: false, reason: `not a GuardDuty finding event: ${describe(parsed.error)}` };
    return { ok: true, findings: [fromGuardDuty(parsed.data)] };
  }
  if (kind === 'Security Hub Findings - Imported') {
    const parsed = SecurityHubEventSchema.safeParse(event);
    if (!parsed.success)
      return { ok: false, reason: `not a Security Hub findings event: ${describe(parsed.error)}` };
    return { ok: true, findings: parsed.data.detail.findings.map((f) => fromAsff(f, parsed.data.region)) };
  }
  return {
    ok: false,
    reason:
      typeof kind === 'string'
        ? `unknown event type "${kind.slice(0, 80)}" (expected GuardDuty Finding or Security Hub Findings - Imported)`
        : 'not an EventBridge event (no detail-type)',
  };
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join('.') || '(top level)'}: ${issue.message}` : 'invalid';
}

type GuardDutyEvent = z.infer<typeof GuardDutyEventSchema>;
type AsffFinding = z.infer<typeof AsffFindingSchema>;

function fromGuardDuty(event: GuardDutyEvent): ReadFinding {
  const d = event.detail;
  const region = d.region ?? event.region ?? '';
  const partition = d.partition ?? 'aws';
  const targets: FindingTarget[] = [];
  const resources: string[] = [];
  const key = d.resource.accessKeyDetails;
  if (key) {
    const id = key.accessKeyId ?? '';
    resources.push(
      `Access key ${id || '(none)'} of ${key.userType ?? 'principal'} ${key.userName ?? key.principalId ?? ''}`.trim(),
    );
    if (key.userType === 'IAMUser' && LONG_TERM_KEY.test(id))
      targets.push({ kind: 'access-key', accessKeyId: id, userName: key.userName ?? null });
    // An assumed role's key is temporary: the role's sessions are what to revoke. GuardDuty gives the
    // role's name, not its path: the ARN assumes the default path `/`.
    const roleArn = `arn:${partition}:iam::${d.accountId}:role/${key.userName ?? ''}`;
    if (key.userType === 'AssumedRole' && key.userName && ROLE_ARN.test(roleArn))
      targets.push({ kind: 'role', roleArn });
  }
  const instanceId = d.resource.instanceDetails?.instanceId;
  if (instanceId) {
    resources.push(`EC2 instance ${instanceId}`);
    if (INSTANCE_ID.test(instanceId) && REGION.test(region))
      targets.push({ kind: 'instance', instanceId, region });
  }
  if (resources.length === 0 && d.resource.resourceType) resources.push(d.resource.resourceType);
  return {
    source: 'guardduty',
    id: d.id,
    type: d.type,
    title: d.title ?? d.type,
    description: d.description ?? '',
    severity: guardDutySeverity(d.severity),
    score: d.severity,
    accountId: d.accountId,
    region,
    product: 'GuardDuty',
    updatedAt: d.updatedAt ?? null,
    targets,
    resources: resources.slice(0, 10),
    archived: d.service?.archived === true,
  };
}

function fromAsff(f: AsffFinding, eventRegion: string | undefined): ReadFinding {
  const region = f.Region ?? eventRegion ?? '';
  const targets: FindingTarget[] = [];
  const resources: string[] = [];
  for (const r of f.Resources) {
    resources.push(`${r.Type} ${r.Id}`);
    if (r.Type === 'AwsIamAccessKey') {
      const details = r.Details?.AwsIamAccessKey;
      // The key id is in Details, or is the resource id itself (`AWS::IAM::AccessKey:AKIA…` from GuardDuty).
      const id = details?.AccessKeyId ?? /(AKIA[A-Z2-7]{16})$/.exec(r.Id)?.[1] ?? '';
      if (LONG_TERM_KEY.test(id))
        targets.push({
          kind: 'access-key',
          accessKeyId: id,
          userName: details?.PrincipalName ?? details?.UserName ?? null,
        });
    } else if (r.Type === 'AwsEc2Instance') {
      const id = /(?:^|instance\/)(i-[0-9a-f]{8,17})$/.exec(r.Id)?.[1] ?? '';
      const where = r.Region ?? region;
      if (INSTANCE_ID.test(id) && REGION.test(where))
        targets.push({ kind: 'instance', instanceId: id, region: where });
    } else if (r.Type === 'AwsIamRole' && ROLE_ARN.test(r.Id)) {
      targets.push({ kind: 'role', roleArn: r.Id });
    }
  }
  const status = f.Workflow?.Status;
  return {
    source: 'securityhub',
    id: f.Id,
    type: f.Types[0] ?? '',
    title: f.Title ?? f.Types[0] ?? f.Id,
    description: f.Description ?? '',
    severity: asffSeverity(f.Severity),
    score: f.Severity.Normalized ?? null,
    accountId: f.AwsAccountId,
    region,
    product: f.ProductName ?? 'Security Hub',
    updatedAt: f.UpdatedAt ?? null,
    targets,
    resources: resources.slice(0, 10),
    archived: f.RecordState === 'ARCHIVED' || status === 'RESOLVED' || status === 'SUPPRESSED',
  };
}
