/**
 * EC2 and Secrets Manager fixtures in moto, built as an administrator of a random account (assumed-role
 * credentials, as in aws-fixtures.ts). The clients talk to moto directly (not through any proxy a test
 * puts in front of quell), so a test's own set-up never shows up in what it measures.
 */

import {
  CreateNetworkAclCommand,
  CreateNetworkAclEntryCommand,
  CreateNetworkInterfaceCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeNetworkAclsCommand,
  DescribeVpcsCommand,
  EC2Client,
  type NetworkAcl,
  ReplaceNetworkAclAssociationCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { inject } from 'vitest';
import { adminCredentials } from './aws-fixtures.ts';

/** An EC2 client acting as an administrator of `accountId`, straight to moto. */
export async function adminEc2(accountId: string, region = 'us-east-1'): Promise<EC2Client> {
  return new EC2Client({
    region,
    endpoint: inject('motoUrl'),
    credentials: await adminCredentials(accountId),
  });
}

/** A Secrets Manager client acting as an administrator of `accountId`, straight to moto. */
export async function adminSecrets(accountId: string, region = 'us-east-1'): Promise<SecretsManagerClient> {
  return new SecretsManagerClient({
    region,
    endpoint: inject('motoUrl'),
    credentials: await adminCredentials(accountId),
  });
}

/** A VPC as the tests build it. */
export interface TestVpc {
  vpcId: string;
  /** The first two octets of the VPC's /16, for adding subnets (`${cidrBase}.99.0/24`). */
  cidrBase: string;
  subnetIds: string[];
  defaultAclId: string;
  customAclIds: string[];
  /** Which ACL each subnet was put on. */
  original: Map<string, string>;
  instanceId: string;
  extraEniId: string;
}

let vpcSeq = 0;

/**
 * A VPC with `subnets` subnets spread over `customAcls` custom ACLs (each with an allow rule, as real
 * ones have) and the default ACL, one instance in the first subnet and a spare ENI in the second.
 */
export async function createTestVpc(
  ec2: EC2Client,
  options: { subnets: number; customAcls: number },
): Promise<TestVpc> {
  const second = (vpcSeq++ % 200) + 10;
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: `10.${second}.0.0/16` }));
  const vpcId = vpc.Vpc?.VpcId;
  if (!vpcId) throw new Error('moto gave no VPC');
  const subnetIds: string[] = [];
  for (let i = 0; i < options.subnets; i++) {
    const s = await ec2.send(
      new CreateSubnetCommand({
        VpcId: vpcId,
        CidrBlock: `10.${second}.${i}.0/24`,
        AvailabilityZone: 'us-east-1a',
      }),
    );
    if (!s.Subnet?.SubnetId) throw new Error('moto gave no subnet');
    subnetIds.push(s.Subnet.SubnetId);
  }
  const customAclIds: string[] = [];
  for (let i = 0; i < options.customAcls; i++) {
    const acl = await ec2.send(
      new CreateNetworkAclCommand({
        VpcId: vpcId,
        TagSpecifications: [{ ResourceType: 'network-acl', Tags: [{ Key: 'Name', Value: `app-acl-${i}` }] }],
      }),
    );
    const aclId = acl.NetworkAcl?.NetworkAclId;
    if (!aclId) throw new Error('moto gave no ACL');
    for (const egress of [false, true]) {
      await ec2.send(
        new CreateNetworkAclEntryCommand({
          NetworkAclId: aclId,
          RuleNumber: 100,
          Protocol: '6',
          RuleAction: 'allow',
          Egress: egress,
          CidrBlock: '0.0.0.0/0',
          PortRange: { From: 443, To: 443 },
        }),
      );
    }
    customAclIds.push(aclId);
  }
  const acls = await vpcAcls(ec2, vpcId);
  const defaultAclId = acls.find((a) => a.IsDefault)?.NetworkAclId ?? '';
  const original = new Map<string, string>();
  // Round robin over [custom 0, custom 1, …, default]: every kind of previous ACL is represented.
  for (const [i, subnetId] of subnetIds.entries()) {
    const slot = i % (options.customAcls + 1);
    const target = slot < options.customAcls ? customAclIds[slot] : undefined;
    if (target) {
      await ec2.send(
        new ReplaceNetworkAclAssociationCommand({
          AssociationId: await associationOf(ec2, vpcId, subnetId),
          NetworkAclId: target,
        }),
      );
    }
    original.set(subnetId, target ?? defaultAclId);
  }
  const images = await ec2.send(new DescribeImagesCommand({}));
  const imageId = images.Images?.[0]?.ImageId;
  const run = await ec2.send(
    new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1, SubnetId: subnetIds[0] }),
  );
  const eni = await ec2.send(
    new CreateNetworkInterfaceCommand({ SubnetId: subnetIds[1] ?? subnetIds[0], Description: 'spare' }),
  );
  return {
    vpcId,
    cidrBase: `10.${second}`,
    subnetIds,
    defaultAclId,
    customAclIds,
    original,
    instanceId: run.Instances?.[0]?.InstanceId ?? '',
    extraEniId: eni.NetworkInterface?.NetworkInterfaceId ?? '',
  };
}

/** Every ACL of the VPC as moto has it. */
export async function vpcAcls(ec2: EC2Client, vpcId: string): Promise<NetworkAcl[]> {
  const out = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  return out.NetworkAcls ?? [];
}

/** The ACL each subnet of the VPC is on now. */
export async function currentAcls(ec2: EC2Client, vpcId: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const acl of await vpcAcls(ec2, vpcId)) {
    for (const a of acl.Associations ?? []) if (a.SubnetId) map.set(a.SubnetId, acl.NetworkAclId ?? '');
  }
  return map;
}

/** The current association id of a subnet. */
export async function associationOf(ec2: EC2Client, vpcId: string, subnetId: string): Promise<string> {
  for (const acl of await vpcAcls(ec2, vpcId)) {
    const a = acl.Associations?.find((x) => x.SubnetId === subnetId);
    if (a?.NetworkAclAssociationId) return a.NetworkAclAssociationId;
  }
  throw new Error(`no association for ${subnetId}`);
}

/** The account's default VPC in moto. */
export async function defaultVpcId(ec2: EC2Client): Promise<string> {
  const out = await ec2.send(
    new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] }),
  );
  const id = out.Vpcs?.[0]?.VpcId;
  if (!id) throw new Error('moto has no default VPC');
  return id;
}
