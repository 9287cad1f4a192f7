/**
 * Loads quell's own secrets from Secrets Manager, for `*_SECRET_ARN` variables: the Slack secrets once
 * at start, the PostgreSQL password for each new database connection (cached briefly, so a rotated
 * password is picked up without a restart). These are the only `GetSecretValue` calls quell makes;
 * runbooks never read secret values.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { assertSecretShape, type SecretName, type SecretSource } from '../config.ts';
import { SecretMissingError } from '../errors.ts';

/** The Secrets Manager SDK, loaded only when a secret comes from an ARN (docs/benchmarks.md, memory). */
const loadSecretsManager = () => import('@aws-sdk/client-secrets-manager');

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/;

/** Resolves every source to its value. A secret may hold the plain value or JSON `{ "<NAME>": "…" }`. */
export async function loadSecrets(sources: SecretSource[]): Promise<Record<SecretName, string | undefined>> {
  const out: Record<SecretName, string | undefined> = {
    SLACK_BOT_TOKEN: undefined,
    SLACK_APP_TOKEN: undefined,
    SLACK_SIGNING_SECRET: undefined,
  };
  const clients = new Map<string, SecretsManagerClient>();
  try {
    for (const source of sources) {
      if ('value' in source) {
        out[source.name] = source.value;
        continue;
      }
      const { GetSecretValueCommand, SecretsManagerClient } = await loadSecretsManager();
      const region = source.secretArn.split(':')[3] ?? 'us-east-1';
      let client = clients.get(region);
      if (!client) {
        client = new SecretsManagerClient({ region, maxAttempts: 5 });
        clients.set(region, client);
      }
      let text: string | undefined;
      try {
        text = (await client.send(new GetSecretValueCommand({ SecretId: source.secretArn }))).SecretString;
      } catch (cause) {
        throw new SecretMissingError(
          `Could not read ${source.name}_SECRET_ARN (${(cause as Error).name}). Check the ARN and that quell's own role may call secretsmanager:GetSecretValue on it.`,
        );
      }
      const value = extract(text, source.name);
      assertSecretShape(source.name, value);
      out[source.name] = value;
    }
  } finally {
    for (const c of clients.values()) c.destroy();
  }
  return out;
}

function extract(text: string | undefined, name: SecretName): string {
  const trimmed = text?.trim() ?? '';
  if (trimmed.startsWith('{')) {
    try {
      const value = (JSON.parse(trimmed) as Record<string, unknown>)[name];
      if (typeof value === 'string') return value.trim();
    } catch {
      // not JSON: fall through and treat it as the plain value
    }
  }
  return trimmed;
}

/** Options of databasePasswordFrom (tests shorten the cache and move the clock). */
export interface DatabasePasswordOptions {
  /** How long a password read from Secrets Manager is reused before it is read again (default 60 s). */
  refreshMs?: number;
  now?: () => number;
}

/**
 * The PostgreSQL password source for `env`: undefined when `PGPASSWORD` is set or neither variable is
 * (the driver reads PGPASSWORD itself), else a function the driver calls for each new connection that
 * reads `PGPASSWORD_SECRET_ARN`. The secret holds the plain password, or JSON with `PGPASSWORD` or
 * `password` (the shape RDS and Secrets Manager's rotation functions keep). A failed re-read reuses
 * the last password read; a failed first read is a SecretMissingError naming the variable, never the value.
 */
export function databasePasswordFrom(
  env: NodeJS.ProcessEnv,
  options: DatabasePasswordOptions = {},
): (() => Promise<string>) | undefined {
  if (env.PGPASSWORD) return undefined;
  const arn = env.PGPASSWORD_SECRET_ARN?.trim();
  if (!arn) return undefined;
  if (!SECRET_ARN.test(arn))
    throw new SecretMissingError('PGPASSWORD_SECRET_ARN is not a Secrets Manager secret ARN');
  const refreshMs = options.refreshMs ?? 60_000;
  const now = options.now ?? Date.now;
  let cached: { value: string; at: number } | undefined;
  let reading: Promise<string> | undefined;
  const read = async (): Promise<string> => {
    const { GetSecretValueCommand, SecretsManagerClient } = await loadSecretsManager();
    const client = new SecretsManagerClient({ region: arn.split(':')[3] ?? 'us-east-1', maxAttempts: 5 });
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
      const value = extractPassword(out.SecretString);
      if (!value) throw new SecretMissingError('The secret named by PGPASSWORD_SECRET_ARN holds no password');
      cached = { value, at: now() };
      return value;
    } catch (cause) {
      if (cached) return cached.value;
      if (cause instanceof SecretMissingError) throw cause;
      throw new SecretMissingError(
        `Could not read PGPASSWORD_SECRET_ARN (${(cause as Error).name}). Check the ARN and that quell's own role may call secretsmanager:GetSecretValue on it.`,
      );
    } finally {
      client.destroy();
      reading = undefined;
    }
  };
  return () => {
    if (cached && now() - cached.at < refreshMs) return Promise.resolve(cached.value);
    // Connections opened together share one read.
    reading ??= read();
    return reading;
  };
}

function extractPassword(text: string | undefined): string {
  const trimmed = text?.trim() ?? '';
  if (trimmed.startsWith('{')) {
    try {
      const json = JSON.parse(trimmed) as Record<string, unknown>;
      const value = json.PGPASSWORD ?? json.password;
      return typeof value === 'string' ? value : '';
    } catch {
      // not JSON: the plain password
    }
  }
  // A password may start or end with spaces; only a line break left by an editor is dropped.
  return (text ?? '').replace(/\r?\n$/, '');
}
