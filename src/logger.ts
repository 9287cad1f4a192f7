/**
 * JSON logging (pino) with redaction. Tokens, signing secrets and AWS credentials are removed by key
 * wherever they appear in a log object, and `scrubSecrets` removes token-shaped text from strings (error
 * messages can quote a token back at us).
 */
import { randomBytes } from 'node:crypto';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

const SECRET_KEYS = [
  'token',
  'botToken',
  'appToken',
  'signingSecret',
  'clientSecret',
  'authorization',
  'Authorization',
  'credentials',
  'AccessKeyId',
  'SecretAccessKey',
  'secretAccessKey',
  'SessionToken',
  'sessionToken',
  'SecretString',
  'SecretBinary',
  'password',
];

/** pino redaction paths: each secret key at the top level and up to three levels down. */
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

/** Creates the process logger. `destination` lets tests capture every line. */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.QUELL_LOG_LEVEL ?? 'info';
  return pino(
    {
      level,
      base: { service: 'quell' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
    },
    options.destination,
  );
}

// xoxb-/xoxp-/xapp- Slack tokens, AWS secret-key-shaped 40-character strings and session tokens.
const SECRET_PATTERNS: RegExp[] = [
  /\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{8,}/g,
  /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/g,
  /\b(?:FwoGZXIvYXdz|IQoJb3JpZ2luX2Vj)[A-Za-z0-9/+=]{20,}/g,
];

/** Replaces token- and credential-shaped substrings with `[redacted]`. */
export function scrubSecrets(text: string): string {
  return SECRET_PATTERNS.reduce((acc, pattern) => acc.replace(pattern, '[redacted]'), text);
}

/** Serialises an error for the log: code, name, scrubbed message and stack, and the cause chain. */
export function serializeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: scrubSecrets(String(error)) };
  const out: Record<string, unknown> = {
    name: error.name,
    message: scrubSecrets(error.message),
    stack: error.stack ? scrubSecrets(error.stack) : undefined,
  };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  const meta = (error as { $metadata?: { requestId?: string; httpStatusCode?: number } }).$metadata;
  if (meta) out.aws = { requestId: meta.requestId, httpStatusCode: meta.httpStatusCode };
  if (error.cause !== undefined && depth < 3) out.cause = serializeError(error.cause, depth + 1);
  return out;
}

/** A short reference shown to the user and written on the matching log line. */
export function createErrorRef(): string {
  return `ref-${randomBytes(4).toString('hex')}`;
}
