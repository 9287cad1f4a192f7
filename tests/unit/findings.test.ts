/**
 * Findings, piece by piece: the EventBridge envelopes of GuardDuty and Security Hub read into targets
 * (only exact ids reach a runbook), poison named, severities mapped as AWS documents them, button
 * references refused unless exact, the buttons offered only for installed runbooks, configured accounts
 * and the channel's guardrail, the arguments each button starts, the config section and the IAM statements.
 */
import { describe, expect, it } from 'vitest';
import { buildBotPolicy, buildFindingsQueueStatements } from '../../src/aws/build-iam-policies.ts';
import { ConfigSchema } from '../../src/config.ts';
import { guardDutySeverity, parseFindingMessage } from '../../src/findings/parse-finding-message.ts';
import {
  buildCommandArgs,
  findingRef,
  listOfferedActions,
  parseTargetRef,
  type SecurityFinding,
  targetRef,
} from '../../src/findings/security-finding.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { fitArgs } from '../../src/slack/register-security-finding-handlers.ts';
import {
  asffAccessKey,
  asffInstance,
  asffRole,
  guardDutyInstanceEvent,
  guardDutyKeyEvent,
  securityHubEvent,
} from '../support/findings-fixtures.ts';
import { isolateInstanceStandIn, revokeRoleSessionsStandIn } from '../support/fixtures/finding-runbooks.ts';

const ACCOUNT = '111111111111';
const KEY = 'AKIAIOSFODNN7EXAMPLE';

function readOne(body: unknown): SecurityFinding & { archived: boolean } {
  const parsed = parseFindingMessage(JSON.stringify(body));
  if (!parsed.ok) throw new Error(parsed.reason);
  expect(parsed.findings).toHaveLength(1);
  return parsed.findings[0] as SecurityFinding & { archived: boolean };
}

const config = ConfigSchema.parse({
  accounts: [
    {
      alias: 'prod',
      id: ACCOUNT,
      roles: {
        read: `arn:aws:iam::${ACCOUNT}:role/quell-read`,
        respond: `arn:aws:iam::${ACCOUNT}:role/quell-respond`,
      },
    },
  ],
  channels: {
    C0FINDINGS: { runbooks: ['*'], accounts: ['*'] },
    C0NARROW: { runbooks: ['disable-key'], accounts: ['prod'] },
  },
});

describe('reading finding events', () => {
  it('reads a GuardDuty access-key finding: an IAM user key becomes a disable-key target', () => {
    const f = readOne(
      guardDutyKeyEvent({ findingId: 'gd1', accountId: ACCOUNT, accessKeyId: KEY, userName: 'alice' }),
    );
    expect(f).toMatchObject({
      source: 'guardduty',
      id: 'gd1',
      type: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
      severity: 'high',
      score: 8,
      accountId: ACCOUNT,
      region: 'us-east-1',
      archived: false,
      targets: [{ kind: 'access-key', accessKeyId: KEY, userName: 'alice' }],
    });
  });

  it("reads an assumed role's temporary key as the role, a root key and GuardDuty's sample key as nothing to act on", () => {
    const role = readOne(
      guardDutyKeyEvent({
        findingId: 'gd2',
        accountId: ACCOUNT,
        accessKeyId: 'ASIAIOSFODNN7EXAMPLE',
        userName: 'web-app',
        userType: 'AssumedRole',
      }),
    );
    expect(role.targets).toEqual([{ kind: 'role', roleArn: `arn:aws:iam::${ACCOUNT}:role/web-app` }]);
    const root = readOne(
      guardDutyKeyEvent({
        findingId: 'gd3',
        accountId: ACCOUNT,
        accessKeyId: KEY,
        userName: 'Root',
        userType: 'Root',
      }),
    );
    expect(root.targets).toEqual([]);
    const sample = readOne(
      guardDutyKeyEvent({
        findingId: 'gd4',
        accountId: ACCOUNT,
        accessKeyId: 'GeneratedFindingAccessKeyId',
        userName: 'GeneratedFindingUserName',
      }),
    );
    expect(sample.targets).toEqual([]);
    expect(sample.resources[0]).toContain('GeneratedFindingAccessKeyId');
  });

  it('reads a GuardDuty instance finding with its region', () => {
    const f = readOne(
      guardDutyInstanceEvent({
        findingId: 'gd5',
        accountId: ACCOUNT,
        instanceId: 'i-99999999',
        region: 'eu-west-1',
      }),
    );
    expect(f.targets).toEqual([{ kind: 'instance', instanceId: 'i-99999999', region: 'eu-west-1' }]);
  });

  it('maps GuardDuty scores to the documented levels (Low 1.0–3.9, Medium 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0)', () => {
    expect([0, 1, 3.9, 4, 6.9, 7, 8.9, 9, 10].map(guardDutySeverity)).toEqual([
      'informational',
      'low',
      'low',
      'medium',
      'medium',
      'high',
      'high',
      'critical',
      'critical',
    ]);
  });

  it('reads ASFF resources: key (from Details or the id), instance, role; not service-linked roles or other types', () => {
    const f = readOne(
      securityHubEvent({
        findingId: 'sh1',
        accountId: ACCOUNT,
        label: 'HIGH',
        resources: [
          asffAccessKey(ACCOUNT, KEY, 'alice'),
          { Type: 'AwsIamAccessKey', Id: 'AWS::IAM::AccessKey:AKIAI44QH8DHBEXAMPLE' },
          asffInstance(ACCOUNT, 'i-0abc1234def567890', 'eu-west-1'),
          asffRole(ACCOUNT, 'web-app', '/team/'),
          asffRole(ACCOUNT, 'AWSServiceRoleForSupport', '/aws-service-role/support.amazonaws.com/'),
          { Type: 'AwsS3Bucket', Id: 'arn:aws:s3:::b' },
        ],
      }),
    );
    expect(f.severity).toBe('high');
    expect(f.product).toBe('GuardDuty');
    expect(f.targets).toEqual([
      { kind: 'access-key', accessKeyId: KEY, userName: 'alice' },
      { kind: 'instance', instanceId: 'i-0abc1234def567890', region: 'eu-west-1' },
      { kind: 'role', roleArn: `arn:aws:iam::${ACCOUNT}:role/team/web-app` },
    ]);
    expect(f.resources).toHaveLength(6);
  });

  it('marks resolved, suppressed and archived Security Hub findings, and archived GuardDuty ones, as closed', () => {
    for (const status of ['RESOLVED', 'SUPPRESSED'] as const)
      expect(
        readOne(
          securityHubEvent({
            findingId: 's',
            accountId: ACCOUNT,
            label: 'HIGH',
            resources: [],
            workflowStatus: status,
          }),
        ).archived,
      ).toBe(true);
    const event = guardDutyKeyEvent({ findingId: 'g', accountId: ACCOUNT, accessKeyId: KEY, userName: 'a' });
    (event.detail as { service: { archived: boolean } }).service.archived = true;
    expect(readOne(event).archived).toBe(true);
  });

  it('names poison: not JSON, not an event, an unknown event, a finding without its account', () => {
    const reason = (body: string) => {
      const parsed = parseFindingMessage(body);
      return parsed.ok ? 'ok' : parsed.reason;
    };
    expect(reason('{')).toBe('the message is not JSON');
    expect(reason('[1,2]')).toBe('not an EventBridge event (no detail-type)');
    expect(reason('null')).toBe('not an EventBridge event (no detail-type)');
    expect(reason(JSON.stringify({ 'detail-type': 'EC2 Instance State-change Notification' }))).toContain(
      'unknown event type "EC2 Instance State-change Notification"',
    );
    expect(
      reason(
        JSON.stringify({
          'detail-type': 'GuardDuty Finding',
          source: 'aws.guardduty',
          detail: { id: 'x', severity: 5 },
        }),
      ),
    ).toMatch(/^not a GuardDuty finding event: detail\.accountId/);
    expect(
      reason(
        JSON.stringify({
          'detail-type': 'Security Hub Findings - Imported',
          source: 'aws.securityhub',
          detail: { findings: [] },
        }),
      ),
    ).toMatch(/^not a Security Hub findings event/);
  });
});

describe('buttons of a finding card', () => {
  const finding = readOne(
    securityHubEvent({
      findingId: 'sh2',
      accountId: ACCOUNT,
      label: 'CRITICAL',
      resources: [
        asffAccessKey(ACCOUNT, KEY, 'alice'),
        asffInstance(ACCOUNT, 'i-99999999'),
        asffRole('222222222222', 'x'),
      ],
    }),
  );

  it('refer to the finding by a short reference and the resource by its index, nothing else', () => {
    const ref = findingRef('sh2');
    expect(ref).toMatch(/^f[0-9a-f]{20}$/);
    expect(findingRef('sh2')).toBe(ref);
    expect(parseTargetRef(targetRef(ref, 1))).toEqual({ ref, index: 1 });
    for (const forged of [
      '',
      ref,
      `${ref}.`,
      `${ref}.12`,
      `${ref}.1.2`,
      `${ref}x.1`,
      `r${ref.slice(1)}.1`,
      `${ref}.-1`,
    ])
      expect(parseTargetRef(forged)).toBeUndefined();
  });

  it('are offered only for runbooks the engine has, in configured accounts, where the guardrail allows them', () => {
    const today = RUNBOOKS.map((r) => r.id).filter(
      (id) => id !== 'isolate-instance' && id !== 'revoke-role-sessions',
    );
    expect(listOfferedActions(finding, config, today, 'C0FINDINGS').map((a) => a.runbook)).toEqual([
      'disable-key',
    ]);
    const later = [...today, 'isolate-instance', 'revoke-role-sessions'];
    // The role is in an account quell does not know: no button.
    expect(listOfferedActions(finding, config, later, 'C0FINDINGS').map((a) => [a.index, a.runbook])).toEqual(
      [
        [0, 'disable-key'],
        [1, 'isolate-instance'],
      ],
    );
    expect(listOfferedActions(finding, config, later, 'C0NARROW').map((a) => a.runbook)).toEqual([
      'disable-key',
    ]);
    expect(listOfferedActions(finding, config, later, 'C0NOWHERE')).toEqual([]);
  });

  it('start the runbook with the arguments filled from the finding, and leave out reason= where a runbook takes none', () => {
    const ref = findingRef('sh2');
    const [key, instance] = listOfferedActions(
      finding,
      config,
      ['disable-key', 'isolate-instance'],
      'C0FINDINGS',
    );
    if (!key || !instance) throw new Error('missing actions');
    expect(buildCommandArgs(finding, ref, key)).toEqual({
      positional: [KEY],
      options: {
        account: 'prod',
        reason: `Security Hub finding TTPs/Command and Control/Backdoor:EC2-C&CActivity.B (${ref})`,
      },
    });
    const isolate = buildCommandArgs(finding, ref, instance);
    expect(isolate).toMatchObject({
      positional: ['i-99999999'],
      options: { account: 'prod', region: 'us-east-1' },
    });
    expect(fitArgs(isolateInstanceStandIn, isolate)).toBe(isolate);
    const role = {
      positional: [`arn:aws:iam::${ACCOUNT}:role/x`],
      options: { account: 'prod', reason: 'a finding' },
    };
    expect(fitArgs(revokeRoleSessionsStandIn, role)).toEqual({
      positional: role.positional,
      options: { account: 'prod' },
    });
    // Anything else wrong is left for the runbook's own error message.
    const bad = { positional: ['i-XYZ'], options: { account: 'prod', reason: 'a finding' } };
    expect(fitArgs(isolateInstanceStandIn, bad)).toBe(bad);
  });
});

describe('the findings configuration and its IAM statements', () => {
  const base = { accounts: config.accounts };
  const findings = {
    queueUrl: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/quell-findings`,
    region: 'eu-west-1',
    channel: 'C0FINDINGS',
  };

  it('defaults minSeverity, pollSeconds and visibilitySeconds, and refuses what SQS or Slack would not take', () => {
    expect(ConfigSchema.parse({ ...base, findings }).findings).toEqual({
      ...findings,
      minSeverity: 'medium',
      pollSeconds: 20,
      visibilitySeconds: 120,
    });
    for (const bad of [
      { queueUrl: 'sqs://quell-findings' },
      { queueUrl: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/quell-findings.fifo` },
      { pollSeconds: 21 },
      { minSeverity: 'severe' },
      { channel: '#security' },
      { dlqUrl: 'arn:aws:sqs:eu-west-1:111111111111:dlq' },
      { extra: true },
    ])
      expect(ConfigSchema.safeParse({ ...base, findings: { ...findings, ...bad } }).success).toBe(false);
  });

  it('gives the bot receive, delete and attributes on the queue, and send on the dead-letter queue only', () => {
    expect(
      buildFindingsQueueStatements({
        ...findings,
        dlqUrl: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/quell-dlq`,
      }),
    ).toEqual([
      {
        Sid: 'ReceiveFindings',
        Effect: 'Allow',
        Action: ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'],
        Resource: [`arn:aws:sqs:eu-west-1:${ACCOUNT}:quell-findings`],
      },
      {
        Sid: 'DeadLetterFindings',
        Effect: 'Allow',
        Action: ['sqs:SendMessage'],
        Resource: [`arn:aws:sqs:eu-west-1:${ACCOUNT}:quell-dlq`],
      },
    ]);
    expect(buildBotPolicy([], [], undefined, findings).Statement.map((s) => s.Sid)).toEqual([
      'AssumeQuellRoles',
      'ReceiveFindings',
    ]);
    expect(buildBotPolicy([], []).Statement.map((s) => s.Sid)).toEqual(['AssumeQuellRoles']);
  });
});
