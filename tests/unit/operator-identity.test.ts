/**
 * The break-glass operator's name comes from the ARN STS GetCallerIdentity returns, and
 * `approvals.identities` maps people to such ARNs: exact ARNs only, never a pattern or a typed name.
 */
import { describe, expect, it } from 'vitest';
import { operatorOf } from '../../src/aws/operator-identity.ts';
import { parseConfig } from '../../src/config.ts';
import { ConfigInvalidError } from '../../src/errors.ts';

const ACCOUNT = `accounts:
  - alias: prod
    id: "111111111111"
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
`;

describe('operatorOf', () => {
  it('names IAM users, role sessions and federated users by the name AWS records', () => {
    expect(operatorOf('arn:aws:iam::111111111111:user/alice')).toEqual({
      arn: 'arn:aws:iam::111111111111:user/alice',
      name: 'alice',
    });
    expect(operatorOf('arn:aws:iam::111111111111:user/responders/oncall/erin').name).toBe('erin');
    expect(
      operatorOf('arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Responder_0123abcd/alice@example.com')
        .name,
    ).toBe('alice@example.com');
    expect(operatorOf('arn:aws-us-gov:sts::111111111111:federated-user/bob').name).toBe('bob');
  });

  it('refuses the account root, unknown shapes and Slack-shaped names: 5 attempts, 0 operators', () => {
    const attempts = [
      'arn:aws:iam::111111111111:root',
      'arn:aws:iam::111111111111:role/quell-respond',
      'not-an-arn',
      'arn:aws:sts::111111111111:assumed-role/oncall/U0LEAD1',
      'arn:aws:iam::111111111111:user/S0SECLEADS',
    ];
    const accepted = attempts.filter((arn) => {
      try {
        operatorOf(arn);
        return true;
      } catch {
        return false;
      }
    });
    expect(accepted).toEqual([]);
    expect(() => operatorOf(attempts[0] ?? '')).toThrow(/account root/);
    expect(() => operatorOf(attempts[3] ?? '')).toThrow(/looks like a Slack id/);
  });
});

describe('approvals.identities', () => {
  it('maps Slack user ids to exact caller ARNs', () => {
    const config = parseConfig(`${ACCOUNT}approvals:
  identities:
    U0ONCALL: ["arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Responder_0123abcd/erin@example.com"]
    U0LEAD1: [arn:aws:iam::111111111111:user/alice]
`);
    expect(config.approvals.identities.U0LEAD1).toEqual(['arn:aws:iam::111111111111:user/alice']);
    expect(parseConfig(ACCOUNT).approvals.identities).toEqual({});
  });

  it('refuses patterns, role ARNs, group ids and empty lists, each by path', () => {
    let problems: string[] = [];
    try {
      parseConfig(`${ACCOUNT}approvals:
  identities:
    U0ONCALL: ["arn:aws:sts::111111111111:assumed-role/oncall/*"]
    U0LEAD1: [arn:aws:iam::111111111111:role/admin]
    S0SECLEADS: [arn:aws:iam::111111111111:user/alice]
    U0LEAD2: []
`);
    } catch (error) {
      if (error instanceof ConfigInvalidError) problems = error.problems;
    }
    expect(problems.join('\n')).toMatch(
      /approvals\.identities\.U0ONCALL\.0 \(line \d+\): must be the exact ARN/,
    );
    expect(problems.join('\n')).toMatch(
      /approvals\.identities\.U0LEAD1\.0 \(line \d+\): must be the exact ARN/,
    );
    expect(problems.join('\n')).toMatch(/approvals\.identities\.S0SECLEADS/);
    expect(problems.join('\n')).toMatch(/approvals\.identities\.U0LEAD2/);
  });
});
