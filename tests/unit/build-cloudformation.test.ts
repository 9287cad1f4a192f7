/** The CloudFormation template of quell's roles: parameters instead of account-specific values. */
import { describe, expect, it } from 'vitest';
import { buildRoleTemplate, roleNameOf } from '../../src/aws/build-cloudformation.ts';
import { buildPermissionsPolicy } from '../../src/aws/build-iam-policies.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

type Role = { Properties: Record<string, unknown> };

describe('buildRoleTemplate', () => {
  const template = buildRoleTemplate(RUNBOOKS, {
    principalArn: 'arn:aws:iam::123456789012:role/quell-bot',
    externalId: 'acme-quell',
    readRoleName: 'sec-quell-read',
  }) as {
    Parameters: Record<string, { Default?: string }>;
    Conditions: Record<string, unknown>;
    Resources: { QuellReadRole: Role; QuellRespondRole: Role };
    Outputs: Record<string, unknown>;
  };

  it('takes the principal, the external id and the role names as parameters with the config as defaults', () => {
    expect(template.Parameters.QuellPrincipalArn?.Default).toBe('arn:aws:iam::123456789012:role/quell-bot');
    expect(template.Parameters.ExternalId?.Default).toBe('acme-quell');
    expect(template.Parameters.ReadRoleName?.Default).toBe('sec-quell-read');
    expect(template.Parameters.RespondRoleName?.Default).toBe('quell-respond');
    expect(JSON.stringify(template)).not.toMatch(/arn:aws:iam::\d{12}:role\/quell-(read|respond)/);
  });

  it('gives each role its least-privilege policy and the trust with an external id only when one is set', () => {
    for (const [name, tier] of [
      ['QuellReadRole', 'read'],
      ['QuellRespondRole', 'respond'],
    ] as const) {
      const props = template.Resources[name].Properties;
      expect(props.Policies).toEqual([
        { PolicyName: `quell-${tier}`, PolicyDocument: buildPermissionsPolicy(RUNBOOKS, tier) },
      ]);
      const trust = props.AssumeRolePolicyDocument as {
        Statement: { Principal: unknown; Condition: Record<string, unknown> }[];
      };
      expect(trust.Statement[0]?.Principal).toEqual({ AWS: { Ref: 'QuellPrincipalArn' } });
      expect(trust.Statement[0]?.Condition.StringEquals).toEqual({
        'Fn::If': ['HasExternalId', { 'sts:ExternalId': { Ref: 'ExternalId' } }, { Ref: 'AWS::NoValue' }],
      });
      expect(trust.Statement[0]?.Condition['ForAllValues:StringEquals']).toEqual({
        'aws:TagKeys': ['quell-run-id', 'quell-runbook', 'quell-requester'],
      });
    }
    expect(template.Conditions.HasExternalId).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ExternalId' }, ''] }],
    });
    expect(Object.keys(template.Outputs)).toEqual(['ReadRoleArn', 'RespondRoleArn']);
  });

  it('names roles by the last part of their ARN', () => {
    expect(roleNameOf('arn:aws:iam::111111111111:role/team/quell-read')).toBe('quell-read');
  });
});
