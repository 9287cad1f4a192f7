/**
 * isolate-instance and release-instance end to end through Bolt's real HTTP receiver with signed requests,
 * against moto: the command → the approval card (the plan, the tracked-connection caveat, an attacker's
 * tagged allow-all group named as NOT a quarantine) → the requester cannot approve, one approver is not
 * enough, the second runs it → evidence first (snapshots tagged with the run, the JSON file in the thread,
 * its SHA-256 in the audit chain) → every ENI on a group with no rules, no instance profile, tagged,
 * stopped → Undo (two approvers again) puts everything back from the ledger. release-instance needs the
 * same approvals as that Undo. Hostile input is refused before any AWS call.
 *
 * quell's AWS traffic (STS and EC2) goes through a loopback proxy in front of moto that records every
 * request, so the round trips after the approving click can be counted.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import {
  AssociateIamInstanceProfileCommand,
  AttachNetworkInterfaceCommand,
  AttachVolumeCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateNetworkInterfaceCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVolumeCommand,
  CreateVpcCommand,
  DescribeIamInstanceProfileAssociationsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupRulesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Instance,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  type IAMClient,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isolateInstance, TRACKED_CONNECTION_CAVEAT } from '../../src/runbooks/isolate-instance.ts';
import { releaseInstance } from '../../src/runbooks/release-instance.ts';
import type { Block } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, adminIam, randomAccountId } from '../support/aws-fixtures.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import { type FaultProxy, startFaultProxy, wavesOf } from '../support/fault-proxy.ts';
import { assertIamMatchesCalls } from '../support/iam-usage.ts';
import { adminEc2 } from '../support/network-fixtures.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const exec = promisify(execFile);

/** An instance as the tests build it. */
interface TestInstance {
  instanceId: string;
  vpcId: string;
  subnetId: string;
  /** Each ENI's groups, sorted. */
  original: Map<string, string[]>;
  webGroupId: string;
  adminGroupId: string;
  /** Tagged `quell-quarantine=<vpc>` by an attacker, but with an allow-all inbound rule. */
  attackerGroupId: string;
  profileArn: string;
  volumeIds: string[];
}

let seq = 0;

/**
 * A VPC with two application groups (with rules) and an attacker's allow-all group tagged as a quell
 * quarantine; an instance on both application groups with an instance profile, a second ENI on the web
 * group and a second EBS volume.
 */
async function createTestInstance(ec2: EC2Client, iam: IAMClient): Promise<TestInstance> {
  const n = (seq++ % 200) + 20;
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: `10.${n}.0.0/16` }))).Vpc?.VpcId ?? '';
  const subnetId =
    (
      await ec2.send(
        new CreateSubnetCommand({
          VpcId: vpcId,
          CidrBlock: `10.${n}.1.0/24`,
          AvailabilityZone: 'us-east-1a',
        }),
      )
    ).Subnet?.SubnetId ?? '';
  const group = async (name: string, tags: { Key: string; Value: string }[] = []) =>
    (
      await ec2.send(
        new CreateSecurityGroupCommand({
          VpcId: vpcId,
          GroupName: name,
          Description: name,
          ...(tags.length ? { TagSpecifications: [{ ResourceType: 'security-group', Tags: tags }] } : {}),
        }),
      )
    ).GroupId ?? '';
  const webGroupId = await group(`web-${n}`);
  const adminGroupId = await group(`admin-${n}`);
  const attackerGroupId = await group(`quell-quarantine-fake-${n}`, [
    { Key: 'quell-quarantine', Value: vpcId },
  ]);
  const allow = async (groupId: string, protocol: string, port: number | undefined, cidr: string) =>
    ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: groupId,
        IpPermissions: [
          {
            IpProtocol: protocol,
            ...(port !== undefined ? { FromPort: port, ToPort: port } : {}),
            IpRanges: [{ CidrIp: cidr }],
          },
        ],
      }),
    );
  await allow(webGroupId, 'tcp', 443, '0.0.0.0/0');
  await allow(adminGroupId, 'tcp', 22, '10.0.0.0/8');
  await allow(attackerGroupId, '-1', undefined, '0.0.0.0/0');

  const role = `app-role-${n}-${Date.now()}`;
  await iam.send(
    new CreateRoleCommand({
      RoleName: role,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  const profile = await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: role }));
  await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: role, RoleName: role }));
  const profileArn = profile.InstanceProfile?.Arn ?? '';

  const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images?.[0]?.ImageId;
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      MinCount: 1,
      MaxCount: 1,
      // The groups on the primary ENI, not on the instance: moto shows an attached ENI's groups joined with
      // the instance's launch groups, so groups given here would never leave the ENI in moto (in EC2,
      // ModifyNetworkInterfaceAttribute replaces them either way).
      NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: subnetId, Groups: [webGroupId, adminGroupId] }],
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'payments-api-1' }] }],
    }),
  );
  const instanceId = run.Instances?.[0]?.InstanceId ?? '';
  await ec2.send(
    new AssociateIamInstanceProfileCommand({
      InstanceId: instanceId,
      IamInstanceProfile: { Arn: profileArn },
    }),
  );
  const eni = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: subnetId, Groups: [webGroupId] }));
  await ec2.send(
    new AttachNetworkInterfaceCommand({
      InstanceId: instanceId,
      NetworkInterfaceId: eni.NetworkInterface?.NetworkInterfaceId,
      DeviceIndex: 1,
    }),
  );
  const volume = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 8 }));
  await ec2.send(
    new AttachVolumeCommand({ InstanceId: instanceId, VolumeId: volume.VolumeId, Device: '/dev/sdf' }),
  );

  const instance = await describe_(ec2, instanceId);
  return {
    instanceId,
    vpcId,
    subnetId,
    original: eniGroups(instance),
    webGroupId,
    adminGroupId,
    attackerGroupId,
    profileArn,
    volumeIds: (instance?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.VolumeId ?? '').sort(),
  };
}

async function describe_(ec2: EC2Client, instanceId: string): Promise<Instance | undefined> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations?.[0]?.Instances?.[0];
}

function eniGroups(instance: Instance | undefined): Map<string, string[]> {
  return new Map(
    (instance?.NetworkInterfaces ?? []).map((n) => [
      n.NetworkInterfaceId ?? '',
      (n.Groups ?? []).map((g) => g.GroupId ?? '').sort(),
    ]),
  );
}

async function profileOf(ec2: EC2Client, instanceId: string): Promise<string | undefined> {
  const out = await ec2.send(
    new DescribeIamInstanceProfileAssociationsCommand({
      Filters: [{ Name: 'instance-id', Values: [instanceId] }],
    }),
  );
  return out.IamInstanceProfileAssociations?.find((a) => a.State === 'associated')?.IamInstanceProfile?.Arn;
}

describe('isolate-instance and release-instance from Slack to EC2 and back', () => {
  let t: TestQuell;
  let ec2: EC2Client;
  let iam: IAMClient;
  let proxy: FaultProxy;
  const accountId = randomAccountId();
  const runs: RunRecord[] = [];

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    iam = await adminIam(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url; // quell's clients (STS and EC2) go through the proxy
    t = await startTestQuell({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    process.env.AWS_ENDPOINT_URL = inject('motoUrl');
    ec2?.destroy();
    iam?.destroy();
  });

  const cardOf = (run: RunRecord): SlackCall | undefined =>
    t.slack
      .callsOf('chat.postMessage')
      .find((c) => c.body.channel === INCIDENT && JSON.stringify(c.body.blocks).includes(run.id));
  const lastUpdate = (run: RunRecord): SlackCall | undefined =>
    t.slack
      .callsOf('chat.update')
      .filter((c) => c.body.ts === run.messageTs)
      .at(-1);
  const buttonsOf = (call: SlackCall | undefined) =>
    ((call?.body.blocks ?? []) as Block[])
      .filter((b) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string }[]);
  const thread = (run: RunRecord) =>
    t.slack
      .callsOf('chat.postMessage')
      .filter((c) => c.body.thread_ts === run.messageTs)
      .map((c) => String(c.body.text));
  const changes = (from: number) =>
    proxy.requests
      .slice(from)
      .filter((r) => !/^(Describe|Get|AssumeRole)/.test(r.action))
      .map((r) => r.action);

  async function undoRequestOf(parentId: string): Promise<RunRecord> {
    for (let i = 0; i < 400; i++) {
      const [undo] = await t.quell.store.listRuns({ parentRunId: parentId, limit: 1 });
      if (undo && undo.state !== 'planning') return undo;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('no undo request appeared');
  }

  it('evidence first, then every ENI on a group with no rules, no profile, tagged, stopped; two approvers; Undo puts it all back', async () => {
    const vm = await createTestInstance(ec2, iam);
    expect(vm.original.size).toBe(2);
    expect(vm.volumeIds.length).toBeGreaterThanOrEqual(2);
    await t.command(
      `isolate-instance ${vm.instanceId} stop=true reason="beaconing to a known C2"`,
      'U0LEAD3',
    );
    const run = await waitForRunOf(t.quell, 'U0LEAD3', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    expect(run.requiredApprovals).toBe(2);
    runs.push(run);
    await t.settle();

    // The card: the instance, each ENI and its groups, the profile, the volumes, the caveat, the attacker's group.
    const blocks = JSON.stringify(cardOf(run)?.body.blocks);
    for (const text of [
      vm.instanceId,
      ...vm.original.keys(),
      vm.webGroupId,
      vm.adminGroupId,
      vm.profileArn,
      ...vm.volumeIds,
      'payments-api-1',
      'beaconing to a known C2',
      'ec2:CreateSnapshot',
      'ec2:StopInstances',
      'Security group connection tracking',
      'stop=true',
      `NOT a quarantine: ${vm.attackerGroupId}`,
    ]) {
      expect(blocks).toContain(text);
    }
    expect(TRACKED_CONNECTION_CAVEAT).toContain('network ACL');
    expect(blocks).toContain('Approvals:* 0/2');

    // The requester cannot approve; one approver is not enough; nothing has changed in EC2.
    const beforeApprovals = proxy.requests.length;
    await t.click('quell_approve', run.id, 'U0LEAD3');
    await t.settle();
    expect(
      t.slack.responses.some((r) => String(r.body.text).includes('cannot approve or deny your own request')),
    ).toBe(true);
    await t.click('quell_approve', run.id, 'U0LEAD1');
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.state).toBe('awaiting_approval');
    expect(changes(beforeApprovals)).toEqual([]);
    expect(eniGroups(await describe_(ec2, vm.instanceId))).toEqual(vm.original);

    // The approving click: counted from here to the final card; the proxy forwards requests in waves (one
    // wave = one round trip: requests sent together share a wave).
    proxy.waveSettleMs = 250;
    const fromClick = proxy.requests.length;
    await t.click('quell_approve', run.id, 'U0LEAD2');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
    await t.slack.waitFor(() => JSON.stringify(lastUpdate(done)?.body.blocks ?? '').includes('Succeeded'));
    const afterClick = proxy.requests.slice(fromClick);
    proxy.waveSettleMs = 0;
    expect(done.state, JSON.stringify(done.result)).toBe('succeeded');
    await t.settle();
    console.log(
      `isolate-instance after the approving click: ${afterClick.length} AWS requests, ${wavesOf(afterClick)} round trips (${afterClick.map((r) => r.action).join(', ')})`,
    );

    // Evidence came first: every snapshot and the console output finished before the first change started.
    const evidenceCalls = afterClick.filter(
      (r) => r.action === 'CreateSnapshot' || r.action === 'GetConsoleOutput',
    );
    const changeCalls = afterClick.filter((r) =>
      /^(CreateSecurityGroup|RevokeSecurityGroupEgress|ModifyNetworkInterfaceAttribute|DisassociateIamInstanceProfile|CreateTags|StopInstances)$/.test(
        r.action,
      ),
    );
    expect(evidenceCalls.filter((r) => r.action === 'CreateSnapshot')).toHaveLength(vm.volumeIds.length);
    expect(changeCalls.length).toBeGreaterThan(0);
    // In an earlier wave (round trip) than the first change, and answered before it was sent.
    expect(Math.max(...evidenceCalls.map((r) => r.wave))).toBeLessThan(
      Math.min(...changeCalls.map((r) => r.wave)),
    );
    expect(Math.max(...evidenceCalls.map((r) => r.end))).toBeLessThanOrEqual(
      Math.min(...changeCalls.map((r) => r.start)),
    );

    // moto: every ENI on one quell-created group that has no rules at all — not the attacker's tagged group.
    const isolated = eniGroups(await describe_(ec2, vm.instanceId));
    const quarantineIds = new Set([...isolated.values()].flat());
    expect(quarantineIds.size).toBe(1);
    const [quarantineId] = [...quarantineIds];
    expect(quarantineId).not.toBe(vm.attackerGroupId);
    for (const groups of isolated.values()) expect(groups).toEqual([quarantineId]);
    const rules = await ec2.send(
      new DescribeSecurityGroupRulesCommand({
        Filters: [{ Name: 'group-id', Values: [quarantineId ?? ''] }],
      }),
    );
    expect(rules.SecurityGroupRules ?? []).toEqual([]);
    const quarantine = (await ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [quarantineId ?? ''] })))
      .SecurityGroups?.[0];
    expect(quarantine?.VpcId).toBe(vm.vpcId);
    expect(quarantine?.Tags).toEqual(expect.arrayContaining([{ Key: 'quell-run-id', Value: run.id }]));
    expect(await profileOf(ec2, vm.instanceId)).toBeUndefined();
    const after = await describe_(ec2, vm.instanceId);
    expect(after?.Tags).toEqual(expect.arrayContaining([{ Key: 'quell-isolated', Value: run.id }]));
    expect(['stopping', 'stopped']).toContain(after?.State?.Name);

    // Snapshots of every attached volume, tagged with the run and quell-evidence=true.
    const snapshots = await ec2.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [
          { Name: 'tag:quell-run-id', Values: [run.id] },
          { Name: 'tag:quell-evidence', Values: ['true'] },
        ],
      }),
    );
    expect((snapshots.Snapshots ?? []).map((s) => s.VolumeId).sort()).toEqual(vm.volumeIds);

    // The evidence file in the run's thread, and its SHA-256 in the audit chain.
    const file = t.slack.files.find((f) => f.filename === `quell-evidence-${vm.instanceId}-${run.id}.json`);
    if (!file) throw new Error(`no evidence file among ${t.slack.files.map((f) => f.filename).join(', ')}`);
    expect(file.threadTs).toBe(done.messageTs);
    const sha256 = createHash('sha256').update(file.content, 'utf8').digest('hex');
    const finished = (await t.quell.store.listAudit({ runId: run.id })).find(
      (e) => e.type === 'execute.finished',
    );
    const recorded = (finished?.data as { data?: { evidence?: { sha256?: string; bytes?: number } } }).data
      ?.evidence;
    expect(recorded?.sha256).toBe(sha256);
    expect(recorded?.bytes).toBe(Buffer.byteLength(file.content));
    const evidence = JSON.parse(file.content) as {
      instance: Instance;
      networkInterfaces: { NetworkInterfaceId: string }[];
      securityGroups: { GroupId: string; IpPermissions: { FromPort?: number }[] }[];
      instanceProfile: { IamInstanceProfile: { Arn: string } };
      tags: { Key: string; Value: string }[];
      consoleOutput: { text: string; bytes: number };
      snapshots: { volumeId: string; snapshotId: string }[];
      problems: string[];
    };
    expect(evidence.instance.InstanceId).toBe(vm.instanceId);
    expect(evidence.instance.State?.Name).toBe('running'); // captured before the stop
    expect(evidence.networkInterfaces.map((n) => n.NetworkInterfaceId).sort()).toEqual(
      [...vm.original.keys()].sort(),
    );
    expect(evidence.securityGroups.map((g) => g.GroupId).sort()).toEqual(
      [vm.adminGroupId, vm.webGroupId].sort(),
    );
    expect(evidence.securityGroups.find((g) => g.GroupId === vm.webGroupId)?.IpPermissions[0]?.FromPort).toBe(
      443,
    );
    expect(evidence.instanceProfile.IamInstanceProfile.Arn).toBe(vm.profileArn);
    expect(evidence.tags).toEqual(expect.arrayContaining([{ Key: 'Name', Value: 'payments-api-1' }]));
    expect(evidence.consoleOutput.bytes).toBeGreaterThan(0);
    expect(evidence.consoleOutput.text).toContain('Linux version'); // moto's sample console, base64-decoded
    expect(evidence.snapshots.map((s) => s.volumeId).sort()).toEqual(vm.volumeIds);
    expect(evidence.problems).toEqual([]);
    expect(thread(done).some((text) => text.startsWith(`Done: Isolated ${vm.instanceId}`))).toBe(true);
    expect(buttonsOf(lastUpdate(done)).map((b) => b.action_id)).toEqual(['quell_undo']);

    // Undo from the card: two approvers again; every ENI, the profile and the running state back; group gone.
    await t.click('quell_undo', run.id, 'U0LEAD3');
    const undo = await undoRequestOf(run.id);
    runs.push(undo);
    expect(undo.state).toBe('awaiting_approval');
    expect(undo.requiredApprovals).toBe(2);
    await t.click('quell_approve', undo.id, 'U0LEAD1');
    await t.settle();
    await t.click('quell_approve', undo.id, 'U0LEAD2');
    const undone = await waitForRunState(t.quell, undo.id, ['succeeded', 'partial', 'failed']);
    expect(undone.state, JSON.stringify(undone.result)).toBe('succeeded');
    const released = await describe_(ec2, vm.instanceId);
    expect(eniGroups(released)).toEqual(vm.original);
    expect(await profileOf(ec2, vm.instanceId)).toBe(vm.profileArn);
    expect(['pending', 'running']).toContain(released?.State?.Name);
    expect(released?.Tags?.some((tag) => tag.Key === 'quell-isolated')).toBe(false);
    const left = await ec2.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vm.vpcId] }] }),
    );
    expect(left.SecurityGroups?.some((g) => g.GroupId === quarantineId)).toBe(false);
    expect(left.SecurityGroups?.some((g) => g.GroupId === vm.attackerGroupId)).toBe(true); // not quell's to delete

    await t.settle();
    const verify = await exec(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', t.dbUrl]);
    expect(verify.stdout).toMatch(/audit chain ok: \d+ entries/);
  });

  it('release-instance needs as many approvals as the Undo, and restores from the ledger', async () => {
    const vm = await createTestInstance(ec2, iam);
    await t.command(`isolate-instance ${vm.instanceId}`, 'U0RESP2');
    const run = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
    runs.push(run);
    await t.click('quell_approve', run.id, 'U0LEAD1');
    await t.settle();
    await t.click('quell_approve', run.id, 'U0LEAD2');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
    expect(done.state, JSON.stringify(done.result)).toBe('succeeded');
    expect(await profileOf(ec2, vm.instanceId)).toBeUndefined();
    expect((await describe_(ec2, vm.instanceId))?.State?.Name).toBe('running'); // no stop=true
    await t.settle();

    await t.command(`release-instance ${vm.instanceId} reason="forensics done"`, 'U0RESP2');
    const release = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
    runs.push(release);
    expect(release.state).toBe('awaiting_approval');
    expect(release.requiredApprovals).toBe(2);
    await t.click('quell_approve', release.id, 'U0LEAD1');
    await t.settle();
    expect((await t.quell.store.getRun(release.id))?.state).toBe('awaiting_approval');
    expect(eniGroups(await describe_(ec2, vm.instanceId))).not.toEqual(vm.original);
    await t.click('quell_approve', release.id, 'U0LEAD3');
    const released = await waitForRunState(t.quell, release.id, ['succeeded', 'partial', 'failed']);
    expect(released.state, JSON.stringify(released.result)).toBe('succeeded');
    expect(eniGroups(await describe_(ec2, vm.instanceId))).toEqual(vm.original);
    expect(await profileOf(ec2, vm.instanceId)).toBe(vm.profileArn);

    // Released already: a second release has nothing to do, and says so.
    await t.command(`release-instance ${vm.instanceId}`, 'U0RESP2');
    const again = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
    expect(again.state).toBe('plan_failed');
    await t.settle();
  });

  it('reuses an earlier run’s quarantine group that still has no rules, and keeps it while another instance uses it', async () => {
    const first = await createTestInstance(ec2, iam);
    const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images?.[0]?.ImageId;
    const launched = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        MinCount: 1,
        MaxCount: 1,
        NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: first.subnetId, Groups: [first.webGroupId] }],
      }),
    );
    const secondId = launched.Instances?.[0]?.InstanceId ?? '';
    const secondOriginal = eniGroups(await describe_(ec2, secondId));

    const isolate = async (instanceId: string) => {
      await t.command(`isolate-instance ${instanceId}`, 'U0RESP3');
      const run = await waitForRunOf(t.quell, 'U0RESP3', ['awaiting_approval', 'plan_failed']);
      expect(run.state).toBe('awaiting_approval');
      runs.push(run);
      await t.click('quell_approve', run.id, 'U0LEAD1');
      await t.settle();
      proxy.waveSettleMs = 250;
      const from = proxy.requests.length;
      await t.click('quell_approve', run.id, 'U0LEAD2');
      const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
      const requests = proxy.requests.slice(from);
      proxy.waveSettleMs = 0;
      expect(done.state, JSON.stringify(done.result)).toBe('succeeded');
      await t.settle();
      return { run, requests };
    };
    await isolate(first.instanceId);
    const [quarantineId] = [...eniGroups(await describe_(ec2, first.instanceId)).values()].flat();
    const second = await isolate(secondId);
    // The second isolation found the first run's group by its tag and judged it by its rules: reused as is.
    expect([...eniGroups(await describe_(ec2, secondId)).values()].flat()).toEqual([quarantineId]);
    expect(second.requests.map((r) => r.action)).not.toContain('CreateSecurityGroup');
    console.log(
      `isolate-instance with a reused quarantine group: ${second.requests.length} AWS requests, ${wavesOf(second.requests)} round trips (${second.requests.map((r) => r.action).join(', ')})`,
    );
    expect(wavesOf(second.requests)).toBe(4);

    // Releasing the first keeps the group (the second instance is on it) and says so; releasing the second deletes it.
    const release = async (instanceId: string) => {
      await t.command(`release-instance ${instanceId}`, 'U0RESP3');
      const run = await waitForRunOf(t.quell, 'U0RESP3', ['awaiting_approval', 'plan_failed']);
      expect(run.state).toBe('awaiting_approval');
      runs.push(run);
      await t.click('quell_approve', run.id, 'U0LEAD1');
      await t.settle();
      await t.click('quell_approve', run.id, 'U0LEAD2');
      const done = await waitForRunState(t.quell, run.id, ['succeeded', 'partial', 'failed']);
      expect(done.state, JSON.stringify(done.result)).toBe('succeeded');
      await t.settle();
      return done;
    };
    const firstRelease = await release(first.instanceId);
    expect(JSON.stringify(firstRelease.plan)).toContain(`Quarantine group ${quarantineId} is kept`);
    expect(eniGroups(await describe_(ec2, first.instanceId))).toEqual(first.original);
    const groups = async () =>
      (
        await ec2.send(
          new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [first.vpcId] }] }),
        )
      ).SecurityGroups ?? [];
    expect((await groups()).some((g) => g.GroupId === quarantineId)).toBe(true);
    await release(secondId);
    expect(eniGroups(await describe_(ec2, secondId))).toEqual(secondOriginal);
    expect((await groups()).some((g) => g.GroupId === quarantineId)).toBe(false);
  });

  it('calls exactly the IAM actions each runbook declares (from the audit log)', async () => {
    const entries = await t.quell.store.listAudit();
    const all = await Promise.all(runs.map(async (r) => (await t.quell.store.getRun(r.id)) ?? r));
    assertIamMatchesCalls(
      isolateInstance,
      entries,
      all.filter((r) => r.runbook === 'isolate-instance'),
      { implied: ['iam:PassRole'] },
    );
    assertIamMatchesCalls(
      releaseInstance,
      entries,
      all.filter((r) => r.runbook === 'release-instance' && r.state === 'succeeded'),
      // Nothing was stopped or tagged by another run here: release-instance's own run only had these to do.
      { implied: ['iam:PassRole', 'ec2:StartInstances'] },
    );
  });

  it('refuses hostile or malformed input in the acknowledgement: no run, no AWS call', async () => {
    const before = (await t.quell.store.listAudit()).length;
    const runsBefore = (await t.quell.store.listRuns({ limit: 100 })).length;
    const requestsBefore = proxy.requests.length;
    let refused = 0;
    const texts = [
      'isolate-instance i-XYZ',
      'isolate-instance "prod; rm -rf /"',
      'isolate-instance i-0abc1234 account="prod; rm -rf /"',
      'isolate-instance i-0abc1234 stop=yes',
      'isolate-instance i-0abc12345',
      'isolate-instance i-0ABC1234',
      'isolate-instance i-0abc1234 i-0abc5678',
      'isolate-instance <!channel> <@U0LEAD1>',
      'release-instance i-XYZ',
      'release-instance i-0abc1234 stop=true',
    ];
    for (const text of texts) {
      const res = await t.command(text, 'U0FUZZ');
      expect(res.status).toBe(200);
      expect(res.json?.response_type).toBe('ephemeral');
      expect(String(res.json?.text), text).toContain('That did not run');
      expect(String(res.json?.text)).not.toMatch(/<!channel>|<@U0LEAD1>/);
      refused++;
    }
    await t.settle();
    expect(refused).toBe(texts.length);
    expect((await t.quell.store.listRuns({ limit: 100 })).length).toBe(runsBefore);
    expect(proxy.requests.length).toBe(requestsBefore);
    const after = (await t.quell.store.listAudit()).slice(before);
    expect(after.filter((e) => e.type.startsWith('aws.') || e.type === 'command.received')).toEqual([]);
  });
});
