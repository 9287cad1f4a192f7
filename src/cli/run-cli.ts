/**
 * The `quell` command line: `start` (the bot), `run` (break-glass: a runbook from the terminal when
 * Slack is down), `audit verify` (recompute the hash chain) and `audit show` (one run's entries),
 * `iam-policy` (the least-privilege roles generated from the runbooks, also as a CloudFormation
 * template), `config check`.
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { verifyAuditChain } from '../audit/chain.ts';
import { buildRoleTemplate, roleNameOf } from '../aws/build-cloudformation.ts';
import { buildBotPolicy, buildPermissionsPolicy, buildTrustPolicy } from '../aws/build-iam-policies.ts';
import { type Config, loadConfigFile } from '../config.ts';
import { QuellError } from '../errors.ts';
import { assertConfigNamesKnownRunbooks } from '../runbooks/engine/prepare-command.ts';
import { RUNBOOKS } from '../runbooks/registry.ts';
import { configPath, startBot } from '../start-bot.ts';
import { openExistingStore, redactDatabaseUrl } from '../store/open-store.ts';
import { runBreakGlass } from './run-break-glass.ts';
import { showAudit } from './show-audit.ts';

const USAGE = `usage: quell <command>

  start                         start the bot (config from QUELL_CONFIG, secrets from the environment)
  run <runbook> [args…] [--as NAME] [--yes]
                                break-glass: plan, confirm and run a runbook from the terminal (Slack's
                                grammar; no approval, a review is owed); \`quell run --help\` for more
  audit verify [--db URL]       recompute the audit hash chain; exit 1 and name the first bad entry
  audit show --run ID [--db URL] [--json]
                                one run's audit entries in order, after verifying the chain
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
    if (command === 'audit' && sub === 'verify') return await auditVerify(rest, out);
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

async function auditVerify(args: string[], out: (text: string) => void): Promise<number> {
  const { values } = parseArgs({ args, options: { db: { type: 'string' } } });
  const url = values.db ?? loadConfigFile(configPath(process.env).path).storage.url;
  // Verifying must not create (and report as fine) an empty database at a mistyped location.
  let store: Awaited<ReturnType<typeof openExistingStore>>;
  try {
    store = await openExistingStore(url);
  } catch (error) {
    out(`cannot open the audit log at ${redactDatabaseUrl(url)}: ${(error as Error).message}\n`);
    return 1;
  }
  try {
    let entries: Awaited<ReturnType<typeof store.listAudit>>;
    try {
      entries = await store.listAudit();
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      out(
        `cannot read the audit log at ${redactDatabaseUrl(url)}: ${cause instanceof Error ? cause.message : String(error)}\n`,
      );
      return 1;
    }
    const verdict = verifyAuditChain(entries);
    if (verdict.ok) {
      out(`audit chain ok: ${verdict.entries} entries, head ${verdict.head}\n`);
      return 0;
    }
    out(`audit chain BROKEN at entry #${verdict.badSeq}: ${verdict.reason}\n`);
    return 1;
  } finally {
    await store.close();
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
    });
    out(`${JSON.stringify(template, null, 2)}\n`);
    return 0;
  }
  const principal = values.principal ?? 'arn:aws:iam::<BOT_ACCOUNT_ID>:role/<quell-bot-role>';
  const roles = config?.accounts.flatMap((a) => [a.roles.read, a.roles.respond]) ?? [];
  const document = {
    readRole: {
      permissions: buildPermissionsPolicy(RUNBOOKS, 'read'),
      trust: buildTrustPolicy(principal, config?.aws.externalId),
    },
    respondRole: {
      permissions: buildPermissionsPolicy(RUNBOOKS, 'respond'),
      trust: buildTrustPolicy(principal, config?.aws.externalId),
    },
    botPrincipal: {
      permissions: buildBotPolicy(
        roles,
        [
          'SLACK_BOT_TOKEN_SECRET_ARN',
          'SLACK_APP_TOKEN_SECRET_ARN',
          'SLACK_SIGNING_SECRET_SECRET_ARN',
        ].flatMap((name) => process.env[name] ?? []),
      ),
    },
  };
  out(`${JSON.stringify(document, null, 2)}\n`);
  return 0;
}
