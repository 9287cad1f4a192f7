/**
 * The `quell` command line: `start` (the bot), `run` (break-glass: a runbook from the terminal when
 * Slack is down), `audit verify` (recompute the hash chain and check it against the signed checkpoints),
 * `audit show` (one run's entries), `audit export` (the chain as JSON lines to S3),
 * `iam-policy` (the least-privilege roles generated from the runbooks, also as a CloudFormation
 * template), `config check`.
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { buildRoleTemplate, roleNameOf } from '../aws/build-cloudformation.ts';
import {
  buildAuditAnchorStatement,
  buildAuditVerifierPolicy,
  buildBotPolicy,
  buildPermissionsPolicy,
  buildTrustPolicy,
  rolePolicyOptionsOf,
} from '../aws/build-iam-policies.ts';
import { type Config, loadConfigFile } from '../config.ts';
import { QuellError } from '../errors.ts';
import { assertConfigNamesKnownRunbooks } from '../runbooks/engine/prepare-command.ts';
import { RUNBOOKS } from '../runbooks/registry.ts';
import { configPath, startBot } from '../start-bot.ts';
import { exportAudit } from './export-audit.ts';
import { exportCaseFile } from './export-case.ts';
import { runBreakGlass } from './run-break-glass.ts';
import { showAudit } from './show-audit.ts';
import { verifyAudit } from './verify-audit.ts';

const USAGE = `usage: quell <command>

  start                         start the bot (config from QUELL_CONFIG, secrets from the environment)
  run <runbook> [args…] [--as NAME] [--yes]
                                break-glass: plan, confirm and run a runbook from the terminal (Slack's
                                grammar; no approval, a review is owed); \`quell run --help\` for more
  audit verify [--db URL]       recompute the audit hash chain and check it against the signed checkpoints
                                (audit.checkpoints); exit 1 and name the first entry after the last good one
  audit export --bucket NAME [--prefix P] [--from-seq N] [--chunk N] [--region R] [--db URL]
                                write the chain as JSON lines to S3 for a SIEM (each line with its hash)
  audit show --run ID [--db URL] [--json]
                                one run's audit entries in order, after verifying the chain
  case <run-id> [--db URL] [--out DIR]
                                the case file of a run's thread (its runs, decisions, AWS calls with
                                request ids, evidence hashes, audit entries): Markdown + JSON in DIR
  iam-policy [--principal ARN] [--format json|cloudformation]
                                print the read/respond role policies, their trust policy and the bot's own
                                policy; or a CloudFormation template of both roles (deployable as a StackSet)
  config check                  validate the configuration file and list every problem
`;

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function runCli(
  argv: string[],
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  const [command, sub, ...rest] = argv;
  try {
    if (command === 'start') {
      await startBot();
      return process.exitCode === 1 ? 1 : 0;
    }
    if (command === 'audit' && sub === 'verify') {
      // With --db the configuration is optional (the report then says no checkpoints were checked).
      if (rest.includes('--db')) {
        const { config, problem } = readConfigWithProblem();
        return await verifyAudit(rest, config, problem, out);
      }
      return await verifyAudit(rest, loadConfigFile(configPath(process.env).path), undefined, out);
    }
    if (command === 'audit' && sub === 'export')
      return await exportAudit(rest, readConfigQuietly(), out, (t) => {
        process.stderr.write(t);
      });
    if (command === 'audit' && sub === 'show')
      return await showAudit(rest, readConfigQuietly(), terminalIo(out));
    if (command === 'run') {
      const config = loadConfigFile(configPath(process.env).path);
      return await runBreakGlass(
        [sub, ...rest].filter((a): a is string => a !== undefined),
        config,
        terminalIo(out),
      );
    }
    if (command === 'case')
      return await exportCaseFile(
        [sub, ...rest].filter((a): a is string => a !== undefined),
        readConfigQuietly(),
        terminalIo(out),
      );
    if (command === 'iam-policy')
      return iamPolicy(
        [sub, ...rest].filter((a): a is string => a !== undefined),
        out,
      );
    if (command === 'config' && sub === 'check') {
      const { path } = configPath(process.env);
      assertConfigNamesKnownRunbooks(loadConfigFile(path), RUNBOOKS);
      out(`${path}: valid\n`);
      return 0;
    }
    out(USAGE);
    return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  } catch (error) {
    process.stderr.write(`${error instanceof QuellError ? error.message : String(error)}\n`);
    return 1;
  }
}

/** The terminal for `run` and `audit show`: stdout through `out`, stderr, and a y/N prompt on a TTY. */
function terminalIo(out: (text: string) => void) {
  return {
    out,
    err: (text: string) => {
      process.stderr.write(text);
    },
    isTty: process.stdin.isTTY === true,
    async ask(question: string) {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}

/** The configuration when it can be read (`audit show` can do without it, given --db). */
function readConfigQuietly(): Config | undefined {
  try {
    return loadConfigFile(configPath(process.env).path);
  } catch {
    return undefined;
  }
}

/** This deployment's configuration (not the bundled example), or why there is none (one line). */
function readConfigWithProblem(): { config?: Config; problem?: string } {
  const where = configPath(process.env);
  if (where.example) return { problem: 'no quell.yaml and no QUELL_CONFIG' };
  try {
    return { config: loadConfigFile(where.path) };
  } catch (error) {
    return {
      problem: error instanceof QuellError ? error.message.split('\n')[0] : `${where.path} cannot be read`,
    };
  }
}

/** The configuration for iam-policy, saying on stderr when it is the example or cannot be read. */
function readConfig(): Config | undefined {
  const where = configPath(process.env);
  try {
    const config = loadConfigFile(where.path);
    if (where.example)
      process.stderr.write(`note: no quell.yaml or QUELL_CONFIG; role ARNs come from ${where.path}\n`);
    return config;
  } catch (error) {
    process.stderr.write(
      `note: ${where.path} could not be read (${error instanceof QuellError ? error.message.split('\n')[0] : 'error'}); printing policies without account-specific ARNs\n`,
    );
    return undefined;
  }
}

function iamPolicy(args: string[], out: (text: string) => void): number {
  const { values } = parseArgs({
    args,
    options: { principal: { type: 'string' }, format: { type: 'string', default: 'json' } },
  });
  if (values.format !== 'json' && values.format !== 'cloudformation') {
    process.stderr.write(`--format is json or cloudformation, not ${values.format}\n`);
    return 2;
  }
  const config = readConfig();
  if (values.format === 'cloudformation') {
    // Role names from the configuration when every account uses the same ones (a StackSet deploys one name).
    const names = (tier: 'read' | 'respond') => [
      ...new Set(config?.accounts.map((a) => roleNameOf(a.roles[tier])) ?? []),
    ];
    const [read] = names('read');
    const [respond] = names('respond');
    const template = buildRoleTemplate(RUNBOOKS, {
      principalArn: values.principal,
      externalId: config?.aws.externalId,
      ...(names('read').length === 1 && read ? { readRoleName: read } : {}),
      ...(names('respond').length === 1 && respond ? { respondRoleName: respond } : {}),
      maxSessionSeconds: Math.max(3600, config?.aws.sessionSeconds ?? 0),
      ...rolePolicyOptionsOf(config),
    });
    out(`${JSON.stringify(template, null, 2)}\n`);
    return 0;
  }
  const principal = values.principal ?? 'arn:aws:iam::<BOT_ACCOUNT_ID>:role/<quell-bot-role>';
  const roles = config?.accounts.flatMap((a) => [a.roles.read, a.roles.respond]) ?? [];
  const anchor = config?.audit.checkpoints;
  // The configured regions and break-glass operators narrow both roles (docs/iam.md).
  const { regions, operatorNames } = rolePolicyOptionsOf(config);
  const document = {
    readRole: {
      permissions: buildPermissionsPolicy(RUNBOOKS, 'read', { regions }),
      trust: buildTrustPolicy(principal, config?.aws.externalId, { operatorNames }),
    },
    respondRole: {
      permissions: buildPermissionsPolicy(RUNBOOKS, 'respond', { regions }),
      trust: buildTrustPolicy(principal, config?.aws.externalId, { operatorNames }),
    },
    botPrincipal: {
      permissions: buildBotPolicy(
        roles,
        [
          'SLACK_BOT_TOKEN_SECRET_ARN',
          'SLACK_APP_TOKEN_SECRET_ARN',
          'SLACK_SIGNING_SECRET_SECRET_ARN',
          'PGPASSWORD_SECRET_ARN',
        ].flatMap((name) => process.env[name] ?? []),
        anchor ? { settings: anchor, region: config?.aws.region ?? 'us-east-1' } : undefined,
        config?.findings,
        config?.evidence,
      ),
    },
    ...(anchor
      ? {
          // A role of its own for the checkpoints (e.g. in a log-archive account): what that role needs.
          ...(anchor.roleArn
            ? {
                auditCheckpointRole: {
                  permissions: {
                    Version: '2012-10-17',
                    Statement: [buildAuditAnchorStatement(anchor, config?.aws.region ?? 'us-east-1')],
                  },
                },
              }
            : {}),
          // For whoever runs `quell audit verify` (an auditor need not be able to write anything).
          auditVerifier: { permissions: buildAuditVerifierPolicy(anchor, config?.aws.region ?? 'us-east-1') },
        }
      : {}),
  };
  out(`${JSON.stringify(document, null, 2)}\n`);
  return 0;
}
