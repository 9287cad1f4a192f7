/**
 * revoke-role-sessions' input and policy documents: the role ARN is parsed strictly (partition, 12-digit
 * account, path, name), a service-linked role is refused by its ARN, a name needs `account=`; the deny
 * is added to a permission set's one inline policy without losing its other statements.
 */
import { describe, expect, it } from 'vitest';
import { buildSessionPolicy } from '../../src/aws/build-session-policy.ts';
import { InputInvalidError, PlanRefusedError } from '../../src/errors.ts';
import { type AnyRunbook, type Plan, parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import {
  cutoffOf,
  mergeRevokeStatement,
  parseRoleArn,
  revokeRolePolicy,
  revokeRoleSessions,
} from '../../src/runbooks/revoke-role-sessions.ts';
import { type EvaluatedRequest, verdictOf } from '../support/iam-evaluator.ts';

const parse = (positional: string[], options: Record<string, string> = {}) =>
  parseRunbookInput(revokeRoleSessions, { positional, options });

describe('the role ARN', () => {
  it('is split into partition, account, path and name', () => {
    expect(parseRoleArn('arn:aws-us-gov:iam::123456789012:role/a/b/deploy')).toMatchObject({
      partition: 'aws-us-gov',
      accountId: '123456789012',
      path: '/a/b/',
      name: 'deploy',
    });
    expect(parseRoleArn('arn:aws:iam::123456789012:role/deploy')?.path).toBe('/');
  });

  it('refuses anything else', () => {
    for (const text of [
      'arn:aws:iam::12345678901:role/deploy',
      'arn:aws:iam::123456789012:user/deploy',
      'arn:aws-iso:iam::123456789012:role/deploy',
      'arn:aws:iam::123456789012:role/deploy;rm',
      'arn:aws:iam::123456789012:role//deploy',
      `arn:aws:iam::123456789012:role/${'a'.repeat(65)}`,
      'arn:aws:iam::123456789012:role/de ploy',
      'arn:aws:iam:us-east-1:123456789012:role/deploy',
      42,
    ]) {
      expect(parseRoleArn(text), String(text)).toBeUndefined();
    }
  });
});

describe('the input', () => {
  it('takes an ARN, or a name with account=', () => {
    expect(parse(['arn:aws:iam::123456789012:role/app/deploy'])).toMatchObject({
      roleName: 'deploy',
      arnAccountId: '123456789012',
      arnPath: '/app/',
    });
    expect(parse(['deploy'], { account: 'prod' })).toMatchObject({
      roleName: 'deploy',
      arnAccountId: null,
      account: 'prod',
    });
  });

  it('refuses a name without account=, a service-linked role, and unknown options', () => {
    expect(() => parse(['deploy'])).toThrow(/needs `account=`/);
    expect(() =>
      parse([
        'arn:aws:iam::123456789012:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport',
      ]),
    ).toThrow(/service-linked role/);
    expect(() => parse(['deploy'], { account: 'prod', region: 'us-east-1' })).toThrow(InputInvalidError);
  });
});

describe('the policy documents', () => {
  const before = new Date('2026-11-23T12:08:42.107Z');

  it('denies everything for sessions issued before the cutoff', () => {
    expect(JSON.parse(revokeRolePolicy(before))).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'QuellRevokeOlderSessions',
          Effect: 'Deny',
          Action: '*',
          Resource: '*',
          Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-11-23T12:08:42.107Z' } },
        },
      ],
    });
    expect(cutoffOf(revokeRolePolicy(before))).toBe('2026-11-23T12:08:42.107Z');
  });

  it("adds the deny to a permission set's inline policy, replacing an earlier quell deny only", () => {
    const prior = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'Keep', Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
    });
    const once = mergeRevokeStatement(prior, new Date('2026-01-01T00:00:00Z'));
    const twice = JSON.parse(mergeRevokeStatement(once, before)) as { Statement: { Sid: string }[] };
    expect(twice.Statement.map((s) => s.Sid)).toEqual(['Keep', 'QuellRevokeOlderSessions']);
    expect(cutoffOf(JSON.stringify(twice))).toBe('2026-11-23T12:08:42.107Z');
    expect(() => mergeRevokeStatement('{not json', before)).toThrow(PlanRefusedError);
  });
});

describe("revoke-role-sessions' session policy (attack: use a revocation session on another role)", () => {
  const target = { partition: 'aws', accountId: '111111111111', region: 'us-east-1' };
  const roleArn = 'arn:aws:iam::111111111111:role/app/deploy';
  const plan = {
    data: { mode: 'iam', accountId: '111111111111', roleName: 'deploy', roleArn, identityCenter: null },
  } as unknown as Plan;
  const iamRegion = { 'aws:RequestedRegion': 'us-east-1' };

  it('writes the deny on the planned role only', () => {
    const grants = (revokeRoleSessions as AnyRunbook).sessionGrants?.(plan, target) ?? [];
    const policy = buildSessionPolicy(grants);
    const ok = (r: EvaluatedRequest) => verdictOf(policy, r) === 'allow';
    expect(ok({ action: 'iam:PutRolePolicy', resource: roleArn, context: iamRegion })).toBe(true);
    const tried: EvaluatedRequest[] = [
      {
        action: 'iam:PutRolePolicy',
        resource: 'arn:aws:iam::111111111111:role/quell-respond',
        context: iamRegion,
      },
      {
        action: 'iam:PutRolePolicy',
        resource: 'arn:aws:iam::222222222222:role/app/deploy',
        context: iamRegion,
      },
      { action: 'iam:DeleteRolePolicy', resource: roleArn, context: iamRegion },
      { action: 'iam:PutUserPolicy', resource: 'arn:aws:iam::111111111111:user/alice', context: iamRegion },
      { action: 'iam:UpdateAssumeRolePolicy', resource: roleArn, context: iamRegion },
    ];
    expect({ attempts: tried.length, accepted: tried.filter(ok).length }).toEqual({
      attempts: 5,
      accepted: 0,
    });
  });

  it("lets the undo delete only that role's policy", () => {
    const undo = (revokeRoleSessions as AnyRunbook).undo;
    if (undo === 'irreversible') throw new Error('revoke-role-sessions has an undo');
    const undoPlan = {
      data: {
        mode: 'iam',
        accountId: '111111111111',
        roleName: 'deploy',
        action: 'delete',
        identityCenter: null,
      },
    } as unknown as Plan;
    const policy = buildSessionPolicy(undo.sessionGrants?.(undoPlan, target) ?? []);
    const ok = (r: EvaluatedRequest) => verdictOf(policy, r) === 'allow';
    expect(ok({ action: 'iam:DeleteRolePolicy', resource: roleArn, context: iamRegion })).toBe(true);
    expect(
      ok({
        action: 'iam:DeleteRolePolicy',
        resource: 'arn:aws:iam::111111111111:role/other',
        context: iamRegion,
      }),
    ).toBe(false);
    expect(ok({ action: 'iam:PutRolePolicy', resource: roleArn, context: iamRegion })).toBe(false);
  });
});
