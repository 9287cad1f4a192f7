/**
 * Fixtures in moto: a random account per test (moto keeps accounts apart, so tests never see each
 * other's users), reached through assumed-role credentials as quell reaches real accounts.
 */

import { randomInt } from 'node:crypto';
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  GetUserPolicyCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUserPoliciesCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { inject } from 'vitest';

/** A random 12-digit account id. */
export function randomAccountId(): string {
  return `${randomInt(2, 9)}${String(randomInt(0, 1e10)).padStart(10, '0')}${randomInt(0, 9)}`;
}

/** An account entry for quell's config. */
export function accountConfig(alias: string, id: string) {
  return {
    alias,
    id,
    regions: ['us-east-1', 'eu-west-1'],
    roles: { read: `arn:aws:iam::${id}:role/quell-read`, respond: `arn:aws:iam::${id}:role/quell-respond` },
  };
}

/**
 * Administrator credentials for `accountId` in moto (moto keeps each account's resources apart). Tests
 * get moto's URL from vitest; benchmarks, which run outside vitest, pass the moto they started.
 */
export async function adminCredentials(accountId: string, motoUrl: string = inject('motoUrl')) {
  const sts = new STSClient({ region: 'us-east-1', endpoint: motoUrl });
  const out = await sts.send(
    new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${accountId}:role/admin`, RoleSessionName: 'test-admin' }),
  );
  sts.destroy();
  const c = out.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new Error('moto gave no credentials');
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

/** An IAM client acting as an administrator of `accountId` in moto. */
export async function adminIam(accountId: string, motoUrl?: string): Promise<IAMClient> {
  const credentials = await (motoUrl ? adminCredentials(accountId, motoUrl) : adminCredentials(accountId));
  return new IAMClient({ region: 'us-east-1', credentials });
}

/** Creates a user with one access key; returns the key id. */
export async function createUserWithKey(
  iam: IAMClient,
  userName: string,
  status: 'Active' | 'Inactive' = 'Active',
): Promise<string> {
  await iam.send(new CreateUserCommand({ UserName: userName }));
  const key = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  const id = key.AccessKey?.AccessKeyId;
  if (!id) throw new Error('moto gave no key');
  if (status === 'Inactive')
    await iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: id, Status: 'Inactive' }));
  return id;
}

/** The key's status as moto has it. */
export async function keyStatus(
  iam: IAMClient,
  userName: string,
  keyId: string,
): Promise<string | undefined> {
  const out = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  return out.AccessKeyMetadata?.find((k) => k.AccessKeyId === keyId)?.Status;
}

/** The decoded inline policy document, or null when the user has no policy of that name. */
export async function inlinePolicy(
  iam: IAMClient,
  userName: string,
  policyName: string,
): Promise<string | null> {
  const names = await iam.send(new ListUserPoliciesCommand({ UserName: userName }));
  if (!names.PolicyNames?.includes(policyName)) return null;
  const out = await iam.send(new GetUserPolicyCommand({ UserName: userName, PolicyName: policyName }));
  const doc = out.PolicyDocument ?? '';
  return doc.startsWith('{') ? doc : decodeURIComponent(doc);
}
