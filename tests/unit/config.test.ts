/** Configuration: every problem listed by path and line; missing secrets named with where Slack shows them. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig, resolveSecretSources } from '../../src/config.ts';
import { ConfigInvalidError, SecretMissingError } from '../../src/errors.ts';

const VALID = `
slack:
  command: /quell
  auditChannel: C0AUDIT
accounts:
  - alias: prod
    id: "111111111111"
    regions: [us-east-1]
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
approvals:
  approvers: [U0LEAD1, S0SECLEADS]
  expiresIn: 15m
channels:
  C0INCIDENT: { runbooks: ["*"], accounts: ["*"] }
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'quell.yaml');
  } catch (error) {
    if (error instanceof ConfigInvalidError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration file', () => {
  it('parses a valid file with defaults filled in', () => {
    const config = parseConfig(VALID);
    expect(config.slack.mode).toBe('socket');
    expect(config.aws.sessionSeconds).toBe(900);
    expect(config.approvals.expiresIn).toBe(15 * 60_000);
    expect(config.storage.url).toBe('sqlite:./data/quell.db');
  });

  it('parses the bundled example', () => {
    expect(() => parseConfig(readFileSync('quell.example.yaml', 'utf8'))).not.toThrow();
  });

  it('lists every problem with its path and line', () => {
    const problems = problemsOf(`
slack:
  command: quell
  mode: websocket
accounts:
  - alias: Prod
    id: 11111111111
    roles:
      read: arn:aws:iam::222222222222:role/quell-read
      respond: not-an-arn
approvals:
  approvers: [alice]
  expiresIn: forever
channels:
  general: { runbooks: ["*"], accounts: [staging] }
surprise: true
`);
    const joined = problems.join('\n');
    expect(problems.length).toBeGreaterThanOrEqual(9);
    expect(joined).toMatch(/slack\.command \(line 3\): must be a slash command/);
    expect(joined).toMatch(/slack\.mode \(line 4\)/);
    expect(joined).toMatch(/accounts\.0\.alias \(line 6\)/);
    expect(joined).toMatch(
      /accounts\.0\.id \(line 7\): must be a 12-digit AWS account id \(quote it in YAML\)/,
    );
    expect(joined).toMatch(/accounts\.0\.roles\.respond \(line 10\): must be an IAM role ARN/);
    expect(joined).toMatch(/approvals\.approvers\.0 \(line 12\)/);
    expect(joined).toMatch(/approvals\.expiresIn \(line 13\)/);
    expect(joined).toMatch(/channels\.general/);
    expect(joined).toMatch(/surprise|Unrecognized key/i);
  });

  it('reports YAML syntax errors and duplicate keys with lines', () => {
    expect(problemsOf('accounts: [\n').join()).toMatch(/line \d+/);
    expect(problemsOf('slack:\n  mode: http\nslack:\n  mode: socket\n').join()).toMatch(/line 3/);
  });

  it('refuses a role in another account and duplicate aliases', () => {
    const text = VALID.replace('role/quell-respond', 'role/quell-respond').replace(
      'read: arn:aws:iam::111111111111:role/quell-read',
      'read: arn:aws:iam::999999999999:role/quell-read',
    );
    expect(problemsOf(text).join()).toContain('role must be in account 111111111111');
  });
});

describe('secrets from the environment', () => {
  it('names every missing variable and where Slack shows it (socket mode)', () => {
    try {
      resolveSecretSources('socket', {});
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SecretMissingError);
      const message = (error as Error).message;
      expect(message).toContain('Set SLACK_BOT_TOKEN');
      expect(message).toContain('OAuth & Permissions');
      expect(message).toContain('Set SLACK_APP_TOKEN');
      expect(message).toContain('App-Level Tokens');
      expect(message).toContain('connections:write');
    }
  });

  it('asks for the signing secret in http mode and never prints a malformed value', () => {
    try {
      resolveSecretSources('http', {
        SLACK_BOT_TOKEN: 'xoxb-1-2-abc',
        SLACK_SIGNING_SECRET: 'sup3r-s3cret-value',
      });
      expect.unreachable();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('SLACK_SIGNING_SECRET is set but does not look like');
      expect(message).toContain('Signing Secret');
      expect(message).not.toContain('sup3r-s3cret-value');
    }
  });

  it('accepts values or Secrets Manager ARNs', () => {
    const sources = resolveSecretSources('socket', {
      SLACK_BOT_TOKEN: 'xoxb-1-2-abc',
      SLACK_APP_TOKEN_SECRET_ARN:
        'arn:aws:secretsmanager:us-east-1:111111111111:secret:quell/app-token-AbCdEf',
    });
    expect(sources).toEqual([
      { name: 'SLACK_BOT_TOKEN', value: 'xoxb-1-2-abc' },
      {
        name: 'SLACK_APP_TOKEN',
        secretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:quell/app-token-AbCdEf',
      },
    ]);
  });
});
