/**
 * The `quell` command line: `start` (the bot), `audit verify` (recompute the hash chain), `iam-policy`
 * (the least-privilege roles generated from the runbooks), `config check`.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { verifyAuditChain } from './audit/chain.ts';
import { buildBotPolicy, buildPermissionsPolicy, buildTrustPolicy } from './aws/build-iam-policies.ts';
import { type Config, loadConfigFile } from './config.ts';
import { QuellError } from './errors.ts';
import { assertConfigNamesKnownRunbooks } from './runbooks/engine.ts';
import { RUNBOOKS } from './runbooks/registry.ts';
import { configPath, startBot } from './start-bot.ts';
import { isPostgresUrl, openStore, redactDatabaseUrl } from './store/open-store.ts';

const USAGE = `usage: quell <command>

  start                         start the bot (config from QUELL_CONFIG, secrets from the environment)
  audit verify [--db URL]       recompute the audit hash chain; exit 1 and name the first bad entry
  iam-policy [--principal ARN]  print the read/respond role policies, their trust policy and the bot's own policy
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
  // Verifying must not create (and report as fine) an empty database at a mistyped path.
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : undefined;
  if (file !== undefined && file !== ':memory:' && !existsSync(file)) {
    out(`no audit database at ${file}\n`);
    return 1;
  }
  // Read-only: a PostgreSQL database is never migrated by a verification (a mistyped database name then
  // fails below instead of being turned into an empty, "valid" audit log).
  const store = await openStore(url, { migrate: !isPostgresUrl(url) });
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
  const { values } = parseArgs({ args, options: { principal: { type: 'string' } } });
  const config = readConfig();
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
