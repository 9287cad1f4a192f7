/**
 * drift end to end through Bolt's real HTTP receiver with signed requests: the command → no approval
 * (read-only) → the checks with the read role → the card's facts and the report in the thread (and the
 * full report as a file when long) → every call in the audit log, and the chain verifying.
 *
 * Network posture runs against real security groups, VPCs, subnets, network ACLs and flow logs created
 * in moto (a random account, reached through assumed roles as quell reaches real accounts).
 * CloudFormation drift: moto has no drift operations, so quell's CloudFormation clients reach a local
 * fake of the four drift calls (AWS_ENDPOINT_URL_CLOUDFORMATION) whose stacks the test scripts; the
 * statuses over time are covered with aws-sdk-client-mock in tests/integration/drift-cloudformation.test.ts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateFlowLogsCommand,
  CreateNetworkAclCommand,
  CreateNetworkAclEntryCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeNetworkAclsCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  ReplaceNetworkAclAssociationCommand,
  RevokeSecurityGroupEgressCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildPermissionsPolicy } from '../../src/aws/build-iam-policies.ts';
import { DETECTION_IMPLIED_ACTIONS, drift } from '../../src/runbooks/drift.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, adminCredentials, randomAccountId } from '../support/aws-fixtures.ts';
import { type FakeCloudFormation, startFakeCloudFormation } from '../support/fake-cloudformation.ts';
import { startTestQuell, type TestQuell, waitForRunOf } from '../support/test-quell.ts';

const exec = promisify(execFile);
const REGION = 'eu-west-1';

/** A CloudWatch Logs group in moto (no Logs client is installed: one JSON-protocol request, unsigned as moto allows). */
async function createLogGroup(accessKeyId: string, name: string): Promise<void> {
  const res = await fetch(inject('motoUrl'), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'Logs_20140328.CreateLogGroup',
      authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20260101/${REGION}/logs/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify({ logGroupName: name }),
  });
  if (!res.ok) throw new Error(`moto refused CreateLogGroup: ${res.status} ${await res.text()}`);
}

interface ExposedVpc {
  vpcId: string;
  subnetIds: string[];
  webGroupId: string;
  appGroupId: string;
  defaultGroupId: string;
  defaultAclId: string;
}

/** A VPC with the usual mistakes: SSH open to the world, default ACL and group, open egress, no flow log. */
async function buildExposedVpc(ec2: EC2Client): Promise<ExposedVpc> {
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.20.0.0/16' }))).Vpc?.VpcId ?? '';
  const subnetIds: string[] = [];
  for (const cidr of ['10.20.1.0/24', '10.20.2.0/24']) {
    subnetIds.push(
      (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: cidr }))).Subnet?.SubnetId ?? '',
    );
  }
  const webGroupId =
    (await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'web', Description: 'web' })))
      .GroupId ?? '';
  await ec2.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: webGroupId,
      IpPermissions: [
        { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
        {
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          IpRanges: [{ CidrIp: '0.0.0.0/0' }],
          Ipv6Ranges: [{ CidrIpv6: '::/0' }],
        },
      ],
    }),
  );
  const appGroupId =
    (await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'app', Description: 'app' })))
      .GroupId ?? '';
  await ec2.send(
    new AuthorizeSecurityGroupIngressCommand({
      GroupId: appGroupId,
      IpPermissions: [
        { IpProtocol: 'tcp', FromPort: 8080, ToPort: 8080, UserIdGroupPairs: [{ GroupId: webGroupId }] },
      ],
    }),
  );
  const groups = await ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const defaultGroupId = groups.SecurityGroups?.find((g) => g.GroupName === 'default')?.GroupId ?? '';
  const acls = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const defaultAclId = acls.NetworkAcls?.find((a) => a.IsDefault)?.NetworkAclId ?? '';
  return { vpcId, subnetIds, webGroupId, appGroupId, defaultGroupId, defaultAclId };
}

/** A VPC that meets the baseline: its own restrictive ACL, an empty default group, a delivering flow log. */
async function buildTidyVpc(ec2: EC2Client, accessKeyId: string): Promise<string> {
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.30.0.0/16' }))).Vpc?.VpcId ?? '';
  const subnetId =
    (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.30.1.0/24' }))).Subnet?.SubnetId ??
    '';
  const aclId =
    (await ec2.send(new CreateNetworkAclCommand({ VpcId: vpcId }))).NetworkAcl?.NetworkAclId ?? '';
  await ec2.send(
    new CreateNetworkAclEntryCommand({
      NetworkAclId: aclId,
      RuleNumber: 100,
      Protocol: '6',
      RuleAction: 'allow',
      Egress: false,
      CidrBlock: '0.0.0.0/0',
      PortRange: { From: 443, To: 443 },
    }),
  );
  await ec2.send(
    new CreateNetworkAclEntryCommand({
      NetworkAclId: aclId,
      RuleNumber: 100,
      Protocol: '-1',
      RuleAction: 'allow',
      Egress: true,
      CidrBlock: '0.0.0.0/0',
    }),
  );
  const acls = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const association = acls.NetworkAcls?.flatMap((a) => a.Associations ?? []).find(
    (a) => a.SubnetId === subnetId,
  );
  await ec2.send(
    new ReplaceNetworkAclAssociationCommand({
      AssociationId: association?.NetworkAclAssociationId,
      NetworkAclId: aclId,
    }),
  );
  const groups = await ec2.send(
    new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const defaultGroup = groups.SecurityGroups?.find((g) => g.GroupName === 'default');
  if (defaultGroup?.IpPermissionsEgress?.length)
    await ec2.send(
      new RevokeSecurityGroupEgressCommand({
        GroupId: defaultGroup.GroupId,
        IpPermissions: defaultGroup.IpPermissionsEgress,
      }),
    );
  await createLogGroup(accessKeyId, 'vpc-flow-logs');
  await ec2.send(
    new CreateFlowLogsCommand({
      ResourceIds: [vpcId],
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogGroupName: 'vpc-flow-logs',
      DeliverLogsPermissionArn: 'arn:aws:iam::123456789012:role/flow-logs',
    }),
  );
  return vpcId;
}

describe('drift from Slack to CloudFormation and EC2 and back to the thread', () => {
  let t: TestQuell;
  let cfn: FakeCloudFormation;
  let ec2: EC2Client;
  let exposed: ExposedVpc;
  let tidyVpcId: string;
  const accountId = randomAccountId();
  const runs: RunRecord[] = [];

  beforeAll(async () => {
    cfn = await startFakeCloudFormation({ pageSize: 2 });
    process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = cfn.url;
    const credentials = await adminCredentials(accountId);
    ec2 = new EC2Client({ region: REGION, credentials });
    exposed = await buildExposedVpc(ec2);
    tidyVpcId = await buildTidyVpc(ec2, credentials.accessKeyId);
    t = await startTestQuell({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    await cfn?.close();
    ec2?.destroy();
  });

  /** Runs a command as `user` and waits for its run to finish. */
  async function runDrift(
    text: string,
    user: string,
  ): Promise<{ run: RunRecord; thread: string; facts: string }> {
    const ack = await t.command(text, user);
    expect(ack.status).toBe(200);
    expect(String(ack.json?.text)).toContain('Planning `drift`');
    const run = await waitForRunOf(t.quell, user, ['succeeded', 'failed']);
    await t.settle();
    runs.push(run);
    const thread = t.slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts === run.messageTs)
      .map((c) => String(c.body.text))
      .join('\n');
    const updates = t.slack.callsOf('chat.update').filter((c) => c.body.ts === run.messageTs);
    return { run, thread, facts: JSON.stringify(updates.at(-1)?.body.blocks) };
  }

  it('reports every posture finding of a VPC in moto, naming the resource and the rule', async () => {
    const { run, thread, facts } = await runDrift(`drift ${exposed.vpcId} region=${REGION}`, 'U0POSTURE');
    expect(run.state).toBe('succeeded');
    expect(run.requiredApprovals).toBe(0);
    expect(run.region).toBe(REGION);
    const [s1, s2] = exposed.subnetIds;
    const aclRule = `network ACL ${exposed.defaultAclId} allows all inbound traffic from 0.0.0.0/0 (rule 100), and all outbound to 0.0.0.0/0 (rule 100)`;
    for (const line of [
      `*Network posture* (${exposed.vpcId}): 7 findings`,
      `• \`${exposed.webGroupId} (web)\` in \`${exposed.vpcId}\`: \`inbound tcp 22 from 0.0.0.0/0\``,
      `• \`${s1}\` in \`${exposed.vpcId}\`: \`${aclRule}\``,
      `• \`${s2}\` in \`${exposed.vpcId}\`: \`${aclRule}\``,
      `• \`${exposed.defaultGroupId} (default)\` in \`${exposed.vpcId}\`: \`default security group has 1 rule (should have none): outbound all traffic to 0.0.0.0/0\``,
      `• \`${exposed.vpcId}\` in \`${exposed.vpcId}\`: \`no active flow log: traffic in this VPC is not recorded\``,
      `• \`${exposed.webGroupId} (web)\` in \`${exposed.vpcId}\`: \`outbound all traffic to 0.0.0.0/0\``,
      `• \`${exposed.appGroupId} (app)\` in \`${exposed.vpcId}\`: \`outbound all traffic to 0.0.0.0/0\``,
    ]) {
      expect(thread).toContain(line);
    }
    // 443 is an allowed public port (the default baseline); the app group's 8080 is only open to the web group.
    expect(thread).not.toContain('tcp 443');
    expect(thread).not.toContain('8080');
    expect(facts).toContain(
      'open-ingress 1 · acl-allows-all 2 · default-sg-rules 1 · no-flow-logs 1 · open-egress 2',
    );
    expect(facts).toContain('*Allowed public ports*\\n443');
    expect(thread).toContain('Done: Network posture: 7 findings in 1 VPC.');
  });

  it('finds nothing in a VPC that meets the baseline', async () => {
    const { run, thread } = await runDrift(`drift ${tidyVpcId} region=${REGION}`, 'U0TIDY');
    expect(run.state).toBe('succeeded');
    expect(thread).toContain(`*Network posture* (${tidyVpcId}): no findings`);
  });

  it('fails clearly for a VPC that is not there', async () => {
    const { run } = await runDrift(`drift vpc-0123456789abcdef0 region=${REGION}`, 'U0NOVPC');
    expect(run.state).toBe('failed');
    expect(JSON.stringify(run.error)).toContain('No VPC `vpc-0123456789abcdef0` here');
  });

  it("shows a stack's drifted resources as expected → actual, with the region's posture", async () => {
    cfn.stacks.set('web', {
      status: 'UPDATE_COMPLETE',
      resources: [
        {
          logicalId: 'WebSG',
          physicalId: exposed.webGroupId,
          type: 'AWS::EC2::SecurityGroup',
          status: 'MODIFIED',
          differences: [
            {
              path: '/SecurityGroupIngress/0/CidrIp',
              expected: '10.0.0.0/8',
              actual: '0.0.0.0/0',
              kind: 'NOT_EQUAL',
            },
          ],
        },
        { logicalId: 'Logs', physicalId: 'web-logs', type: 'AWS::S3::Bucket', status: 'DELETED' },
        { logicalId: 'Queue', physicalId: 'q', type: 'AWS::SQS::Queue', status: 'IN_SYNC' },
      ],
    });
    const { run, thread, facts } = await runDrift(`drift web region=${REGION}`, 'U0STACK');
    expect(run.state).toBe('succeeded');
    expect(thread).toContain('*Stack `web`* has drifted: 2 resources differ from the template');
    expect(thread).toContain(
      `• \`WebSG\` AWS::EC2::SecurityGroup \`${exposed.webGroupId}\`: 1 property differs`,
    );
    expect(thread).toContain('`/SecurityGroupIngress/0/CidrIp`: `10.0.0.0/8` → `0.0.0.0/0`');
    expect(thread).toContain('• `Logs` AWS::S3::Bucket `web-logs`: deleted outside CloudFormation');
    expect(thread).not.toContain('Queue');
    expect(thread).toMatch(/\*Network posture\* \(3 VPCs in eu-west-1\): \d+ findings/); // moto's default VPC, and ours
    expect(facts).toContain('*Stacks*\\nweb: DRIFTED');
    expect(facts).toContain('*Drifted resources*\\n2');
  });

  it('attaches the full diff as a file when the report is long', async () => {
    cfn.stacks.set('big', {
      status: 'CREATE_COMPLETE',
      resources: Array.from({ length: 40 }, (_, i) => ({
        logicalId: `Topic${i}`,
        physicalId: `arn:aws:sns:eu-west-1:${accountId}:topic-${i}`,
        type: 'AWS::SNS::Topic',
        status: 'MODIFIED' as const,
        differences: [
          {
            path: '/DisplayName',
            expected: `topic ${i}`,
            actual: `renamed <!here> ${i}`,
            kind: 'NOT_EQUAL' as const,
          },
        ],
      })),
    });
    const { run, thread } = await runDrift(`drift big region=${REGION}`, 'U0BIG');
    expect(run.state).toBe('succeeded');
    expect(thread).toContain('_Shortened; the full report is attached._');
    expect(thread).not.toContain('<!here>');
    const file = t.slack.files.find((f) => f.filename === `drift-${run.id}.txt`);
    expect(file?.threadTs).toBe(run.messageTs);
    expect(file?.content).toContain('Topic39 (AWS::SNS::Topic');
    expect(file?.content.match(/NOT_EQUAL \/DisplayName/g)).toHaveLength(40);
  });

  it('`drift all` checks every checkable stack and says which could not be checked', async () => {
    cfn.stacks.set('api', { status: 'CREATE_COMPLETE', resources: [] });
    cfn.stacks.set('gone', { status: 'DELETE_COMPLETE', resources: [] });
    cfn.stacks.set('stuck', {
      status: 'UPDATE_ROLLBACK_FAILED',
      resources: [],
      failReason: 'Failed to detect drift on resource Fn',
    });
    const { run, thread, facts } = await runDrift(`drift all region=${REGION}`, 'U0ALL');
    expect(run.state).toBe('failed'); // a stack could not be checked: "finished with problems"
    expect(thread).toContain(
      'Finished with problems: 2 of 4 stacks have drifted (42 resources); 1 could not be checked.',
    );
    expect(thread).toContain('*In sync with their templates* (1): `api`');
    expect(thread).toContain('• … and 35 more resources'); // big's 40, five of them shown
    expect(thread).toContain('*Stack `stuck`* could not be checked: Failed to detect drift on resource Fn');
    expect(facts).toContain('4 checked · 2 drifted · 1 not checked');
    const listed = cfn.requests.filter((r) => r.action === 'ListStacks');
    expect(listed.length).toBeGreaterThanOrEqual(2); // the fake pages 2 stacks at a time
    expect(
      cfn.requests.filter((r) => r.action === 'DetectStackDrift').map((r) => r.params.StackName),
    ).not.toContain('gone');
    expect(cfn.maxConcurrentDetections).toBeLessThanOrEqual(4);
  });

  it('fails clearly for a stack that is not there', async () => {
    const { run } = await runDrift(`drift nosuch region=${REGION}`, 'U0NOSTACK');
    expect(run.state).toBe('failed');
    expect(JSON.stringify(run.error)).toContain('No stack `nosuch` here');
  });

  it('audits every call with the read role, calls exactly the declared actions, and the chain verifies', async () => {
    const entries = await t.quell.store.listAudit();
    const ids = new Set(runs.map((r) => r.id));
    const calls = entries
      .filter((e) => e.type === 'aws.call' && e.runId && ids.has(e.runId))
      .map((e) => e.data as Record<string, unknown>)
      .filter((c) => c.service !== 'sts');
    expect(calls.every((c) => c.role === `arn:aws:iam::${accountId}:role/quell-read`)).toBe(true);
    // Every request the CloudFormation fake received is an audited call.
    expect(calls.filter((c) => c.service === 'cloudformation')).toHaveLength(cfn.requests.length);
    const used = [...new Set(calls.map((c) => `${c.service}:${c.operation}`))].sort();
    // Declared = called, apart from the actions AWS checks during a detection without a call of their own.
    const declared = [...drift.iam.plan, ...drift.iam.execute];
    expect(used).toEqual(declared.filter((a) => !DETECTION_IMPLIED_ACTIONS.includes(a)).sort());
    const statement = buildPermissionsPolicy(RUNBOOKS, 'read').Statement.find((s) => s.Sid === 'Drift');
    expect(statement?.Action).toEqual([...declared].sort());

    const verify = await exec(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);
  });
});
