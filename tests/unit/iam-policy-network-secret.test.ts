/**
 * `quell iam-policy` covers the new runbooks: the respond role gets every action isolate-vpc,
 * restore-vpc and rotate-secret call (and those AWS requires without a call of their own), the read role
 * only what their plans read, and no role ever gets secretsmanager:GetSecretValue from a runbook.
 */
import { describe, expect, it } from 'vitest';
import { buildPermissionsPolicy } from '../../src/aws/build-iam-policies.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

// Every action of the runbook in the role: its own statement and those of its `iam.limits`, named after it.
const actionsOf = (tier: 'read' | 'respond', sid: string) =>
  [
    ...new Set(
      buildPermissionsPolicy(RUNBOOKS, tier)
        .Statement.filter((s) => s.Sid === sid || new RegExp(`^${sid}[A-Z]`).test(String(s.Sid)))
        .flatMap((s) => s.Action as string[]),
    ),
  ].sort();

describe('iam-policy for isolate-vpc, restore-vpc and rotate-secret', () => {
  it('gives the respond role every action the runbooks call, and the read role only what plans read', () => {
    expect(actionsOf('respond', 'IsolateVpc')).toEqual([
      'ec2:CreateNetworkAcl',
      'ec2:CreateNetworkAclEntry',
      'ec2:CreateTags',
      'ec2:DeleteNetworkAcl',
      // The evidence before the change.
      'ec2:DescribeFlowLogs',
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeSubnets',
      'ec2:DescribeVpcs',
      'ec2:ReplaceNetworkAclAssociation',
    ]);
    expect(actionsOf('read', 'IsolateVpc')).toEqual([
      'ec2:DescribeInstances',
      'ec2:DescribeNetworkAcls',
      'ec2:DescribeNetworkInterfaces',
      'ec2:DescribeSubnets',
      'ec2:DescribeVpcs',
    ]);
    expect(actionsOf('respond', 'RestoreVpc')).toEqual([
      'ec2:DeleteNetworkAcl',
      'ec2:DescribeNetworkAcls',
      'ec2:ReplaceNetworkAclAssociation',
    ]);
    expect(actionsOf('read', 'RestoreVpc')).toEqual(['ec2:DescribeNetworkAcls']);
    expect(actionsOf('respond', 'RotateSecret')).toEqual([
      'lambda:InvokeFunction',
      'secretsmanager:DescribeSecret',
      'secretsmanager:ListSecretVersionIds',
      'secretsmanager:RotateSecret',
    ]);
    expect(actionsOf('read', 'RotateSecret')).toEqual(['secretsmanager:DescribeSecret']);
  });

  it('never grants GetSecretValue to either role', () => {
    for (const tier of ['read', 'respond'] as const) {
      expect(JSON.stringify(buildPermissionsPolicy(RUNBOOKS, tier))).not.toContain('GetSecretValue');
    }
  });
});
