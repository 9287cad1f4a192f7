/**
 * The console's rehearsal world: a moto_server of its own on a free loopback port (stopped on exit), a
 * rehearsal account with quell's read and respond roles, and a small seeded incident — a leaked access
 * key with CloudTrail activity, a VPC with a security group open to the internet and an instance in it,
 * a database secret. Nothing here can reach a real AWS account: every client is pointed at moto and
 * signs with throwaway credentials.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { RehearsalTrailEvent } from './rehearsal-cloudtrail.ts';

/** The rehearsal account (moto keeps accounts apart by id). */
export const REHEARSAL_ACCOUNT_ID = '111111111111';
export const REHEARSAL_REGIONS = ['us-east-1', 'eu-west-1'] as const;
/** Throwaway credentials moto accepts; real ones are never sent to the rehearsal. */
export const REHEARSAL_CREDENTIALS = { accessKeyId: 'rehearsal', secretAccessKey: 'rehearsal' };

/** What was seeded, for the console's first screen and the game days. */
export interface RehearsalSeed {
  leakedKeyId: string;
  leakedUser: string;
  vpcId: string;
  /** The VPC's first subnet (game days start their instances there). */
  subnetId: string;
  openGroupId: string;
  instanceId: string;
  secretName: string;
}

/** Where moto_server is on PATH, if anywhere. */
export function findMotoServer(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'moto_server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A running moto_server. */
export interface MotoServer {
  url: string;
  stop(): Promise<void>;
}

/** Starts moto_server on a free port of 127.0.0.1 and waits (bounded) until it answers. */
export async function startMotoServer(binary: string): Promise<MotoServer> {
  const port = await freeLoopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      if (res.status < 500) return { url, stop };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`moto_server did not answer on ${url} within 15 s: ${stderr}`);
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** An account entry for the rehearsal config. */
export function rehearsalAccount() {
  return {
    alias: 'prod',
    id: REHEARSAL_ACCOUNT_ID,
    regions: [...REHEARSAL_REGIONS],
    roles: {
      read: `arn:aws:iam::${REHEARSAL_ACCOUNT_ID}:role/quell-read`,
      respond: `arn:aws:iam::${REHEARSAL_ACCOUNT_ID}:role/quell-respond`,
    },
  };
}

/** Administrator credentials for the rehearsal account in moto. */
export async function adminCredentials(motoUrl: string) {
  const sts = new STSClient({ region: 'us-east-1', endpoint: motoUrl, credentials: REHEARSAL_CREDENTIALS });
  try {
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${REHEARSAL_ACCOUNT_ID}:role/rehearsal-admin`,
        RoleSessionName: 'quell-console-seed',
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new Error('moto gave no credentials');
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  } finally {
    sts.destroy();
  }
}

const TRUST_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${REHEARSAL_ACCOUNT_ID}:root` },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
    },
  ],
});

/** Seeds the rehearsal account; returns what was made and the CloudTrail events that go with it. */
export async function seedRehearsal(
  motoUrl: string,
  now: number = Date.now(),
): Promise<{ seed: RehearsalSeed; events: RehearsalTrailEvent[] }> {
  const credentials = await adminCredentials(motoUrl);
  const region = 'us-east-1';
  const iam = new IAMClient({ region, endpoint: motoUrl, credentials });
  const ec2 = new EC2Client({ region, endpoint: motoUrl, credentials });
  const secrets = new SecretsManagerClient({ region, endpoint: motoUrl, credentials });
  try {
    for (const name of ['quell-read', 'quell-respond']) {
      await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST_POLICY }));
    }
    const leakedUser = 'ci-deploy';
    await iam.send(new CreateUserCommand({ UserName: leakedUser }));
    const key = await iam.send(new CreateAccessKeyCommand({ UserName: leakedUser }));
    const leakedKeyId = key.AccessKey?.AccessKeyId;
    if (!leakedKeyId) throw new Error('moto gave no access key');
    await iam.send(new CreateUserCommand({ UserName: 'alice' }));
    await iam.send(new CreateAccessKeyCommand({ UserName: 'alice' }));

    const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }))).Vpc?.VpcId ?? '';
    const subnetIds: string[] = [];
    for (const cidr of ['10.42.1.0/24', '10.42.2.0/24']) {
      const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: cidr }));
      subnetIds.push(subnet.Subnet?.SubnetId ?? '');
    }
    const openGroupId =
      (
        await ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: 'web-debug',
            Description: 'opened for debugging, never closed',
            VpcId: vpcId,
          }),
        )
      ).GroupId ?? '';
    await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: openGroupId,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
          { IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
        ],
      }),
    );
    const images = await ec2.send(new DescribeImagesCommand({}));
    const imageId = images.Images?.[0]?.ImageId;
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: imageId,
        MinCount: 1,
        MaxCount: 1,
        SubnetId: subnetIds[0],
      }),
    );
    const instanceId = run.Instances?.[0]?.InstanceId ?? '';
    // The group goes onto the primary network interface, not into RunInstances: moto keeps groups given at
    // launch on the instance as well, where changing the interface's groups later does not remove them.
    await ec2.send(
      new ModifyNetworkInterfaceAttributeCommand({
        NetworkInterfaceId: run.Instances?.[0]?.NetworkInterfaces?.[0]?.NetworkInterfaceId,
        Groups: [openGroupId],
      }),
    );
    const secretName = 'prod/payments-db';
    await secrets.send(
      new CreateSecretCommand({
        Name: secretName,
        Description: 'payments database password (rehearsal)',
        // A made-up value: the rehearsal never holds a real secret, and quell never reads it.
        SecretString: 'rehearsal-not-a-real-password',
      }),
    );
    const seed: RehearsalSeed = {
      leakedKeyId,
      leakedUser,
      vpcId,
      subnetId: subnetIds[0] ?? '',
      openGroupId,
      instanceId,
      secretName,
    };
    return { seed, events: leakedKeyActivity(seed, now) };
  } finally {
    iam.destroy();
    ec2.destroy();
    secrets.destroy();
  }
}

/** What the leaked key did in the hours before the rehearsal starts (the attacker's footprint). */
export function leakedKeyActivity(seed: RehearsalSeed, now: number): RehearsalTrailEvent[] {
  const attacker = { sourceIPAddress: '203.0.113.77', userAgent: 'aws-cli/2.15.0 Python/3.11.6 Linux/6.1' };
  const ci = { sourceIPAddress: '198.51.100.10', userAgent: 'Boto3/1.34.0 Python/3.12.1' };
  const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000);
  const base = { username: seed.leakedUser, accessKeyId: seed.leakedKeyId, region: 'us-east-1' };
  return [
    {
      ...base,
      ...ci,
      eventTime: at(600),
      eventName: 'GetObject',
      eventSource: 's3.amazonaws.com',
      resources: [{ type: 'AWS::S3::Object', name: 'deploy-artifacts/app.zip' }],
    },
    {
      ...base,
      ...attacker,
      eventTime: at(95),
      eventName: 'GetCallerIdentity',
      eventSource: 'sts.amazonaws.com',
      resources: [],
    },
    {
      ...base,
      ...attacker,
      eventTime: at(93),
      eventName: 'ListBuckets',
      eventSource: 's3.amazonaws.com',
      resources: [],
    },
    {
      ...base,
      ...attacker,
      eventTime: at(90),
      eventName: 'ListUsers',
      eventSource: 'iam.amazonaws.com',
      resources: [],
    },
    {
      ...base,
      ...attacker,
      eventTime: at(88),
      eventName: 'CreateUser',
      eventSource: 'iam.amazonaws.com',
      resources: [{ type: 'AWS::IAM::User', name: 'support-backup' }],
      errorCode: 'AccessDenied',
    },
    {
      ...base,
      ...attacker,
      eventTime: at(80),
      eventName: 'GetSecretValue',
      eventSource: 'secretsmanager.amazonaws.com',
      resources: [{ type: 'AWS::SecretsManager::Secret', name: seed.secretName }],
    },
    {
      ...base,
      ...attacker,
      eventTime: at(61),
      eventName: 'AuthorizeSecurityGroupIngress',
      eventSource: 'ec2.amazonaws.com',
      resources: [{ type: 'AWS::EC2::SecurityGroup', name: seed.openGroupId }],
    },
    {
      ...base,
      ...attacker,
      region: 'eu-west-1',
      eventTime: at(45),
      eventName: 'RunInstances',
      eventSource: 'ec2.amazonaws.com',
      resources: [{ type: 'AWS::EC2::Instance', name: 'i-0c0ffee0c0ffee000' }],
      errorCode: 'UnauthorizedOperation',
    },
    {
      ...base,
      ...attacker,
      eventTime: at(12),
      eventName: 'ListAccessKeys',
      eventSource: 'iam.amazonaws.com',
      resources: [],
    },
  ];
}
