/**
 * Loads the bot's own Slack secrets from Secrets Manager at start, for `*_SECRET_ARN` variables. This is
 * the only `GetSecretValue` quell makes; runbooks never read secret values.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { assertSecretShape, type SecretName, type SecretSource } from '../config.ts';
import { SecretMissingError } from '../errors.ts';

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
