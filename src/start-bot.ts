/**
 * Starts the bot from QUELL_CONFIG and the environment (what `npm start` and `quell start` run). Problems
 * with the configuration file and missing secrets are reported together, with what to set and where.
 */
import { existsSync } from 'node:fs';
import { createQuell } from './app.ts';
import { loadSecrets } from './aws/load-secrets.ts';
import { type Config, loadConfigFile, resolveSecretSources, SECRET_HELP } from './config.ts';
import { QuellError } from './errors.ts';
import { createLogger, type Logger } from './logger.ts';

/** Where the configuration is read from: QUELL_CONFIG, else ./quell.yaml, else the bundled example. */
export function configPath(env: NodeJS.ProcessEnv): { path: string; example: boolean } {
  if (env.QUELL_CONFIG) return { path: env.QUELL_CONFIG, example: false };
  if (existsSync('quell.yaml')) return { path: 'quell.yaml', example: false };
  return { path: new URL('../quell.example.yaml', import.meta.url).pathname, example: true };
}

/**
 * Whether `./run start` opens the local console instead of the bot: no Slack token of any kind, no
 * QUELL_CONFIG, no ./quell.yaml, and NODE_ENV is not production. With any of them quell starts (or
 * fails closed) as the bot, so a deployment that lost its tokens never turns into a console.
 */
export function wantsConsole(env: NodeJS.ProcessEnv): boolean {
  if (env.NODE_ENV === 'production') return false;
  if (env.QUELL_CONFIG || existsSync('quell.yaml')) return false;
  return !Object.keys(SECRET_HELP).some((name) => env[name]?.trim() || env[`${name}_SECRET_ARN`]?.trim());
}

/** Starts quell; resolves once it is listening, and stops it on SIGINT/SIGTERM. */
export async function startBot(
  env: NodeJS.ProcessEnv = process.env,
  log: Logger = createLogger(),
): Promise<void> {
  if (wantsConsole(env)) {
    // The console (and the AWS SDK clients its rehearsal world seeds moto with) loads only when used.
    const { startConsole } = await import('./console/start-console.ts');
    const running = await startConsole(env, log);
    stopOnSignals(() => running.stop(), log);
    return;
  }
  const where = configPath(env);
  const problems: string[] = [];
  let config: Config | undefined;
  try {
    config = loadConfigFile(where.path);
  } catch (error) {
    problems.push(error instanceof QuellError ? error.message : String(error));
  }
  let sources: ReturnType<typeof resolveSecretSources> = [];
  try {
    sources = resolveSecretSources(config?.slack.mode ?? 'socket', env);
  } catch (error) {
    problems.push(error instanceof QuellError ? error.message : String(error));
  }
  if (problems.length > 0 || !config) {
    process.stderr.write(`${problems.join('\n\n')}\n`);
    process.exitCode = 1;
    return;
  }
  if (where.example) {
    log.warn(
      { config: where.path },
      'no quell.yaml and no QUELL_CONFIG: using quell.example.yaml, which allows no channel. Copy it to quell.yaml and fill in your accounts and channels.',
    );
  }
  const secrets = await loadSecrets(sources);
  const botToken = secrets.SLACK_BOT_TOKEN;
  if (!botToken) throw new Error('unreachable: the bot token was resolved above');
  const quell = await createQuell({
    config,
    secrets: { botToken, appToken: secrets.SLACK_APP_TOKEN, signingSecret: secrets.SLACK_SIGNING_SECRET },
    log,
    slackApiUrl: env.SLACK_API_URL,
    port: env.PORT ? Number(env.PORT) : 3000,
  });
  await quell.start();
  stopOnSignals(() => quell.stop(), log);
}

/** Stops on the first SIGINT or SIGTERM, then exits (1 when stopping failed). */
function stopOnSignals(stopAll: () => Promise<void>, log: Logger): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing runs in flight');
    stopAll().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
