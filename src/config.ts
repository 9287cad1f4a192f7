/**
 * The configuration file (YAML, path in QUELL_CONFIG) and the environment, validated once at start.
 * An invalid file stops the bot with every problem listed by path and line; secrets never live in the
 * file, only in the environment (or in Secrets Manager, named by `*_SECRET_ARN`).
 */
import { readFileSync } from 'node:fs';
import { Cron } from 'croner';
import { isDocument, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { AccountAliasSchema, AwsRegionSchema } from './config-fields.ts';
import { ConfigInvalidError, SecretMissingError } from './errors.ts';
import { RUNBOOKS } from './runbooks/registry.ts';

export { AccountAliasSchema, AwsRegionSchema } from './config-fields.ts';

/** Slack user ids (U…/W…) and user-group ids (S…). */
export const SlackUserIdSchema = z
  .string()
  .regex(/^[UW][A-Z0-9]{2,20}$/, 'must be a Slack user id like U0123ABCD');
export const SlackPrincipalSchema = z
  .string()
  .regex(/^[UWS][A-Z0-9]{2,20}$/, 'must be a Slack user id (U…) or user-group id (S…)');
/** Channel ids: public/private channels (C…/G…) and direct messages (D…). */
export const SlackChannelIdSchema = z
  .string()
  .regex(/^[CGD][A-Z0-9]{2,20}$/, 'must be a Slack channel id like C0123ABCD');
export const AccountIdSchema = z
  .string({
    // An unquoted id is a YAML number (and loses leading zeros): say how to fix it.
    error: (issue) =>
      issue.input === undefined ? 'is required' : 'must be a 12-digit AWS account id (quote it in YAML)',
  })
  .regex(/^\d{12}$/, 'must be a 12-digit AWS account id (quote it in YAML)');
const RoleArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'must be an IAM role ARN');

/** Durations written as `90s`, `15m`, `2h`, `1d`. */
export const DurationSchema = z
  .string()
  .regex(/^\d{1,6}[smhd]$/, 'must be a duration like 15m, 2h or 1d')
  .transform((text) => parseDurationMs(text));

/** Converts `15m`-style text to milliseconds. */
export function parseDurationMs(text: string): number {
  const unit = text.slice(-1);
  const value = Number(text.slice(0, -1));
  const factor = unit === 's' ? 1_000 : unit === 'm' ? 60_000 : unit === 'h' ? 3_600_000 : 86_400_000;
  return value * factor;
}

const BaseAccountSchema = z
  .object({
    alias: AccountAliasSchema,
    id: AccountIdSchema,
    regions: z.array(AwsRegionSchema).min(1).default(['us-east-1']),
    roles: z.object({ read: RoleArnSchema, respond: RoleArnSchema }).strict(),
  })
  .strict()
  .superRefine((account, ctx) => {
    for (const tier of ['read', 'respond'] as const) {
      if (!account.roles[tier].includes(`::${account.id}:`)) {
        ctx.addIssue({
          code: 'custom',
          path: ['roles', tier],
          message: `role must be in account ${account.id}`,
        });
      }
    }
  });

/**
 * The ARN STS GetCallerIdentity returns for a person's AWS credentials: an IAM user
 * (`arn:aws:iam::111111111111:user/alice`), an assumed role's session
 * (`arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Admin_0123abcd/alice@example.com`) or a
 * federated user. Exact ARNs only: a pattern could make one person look like another.
 */
export const AwsIdentityArnSchema = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:(?:iam::\d{12}:user\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]+|sts::\d{12}:(?:assumed-role\/[\w+=,.@-]+\/|federated-user\/)[\w+=,.@-]+)$/,
    'must be the exact ARN `aws sts get-caller-identity` prints: arn:aws:iam::<account>:user/<name>, arn:aws:sts::<account>:assumed-role/<role>/<session> or arn:aws:sts::<account>:federated-user/<name>',
  );

/**
 * A runbook's own settings (declared as `config` in its definition): a field of every account entry,
 * named `key` and validated by the runbook's `schema`, because what a runbook checks against (drift's
 * allowed public ports, say) differs from account to account. The field is optional; the engine hands
 * the account's value to the runbook's runs as `ctx.config`.
 */
export interface ConfigFragment<C = unknown> {
  key: string;
  schema: z.ZodType<C>;
}

/** What the configuration needs of a runbook: its id and its config fragment. */
export interface RunbookWithConfig {
  id: string;
  config?: ConfigFragment | undefined;
}

/** An account entry with the runbooks' fragments as extra fields; two runbooks may not claim one name. */
function accountSchemaFor(runbooks: readonly RunbookWithConfig[]) {
  const fields: Record<string, z.ZodType> = {};
  const owners = new Map<string, string>();
  for (const { id, config } of runbooks) {
    if (!config) continue;
    const taken = config.key in BaseAccountSchema.shape ? 'quell' : owners.get(config.key);
    if (taken) throw new Error(`runbook ${id}: config key "${config.key}" is already used by ${taken}`);
    owners.set(config.key, `runbook ${id}`);
    fields[config.key] = config.schema.optional();
  }
  // The fragments' types are the runbooks' own (see readConfig); the account's type stays quell's.
  return BaseAccountSchema.safeExtend(fields) as unknown as typeof BaseAccountSchema;
}

const AccountSchema = accountSchemaFor(RUNBOOKS);

const RunbookApprovalSchema = z
  .object({
    required: z.number().int().min(0).max(5),
    requesters: z.array(SlackPrincipalSchema).optional(),
  })
  .strict();

/** An account alias, or `*` for every configured account. */
const AccountSelectorSchema = z
  .string()
  .regex(/^(\*|[a-z][a-z0-9-]{0,31})$/, 'must be an account alias or "*"');

const ChannelRuleSchema = z
  .object({
    runbooks: z.array(z.string().regex(/^(\*|[a-z][a-z-]{1,31})$/, 'must be a runbook id or "*"')),
    accounts: z.array(AccountSelectorSchema),
  })
  .strict();

/** IANA time-zone names (`Europe/Berlin`, `UTC`), checked against the runtime's time-zone database. */
export const TimeZoneSchema = z
  .string()
  .refine(isTimeZone, 'must be an IANA time zone like Europe/Berlin, America/New_York or UTC');

/** Whether the runtime knows `name` as an IANA time zone (offsets like `+01:00` are not names). */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+){0,2}$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in the
 * configured `timezone`. Seconds fields and nicknames are refused so every slot is a whole minute.
 */
export const CronScheduleSchema = z.string().superRefine((text, ctx) => {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a cron expression with 5 fields (minute hour day month weekday), like "0 9 * * 1-5"; got ${fields.length}`,
    });
    return;
  }
  try {
    new Cron(text, { paused: true });
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: `is not a valid cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')}`,
    });
  }
});

const ReminderSchema = z
  .object({
    schedule: CronScheduleSchema,
    channel: SlackChannelIdSchema,
    accounts: z.array(AccountSelectorSchema).min(1).default(['*']),
    maxKeyAgeDays: z.number().int().min(1).max(3650).default(90),
    maxUnusedDays: z.number().int().min(1).max(3650).default(45),
  })
  .strict();

/**
 * Where runs and the audit chain live: `sqlite:<path>` for one process, `postgres://…` for several
 * replicas. A PostgreSQL password never goes in the file: it comes from the Secrets Manager secret
 * PGPASSWORD_SECRET_ARN names, or from PGPASSWORD in the environment.
 */
export const StorageUrlSchema = z.string().superRefine((url, ctx) => {
  if (/^sqlite:.+/.test(url)) return;
  if (!/^postgres(?:ql)?:\/\/./i.test(url)) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be sqlite:<path> (or sqlite::memory:), or postgres://user@host:5432/database',
    });
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a valid postgres:// URL' });
    return;
  }
  if (parsed.password || parsed.searchParams.has('password')) {
    // The message never repeats the URL, which holds the password.
    ctx.addIssue({
      code: 'custom',
      message:
        'must not contain the database password (secrets never go in this file): remove it from the URL and set PGPASSWORD_SECRET_ARN (a Secrets Manager secret) or PGPASSWORD in the environment',
    });
  }
});

/**
 * How replicas share work. `count` divides every AWS rate limit between the replicas (each paces at
 * 1/count of it); `heartbeat` is how often a replica marks the runs it works on as alive; a run whose
 * replica has not beaten for `orphanAfter` is taken over by another replica (or handed to an operator).
 */
export const ReplicasSchema = z
  .object({
    count: z.number().int().min(1).max(50).default(1),
    heartbeat: DurationSchema.default(10_000).refine((ms) => ms >= 1_000, { message: 'must be at least 1s' }),
    orphanAfter: DurationSchema.default(60_000),
  })
  .strict()
  .refine((r) => r.orphanAfter >= 2 * r.heartbeat, {
    message: 'orphanAfter must be at least twice the heartbeat (a live replica must never look dead)',
    path: ['orphanAfter'],
  })
  .prefault({});

/** An S3 bucket created with Object Lock (audit checkpoints, evidence). */
const ObjectLockBucketSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    'must be an S3 bucket name (created with Object Lock enabled)',
  );

/** An S3 key prefix (empty, or ending in `/`), defaulting to `example`. */
function keyPrefixSchema(example: string) {
  return z
    .string()
    .regex(/^(?:[A-Za-z0-9!_.*'()-]+\/)*$/, `must be empty or a key prefix ending in /, like ${example}`)
    .default(example);
}

/**
 * Signed audit checkpoints kept outside the database (docs/audit.md): every `every.entries` entries or
 * `every.time` (whichever comes first) the newest entry's sequence number and hash are signed with a KMS
 * key (or, without a KMS key for this, an HMAC key from Secrets Manager) and written to an S3 bucket with
 * Object Lock in compliance mode, retained for `retentionDays`. Absent: no checkpoints, and `quell audit
 * verify` says the chain is unanchored.
 */
export const AuditCheckpointsSchema = z
  .object({
    bucket: ObjectLockBucketSchema,
    prefix: keyPrefixSchema('quell/checkpoints/'),
    /** Names this deployment's chain: it is signed into every checkpoint and is the folder they are kept in. */
    chainId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes')
      .default('quell'),
    /** The bucket's region (default: aws.region). */
    region: AwsRegionSchema.optional(),
    /** Object Lock retention of each checkpoint, in compliance mode: nobody can delete it before then. */
    retentionDays: z.number().int().min(1, 'must be at least 1 day').max(36_500),
    kmsKeyId: z
      .string()
      .regex(
        /^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)\/[\w/-]+|alias\/[\w/-]+|[0-9a-f-]{36}|mrk-[0-9a-f]{32})$/,
        'must be a KMS key id, key ARN or alias of an asymmetric SIGN_VERIFY key',
      )
      .optional(),
    hmacSecretArn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
        'must be a Secrets Manager secret ARN',
      )
      .optional(),
    every: z
      .object({
        entries: z.number().int().min(1).max(1_000_000).optional(),
        time: DurationSchema.refine((ms) => ms >= 10_000, { message: 'must be at least 10s' }).optional(),
      })
      .strict()
      .refine((e) => e.entries !== undefined || e.time !== undefined, {
        message: 'give entries, time or both',
      })
      .default({ entries: 100, time: 300_000 }),
    /** A role to assume for the bucket and key (e.g. in a log-archive account); default: the bot's own credentials. */
    roleArn: RoleArnSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.kmsKeyId === undefined) === (c.hmacSecretArn === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['kmsKeyId'],
        message:
          'give exactly one of kmsKeyId (a KMS signing key) or hmacSecretArn (an HMAC key in Secrets Manager)',
      });
    }
  });
export type AuditCheckpointsConfig = z.infer<typeof AuditCheckpointsSchema>;

/** Severity labels of findings, lowest first (Security Hub's labels; GuardDuty's scores map onto them). */
export const FINDING_SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export type FindingSeverity = (typeof FINDING_SEVERITIES)[number];

/** A standard SQS queue's URL: `https://sqs.<region>.amazonaws.com/<account>/<name>` (or an endpoint's). */
const SqsQueueUrlSchema = z
  .string()
  .regex(
    /^https?:\/\/[a-z0-9.:-]+\/\d{12}\/[A-Za-z0-9_-]{1,80}$/,
    'must be a standard SQS queue URL like https://sqs.us-east-1.amazonaws.com/111111111111/quell-findings',
  );

/**
 * Security findings into a channel (docs/findings.md): quell long-polls `queueUrl`, which an EventBridge
 * rule feeds with GuardDuty and Security Hub findings, and posts each finding of at least `minSeverity`
 * once to `channel`, with buttons that start the matching runbook. Messages it cannot read go to `dlqUrl`
 * (absent: they stay on the queue for its redrive policy).
 */
export const FindingsConfigSchema = z
  .object({
    queueUrl: SqsQueueUrlSchema,
    region: AwsRegionSchema,
    channel: SlackChannelIdSchema,
    minSeverity: z.enum(FINDING_SEVERITIES).default('medium'),
    dlqUrl: SqsQueueUrlSchema.optional(),
    /** How long one ReceiveMessage waits for messages (SQS long polling allows up to 20 s). */
    pollSeconds: z.number().int().min(1).max(20).default(20),
    /** How long a received message stays invisible; a card that could not be posted is retried after it. */
    visibilitySeconds: z.number().int().min(1).max(43_200).default(120),
  })
  .strict();
export type FindingsConfig = z.infer<typeof FindingsConfigSchema>;

/**
 * Where containment evidence and case files are kept besides the incident thread (docs/evidence.md): an
 * S3 bucket created with Object Lock, each object retained in compliance mode for `retentionDays`.
 * Written with the bot's own credentials. Absent: evidence and case files go to the thread only.
 */
export const EvidenceSchema = z
  .object({
    bucket: ObjectLockBucketSchema,
    prefix: keyPrefixSchema('quell/evidence/'),
    /** The bucket's region (default: aws.region). */
    region: AwsRegionSchema.optional(),
    /** Object Lock retention of each object, in compliance mode: nobody can delete it before then. */
    retentionDays: z.number().int().min(1, 'must be at least 1 day').max(36_500),
  })
  .strict();
export type EvidenceConfig = z.infer<typeof EvidenceSchema>;

export const ConfigSchema = z
  .object({
    slack: z
      .object({
        command: z
          .string()
          .regex(/^\/[a-z0-9_-]{1,31}$/, 'must be a slash command like /quell')
          .default('/quell'),
        auditChannel: SlackChannelIdSchema.optional(),
        mode: z.enum(['socket', 'http']).default('socket'),
      })
      .strict()
      .prefault({}),
    aws: z
      .object({
        region: AwsRegionSchema.default('us-east-1'),
        sessionSeconds: z.number().int().min(900).max(3600).default(900),
        externalId: z
          .string()
          .regex(/^[\w+=,.@:/-]{2,1224}$/)
          .optional(),
      })
      .strict()
      .prefault({}),
    accounts: z.array(AccountSchema).min(1, 'configure at least one account'),
    approvals: z
      .object({
        approvers: z.array(SlackPrincipalSchema).default([]),
        expiresIn: DurationSchema.default(15 * 60_000).refine((ms) => ms >= 60_000 && ms <= 86_400_000, {
          message: 'must be between 1m and 24h',
        }),
        runbooks: z.record(z.string().regex(/^[a-z][a-z-]{1,31}$/), RunbookApprovalSchema).default({}),
        breakGlass: z.array(SlackUserIdSchema).default([]),
        /**
         * Each person's AWS identities, by Slack user id: how a break-glass CLI operator (known only by
         * the AWS identity they prove) is matched with per-runbook `requesters` and kept from reviewing
         * their own run (docs/cli.md).
         */
        identities: z.record(SlackUserIdSchema, z.array(AwsIdentityArnSchema).min(1)).default({}),
      })
      .strict()
      .prefault({}),
    channels: z.record(SlackChannelIdSchema, ChannelRuleSchema).default({}),
    /** The time zone cron schedules are read in. */
    timezone: TimeZoneSchema.default('UTC'),
    /** Scheduled credential-age reminders. */
    reminders: z.array(ReminderSchema).default([]),
    storage: z
      .object({
        url: StorageUrlSchema.default('sqlite:./data/quell.db'),
      })
      .strict()
      .prefault({}),
    /** Several replicas sharing one PostgreSQL database (docs/deployment.md). */
    replicas: ReplicasSchema,
    /** Anchoring the audit chain outside the database (docs/audit.md). */
    audit: z.object({ checkpoints: AuditCheckpointsSchema.optional() }).strict().prefault({}),
    /** GuardDuty and Security Hub findings from an SQS queue into a channel (docs/findings.md). */
    findings: FindingsConfigSchema.optional(),
    /** Evidence before containment and case files, kept in S3 with Object Lock (docs/evidence.md). */
    evidence: EvidenceSchema.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Several replicas must share a database: an embedded SQLite file per replica would give each its own
    // approvals and audit chain, and break exactly-once.
    if (config.replicas.count > 1 && config.storage.url.startsWith('sqlite:')) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicas', 'count'],
        message: 'several replicas need storage.url: postgres://… (SQLite is for one process)',
      });
    }
    const seen = new Map<string, number>();
    config.accounts.forEach((account, i) => {
      for (const key of [`alias:${account.alias}`, `id:${account.id}`]) {
        if (seen.has(key)) {
          ctx.addIssue({
            code: 'custom',
            path: ['accounts', i],
            message: `duplicate account ${key.replace(':', ' ')}`,
          });
        }
        seen.set(key, i);
      }
    });
    const aliases = new Set(config.accounts.map((a) => a.alias));
    for (const [channel, rule] of Object.entries(config.channels)) {
      rule.accounts.forEach((alias, i) => {
        if (alias !== '*' && !aliases.has(alias)) {
          ctx.addIssue({
            code: 'custom',
            path: ['channels', channel, 'accounts', i],
            message: `unknown account alias "${alias}"`,
          });
        }
      });
    }
    config.reminders.forEach((reminder, r) => {
      reminder.accounts.forEach((alias, i) => {
        if (alias !== '*' && !aliases.has(alias)) {
          ctx.addIssue({
            code: 'custom',
            path: ['reminders', r, 'accounts', i],
            message: `unknown account alias "${alias}"`,
          });
        }
      });
    });
  });

export type Config = z.infer<typeof ConfigSchema>;

/**
 * The configuration schema for another set of runbooks than the registered ones (ConfigSchema): the same
 * sections and checks, with those runbooks' config fragments in every account.
 */
export function buildConfigSchema(runbooks: readonly RunbookWithConfig[]): typeof ConfigSchema {
  if (runbooks === RUNBOOKS) return ConfigSchema;
  return ConfigSchema.safeExtend({
    accounts: z.array(accountSchemaFor(runbooks)).min(1, 'configure at least one account'),
  });
}
export type AccountConfig = Config['accounts'][number];
export type ReminderConfig = Config['reminders'][number];

/**
 * Parses and validates YAML text against the schema of `runbooks` (default: the registered ones); throws
 * ConfigInvalidError listing every problem with its line.
 */
export function parseConfig(
  text: string,
  source = 'config',
  runbooks: readonly RunbookWithConfig[] = RUNBOOKS,
): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigInvalidError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  const parsed = buildConfigSchema(runbooks).safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.map(String);
    const line = findLine(doc, lineCounter, issue.path);
    return `${path.length > 0 ? path.join('.') : '(top level)'}${line ? ` (line ${line})` : ''}: ${issue.message}`;
  });
  throw new ConfigInvalidError(source, problems);
}

function findLine(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  path: PropertyKey[],
): number | undefined {
  if (!isDocument(doc)) return undefined;
  // Walk up the path until a node exists (a missing key is reported at its parent).
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as (string | number)[], true) as
      | { range?: [number, number, number] }
      | undefined;
    if (node?.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Reads the file at `path` and validates it (against the schema of `runbooks`). */
export function loadConfigFile(path: string, runbooks: readonly RunbookWithConfig[] = RUNBOOKS): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ConfigInvalidError(path, [
      missing
        ? `file not found. Copy quell.example.yaml to ${path} and fill in your accounts, or set QUELL_CONFIG to its path.`
        : `cannot be read: ${(cause as Error).message}`,
    ]);
  }
  return parseConfig(text, path, runbooks);
}

/** Where Slack shows each secret, for the message that asks for it. */
export const SECRET_HELP = {
  SLACK_BOT_TOKEN:
    'the Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app → OAuth & Permissions → "Bot User OAuth Token" (install the app first)',
  SLACK_APP_TOKEN:
    'an app-level token (xapp-…) with the connections:write scope: api.slack.com/apps → your app → Basic Information → App-Level Tokens → Generate Token and Scopes',
  SLACK_SIGNING_SECRET:
    'the Signing Secret: api.slack.com/apps → your app → Basic Information → App Credentials → Signing Secret',
} as const;
export type SecretName = keyof typeof SECRET_HELP;

/** Which secrets the chosen mode needs. */
export function requiredSecrets(mode: Config['slack']['mode']): SecretName[] {
  return mode === 'socket'
    ? ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN']
    : ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET'];
}

/** Where each secret comes from: the value itself or a Secrets Manager ARN to load it from. */
export type SecretSource = { name: SecretName; value: string } | { name: SecretName; secretArn: string };

const SECRET_SHAPES: Record<SecretName, RegExp> = {
  SLACK_BOT_TOKEN: /^xoxb-[A-Za-z0-9-]+$/,
  SLACK_APP_TOKEN: /^xapp-[A-Za-z0-9-]+$/,
  SLACK_SIGNING_SECRET: /^[a-f0-9]{32}$/,
};

/**
 * Finds every secret the mode needs in the environment. Missing ones are reported together, each with
 * the variable to set and where Slack shows the value; a malformed value is named, never printed.
 */
export function resolveSecretSources(mode: Config['slack']['mode'], env: NodeJS.ProcessEnv): SecretSource[] {
  const problems: string[] = [];
  const sources: SecretSource[] = [];
  for (const name of requiredSecrets(mode)) {
    const value = env[name]?.trim();
    const arn = env[`${name}_SECRET_ARN`]?.trim();
    if (value) {
      if (!SECRET_SHAPES[name].test(value))
        problems.push(`${name} is set but does not look like ${SECRET_HELP[name]}`);
      else sources.push({ name, value });
    } else if (arn) {
      if (!/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/.test(arn)) {
        problems.push(`${name}_SECRET_ARN is not a Secrets Manager secret ARN`);
      } else sources.push({ name, secretArn: arn });
    } else {
      problems.push(`Set ${name} (or ${name}_SECRET_ARN) to ${SECRET_HELP[name]}`);
    }
  }
  if (problems.length > 0) {
    throw new SecretMissingError(
      `quell cannot start in ${mode} mode:\n${problems.map((p) => `  - ${p}`).join('\n')}${
        mode === 'socket'
          ? '\n  (or set slack.mode: http in the config to use a public URL and a signing secret instead)'
          : ''
      }`,
    );
  }
  return sources;
}

/** Checks a secret loaded from Secrets Manager has the shape Slack gives it. */
export function assertSecretShape(name: SecretName, value: string): void {
  if (!SECRET_SHAPES[name].test(value)) {
    throw new SecretMissingError(
      `The secret named by ${name}_SECRET_ARN does not look like ${SECRET_HELP[name]}`,
    );
  }
}
