/**
 * drift's pure parts: the target schema (stack name, `all`, VPC id — and near misses), the posture
 * rules over security groups, network ACLs and flow logs (each finding names the resource and the
 * rule), and the report (compact in the thread, complete in a file when shortened).
 */
import type { NetworkAcl, SecurityGroup } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, parseConfig } from '../../src/config.ts';
import { ConfigInvalidError, InputInvalidError } from '../../src/errors.ts';
import { parseRunbookInput, type RunContext } from '../../src/runbooks/define-runbook.ts';
import {
  allowAllRule,
  type DriftTarget,
  drift,
  findAclIssues,
  findFlowLogGaps,
  findSecurityGroupIssues,
  renderDriftReport,
  type StackDrift,
} from '../../src/runbooks/drift.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';

function parse(text: string): {
  target: DriftTarget;
  account: string | undefined;
  region: string | undefined;
  reason: undefined;
} {
  return parseRunbookInput(drift, parseCommandText(`drift ${text}`).args);
}

function problemsOf(text: string): string {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(InputInvalidError);
    return (error as InputInvalidError).problems.join(' | ');
  }
  throw new Error(`accepted: ${text}`);
}

describe('drift input', () => {
  it('takes a stack name, `all`, or a VPC id', () => {
    expect(parse('web-prod')).toMatchObject({ target: { kind: 'stack', name: 'web-prod' } });
    expect(parse('all region=eu-west-1 account=prod')).toEqual({
      target: { kind: 'all' },
      region: 'eu-west-1',
      account: 'prod',
      reason: undefined,
    });
    expect(parse('vpc-0abc1234').target).toEqual({ kind: 'vpc', vpcId: 'vpc-0abc1234' });
    expect(parse('vpc-0abc1234def567890').target).toEqual({ kind: 'vpc', vpcId: 'vpc-0abc1234def567890' });
  });

  it('refuses near-miss VPC ids and malformed stack names, saying what the right form is', () => {
    for (const bad of ['vpc-xyz', 'vpc-0ABC1234', 'vpc-0abc123', 'vpc-0abc1234def56789', 'VPC-0abc1234']) {
      expect(problemsOf(bad), bad).toContain('vpc- and 8 or 17 lower-case hex digits');
    }
    for (const bad of ['1stack', '-web', 'web_prod', 'web.prod', 'a'.repeat(129), '"prod; rm -rf /"']) {
      expect(problemsOf(bad), bad).toContain('a stack name starts with a letter');
    }
    expect(problemsOf('')).toContain('give one stack name');
    expect(problemsOf('web api')).toContain('give one stack name');
    expect(problemsOf('web region=mars-1')).toContain('`region=`');
    expect(problemsOf('web force=true')).toContain('unknown option `force=`');
  });
});

describe('the posture baseline in the config', () => {
  const account = (extra: Record<string, unknown>) =>
    ConfigSchema.parse({
      accounts: [
        {
          alias: 'prod',
          id: '111111111111',
          roles: {
            read: 'arn:aws:iam::111111111111:role/quell-read',
            respond: 'arn:aws:iam::111111111111:role/quell-respond',
          },
          ...extra,
        },
      ],
    }).accounts[0];
  // As the engine builds the context: the account, and the runbook's own setting of it.
  const plan = (extra: Record<string, unknown>) =>
    drift.plan(
      {
        account: account(extra),
        region: 'us-east-1',
        config: (account(extra) as Record<string, unknown>).allowedPublicPorts,
      } as unknown as RunContext,
      parse('vpc-0abc1234'),
    );

  it('takes the allowed public ports from the account (default 443), and the plan shows them', async () => {
    expect((await plan({})).data.allowedPorts).toEqual([443]);
    const custom = await plan({ allowedPublicPorts: [8443, 443, 80] });
    expect(custom.data.allowedPorts).toEqual([80, 443, 8443]);
    expect(Object.fromEntries(custom.facts)['Allowed public ports']).toBe('80, 443, 8443');
    expect(custom.calls.map((c) => c.action)).toEqual([
      'ec2:DescribeVpcs',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeFlowLogs',
    ]);
  });

  it('refuses ports outside 0–65535 in the config, naming the path and line', () => {
    const yaml = `accounts:
  - alias: prod
    id: "111111111111"
    roles: { read: "arn:aws:iam::111111111111:role/quell-read", respond: "arn:aws:iam::111111111111:role/quell-respond" }
    allowedPublicPorts: [443, 70000]
`;
    expect(() => parseConfig(yaml)).toThrow(ConfigInvalidError);
    expect(() => parseConfig(yaml)).toThrow(
      /accounts\.0\.allowedPublicPorts\.1 \(line 5\): must be a port 0–65535/,
    );
  });
});

const sg = (overrides: Partial<SecurityGroup>): SecurityGroup => ({
  GroupId: 'sg-1',
  GroupName: 'web',
  VpcId: 'vpc-1',
  IpPermissions: [],
  IpPermissionsEgress: [],
  ...overrides,
});
const anywhere = { IpRanges: [{ CidrIp: '0.0.0.0/0' }] };

describe('security groups', () => {
  it('reports inbound from 0.0.0.0/0 or ::/0 beyond the allowed ports, naming group and rule', () => {
    const findings = findSecurityGroupIssues(
      [
        sg({
          IpPermissions: [
            { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, ...anywhere, Ipv6Ranges: [{ CidrIpv6: '::/0' }] },
            { IpProtocol: 'tcp', FromPort: 443, ToPort: 443, ...anywhere },
            { IpProtocol: 'udp', FromPort: 443, ToPort: 443, Ipv6Ranges: [{ CidrIpv6: '::/0' }] },
            { IpProtocol: 'tcp', FromPort: 80, ToPort: 443, ...anywhere },
            { IpProtocol: '-1', Ipv6Ranges: [{ CidrIpv6: '::/0' }] },
            { IpProtocol: 'icmp', FromPort: 8, ToPort: -1, ...anywhere },
            { IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, ...anywhere },
            { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '10.0.0.0/8' }] },
          ],
        }),
      ],
      [443],
    );
    expect(findings.map((f) => `${f.kind} ${f.resource}: ${f.rule}`)).toEqual([
      'open-ingress sg-1 (web): inbound tcp 22 from 0.0.0.0/0 and ::/0',
      'open-ingress sg-1 (web): inbound tcp 80-443 from 0.0.0.0/0',
      'open-ingress sg-1 (web): inbound all traffic from ::/0',
      'open-ingress sg-1 (web): inbound icmp from 0.0.0.0/0',
      'open-ingress sg-1 (web): inbound tcp all ports from 0.0.0.0/0',
    ]);
    // With no allowed ports, 443 is reported too; with 80 and 443 allowed, the 80-443 range still is.
    expect(
      findSecurityGroupIssues(
        [sg({ IpPermissions: [{ IpProtocol: '6', FromPort: 443, ToPort: 443, ...anywhere }] })],
        [],
      ),
    ).toHaveLength(1);
    expect(
      findSecurityGroupIssues(
        [sg({ IpPermissions: [{ IpProtocol: 'tcp', FromPort: 80, ToPort: 443, ...anywhere }] })],
        [80, 443],
      ),
    ).toHaveLength(1);
  });

  it('reports a default group with any rule (once), and unrestricted egress of other groups', () => {
    const findings = findSecurityGroupIssues(
      [
        sg({
          GroupId: 'sg-d',
          GroupName: 'default',
          IpPermissions: [{ IpProtocol: '-1', UserIdGroupPairs: [{ GroupId: 'sg-d' }] }],
          IpPermissionsEgress: [{ IpProtocol: '-1', ...anywhere }],
        }),
        sg({ GroupId: 'sg-e', GroupName: 'default', VpcId: 'vpc-2' }),
        sg({ GroupId: 'sg-o', IpPermissionsEgress: [{ IpProtocol: '-1', ...anywhere }] }),
        sg({
          GroupId: 'sg-t',
          IpPermissionsEgress: [{ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, ...anywhere }],
        }),
      ],
      [443],
    );
    expect(findings.map((f) => `${f.kind} ${f.resource}: ${f.rule}`)).toEqual([
      'default-sg-rules sg-d (default): default security group has 2 rules (should have none): inbound all traffic from sg-d; outbound all traffic to 0.0.0.0/0',
      'open-egress sg-o (web): outbound all traffic to 0.0.0.0/0',
    ]);
  });
});

describe('network ACLs', () => {
  const acl = (entries: NetworkAcl['Entries'], subnets = ['subnet-1', 'subnet-2']): NetworkAcl => ({
    NetworkAclId: 'acl-1',
    VpcId: 'vpc-1',
    Entries: entries,
    Associations: subnets.map((SubnetId) => ({ SubnetId, NetworkAclId: 'acl-1' })),
  });
  const entry = (RuleNumber: number, RuleAction: 'allow' | 'deny', Egress = false, extra = {}) => ({
    RuleNumber,
    RuleAction,
    Egress,
    Protocol: '-1',
    CidrBlock: '0.0.0.0/0',
    ...extra,
  });

  it('reports every subnet on an ACL whose first matching inbound rule allows everything', () => {
    const findings = findAclIssues([
      acl([entry(100, 'allow'), entry(32767, 'deny'), entry(100, 'allow', true), entry(32767, 'deny', true)]),
    ]);
    expect(findings.map((f) => `${f.resource}: ${f.rule}`)).toEqual([
      'subnet-1: network ACL acl-1 allows all inbound traffic from 0.0.0.0/0 (rule 100), and all outbound to 0.0.0.0/0 (rule 100)',
      'subnet-2: network ACL acl-1 allows all inbound traffic from 0.0.0.0/0 (rule 100), and all outbound to 0.0.0.0/0 (rule 100)',
    ]);
  });

  it('does not report an ACL where a deny comes first, one that only denies, or one no subnet uses', () => {
    const denyFirst = [
      entry(50, 'deny', false, { Protocol: '6', PortRange: { From: 22, To: 22 } }),
      entry(100, 'allow'),
    ];
    expect(allowAllRule(denyFirst, false, 4)).toBeUndefined();
    expect(findAclIssues([acl(denyFirst)])).toEqual([]);
    expect(findAclIssues([acl([entry(32767, 'deny')])])).toEqual([]);
    expect(findAclIssues([acl([entry(100, 'allow')], [])])).toEqual([]);
    // A narrow allow first does not stop a later allow-all; IPv6 is judged on its own.
    const later = [
      entry(100, 'allow', false, { Protocol: '6', CidrBlock: '10.0.0.0/8' }),
      entry(200, 'allow'),
      { RuleNumber: 10, RuleAction: 'allow' as const, Egress: false, Protocol: '-1', Ipv6CidrBlock: '::/0' },
    ];
    expect(allowAllRule(later, false, 4)?.RuleNumber).toBe(200);
    expect(findAclIssues([acl(later, ['subnet-9'])])[0]?.rule).toBe(
      'network ACL acl-1 allows all inbound traffic from 0.0.0.0/0 (rule 200) and ::/0 (rule 10)',
    );
  });
});

describe('flow logs', () => {
  it('reports VPCs without an active flow log, or whose flow logs do not deliver', () => {
    const findings = findFlowLogGaps(
      ['vpc-a', 'vpc-b', 'vpc-c', 'vpc-d'],
      [
        { FlowLogId: 'fl-1', ResourceId: 'vpc-a', FlowLogStatus: 'ACTIVE', DeliverLogsStatus: 'SUCCESS' },
        {
          FlowLogId: 'fl-2',
          ResourceId: 'vpc-b',
          FlowLogStatus: 'ACTIVE',
          DeliverLogsStatus: 'FAILED',
          DeliverLogsErrorMessage: 'Access error',
        },
        { FlowLogId: 'fl-3', ResourceId: 'subnet-1', FlowLogStatus: 'ACTIVE' },
      ],
    );
    expect(findings.map((f) => `${f.resource}: ${f.rule}`)).toEqual([
      'vpc-b: flow log fl-2 (Access error) does not deliver: traffic is not recorded',
      'vpc-c: no active flow log: traffic in this VPC is not recorded',
      'vpc-d: no active flow log: traffic in this VPC is not recorded',
    ]);
  });
});

describe('the report', () => {
  const drifted: StackDrift = {
    stack: 'web',
    status: 'DRIFTED',
    reason: '',
    resources: [
      {
        logicalId: 'WebSG',
        physicalId: 'sg-0123',
        type: 'AWS::EC2::SecurityGroup',
        status: 'MODIFIED',
        differences: [
          {
            path: '/SecurityGroupIngress/0/CidrIp',
            expected: '10.0.0.0/8',
            actual: '0.0.0.0/0',
            kind: 'NOT_EQUAL',
          },
          { path: '/Tags/1', expected: '', actual: '{"Key":"x","Value":"`<!channel>`"}', kind: 'ADD' },
        ],
        expectedProperties: '{"GroupDescription":"web"}',
        actualProperties: '{"GroupDescription":"web"}',
      },
      {
        logicalId: 'Bucket',
        physicalId: 'logs',
        type: 'AWS::S3::Bucket',
        status: 'DELETED',
        differences: [],
        expectedProperties: '',
        actualProperties: '',
      },
    ],
  };
  const posture = {
    vpcIds: ['vpc-1'],
    findings: [
      {
        kind: 'open-ingress' as const,
        vpcId: 'vpc-1',
        resource: 'sg-1 (web`)',
        rule: 'inbound tcp 22 from 0.0.0.0/0',
      },
    ],
  };

  it('shows each drifted resource with expected → actual, and each finding, values as code', () => {
    const report = renderDriftReport(
      [drifted, { stack: 'api', status: 'IN_SYNC', reason: '', resources: [] }],
      posture,
      'eu-west-1',
    );
    expect(report.messages).toHaveLength(2); // stacks, then posture
    const message = report.messages.join('\n');
    expect(report.messages[0]).toContain('*In sync with their templates* (1): `api`');
    expect(message).toContain('*Stack `web`* has drifted: 2 resources differ from the template');
    expect(message).toContain('`/SecurityGroupIngress/0/CidrIp`: `10.0.0.0/8` → `0.0.0.0/0`');
    expect(message).toContain('added `{"Key":"x","Value":" <!channel> "}`');
    expect(message).toContain('`Bucket` AWS::S3::Bucket `logs`: deleted outside CloudFormation');
    expect(message).toContain('*Network posture* (vpc-1): 1 finding');
    expect(message).toContain('• `sg-1 (web )` in `vpc-1`: `inbound tcp 22 from 0.0.0.0/0`');
    expect(report.shortened).toBe(false);
  });

  it('keeps the message short and puts everything in the full report when there is a lot', () => {
    const many: StackDrift = {
      ...drifted,
      resources: Array.from({ length: 60 }, (_, i) => ({
        logicalId: `Queue${i}`,
        physicalId: `q-${i}`,
        type: 'AWS::SQS::Queue',
        status: 'MODIFIED',
        differences: Array.from({ length: 5 }, (_, j) => ({
          path: `/P${j}`,
          expected: 'x'.repeat(80),
          actual: 'y'.repeat(80),
          kind: 'NOT_EQUAL',
        })),
        expectedProperties: '{}',
        actualProperties: '{}',
      })),
    };
    const report = renderDriftReport([many], posture, 'eu-west-1');
    expect(report.shortened).toBe(true);
    for (const message of report.messages) expect(message.length).toBeLessThan(2_900);
    expect(report.messages[0]).toContain('• … and 55 more resources');
    expect(report.messages[1]).toContain('full report is attached');
    // Posture only (drift vpc-…): one message.
    expect(renderDriftReport(null, posture, 'eu-west-1').messages).toHaveLength(1);
    expect(report.full).toContain('Queue59 (AWS::SQS::Queue q-59): MODIFIED');
    expect(report.full).toContain(`expected: ${'x'.repeat(80)}`);
    expect(report.full.match(/NOT_EQUAL/g)).toHaveLength(300);
  });
});
