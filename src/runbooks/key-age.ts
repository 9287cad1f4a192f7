/**
 * key-age (read-only): the IAM credential report of an account, read for access keys that should not
 * exist any more — active keys older than the limit, active keys never used or unused beyond the limit,
 * and users with both keys active. A scheduled credential-age reminder is a run of this runbook too,
 * over the accounts of its `reminders` entry at once (an account that cannot be read is reported, not
 * fatal); its findings, stored with the run, are what the buttons on its message refer to.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { IAMClient } from '@aws-sdk/client-iam';
import { z } from 'zod';
import type { ScopedAws } from '../aws/client-factory.ts';
import { iamRegionFor } from '../aws/partitions.ts';
import type { AccountConfig, Config, ReminderConfig } from '../config.ts';
import { AwsCallFailedError, AwsResourceNotFoundError, asQuellError, ErrorCode } from '../errors.ts';
import type { RunRecord, SnoozeRecord } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  type Outcome,
  type Plan,
  type PlannedCall,
  type RunContext,
} from './define-runbook.ts';
import { type CredentialReportRow, parseCredentialReport } from './parse-credential-report.ts';

/** The IAM SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadIam = () => import('@aws-sdk/client-iam');

const DAY_MS = 86_400_000;

/** IAM lets a report be regenerated only every 4 hours; a report younger than that is reused. */
export const REPORT_FRESH_MS = 4 * 3_600_000;

/** The limits a report is read against (the config's `reminders[].maxKeyAgeDays` / `maxUnusedDays`). */
export type KeyAgeLimits = {
  maxKeyAgeDays: number;
  maxUnusedDays: number;
};

/** The defaults of the config's reminder entries, also used by `/quell key-age`. */
export const DEFAULT_KEY_AGE_LIMITS: KeyAgeLimits = { maxKeyAgeDays: 90, maxUnusedDays: 45 };

const FindingReasonSchema = z.enum(['root-key', 'old', 'unused', 'never-used', 'both-active']);

/** Why a key is reported. */
export type FindingReason = z.infer<typeof FindingReasonSchema>;

/**
 * One reported access key, as stored with the run and read back by the buttons on its message (so it
 * is declared as a schema: what comes back from the store is checked, not cast).
 */
const KeyFindingSchema = z.object({
  accountAlias: z.string(),
  accountId: z.string(),
  userName: z.string(),
  userArn: z.string(),
  /** Null for the root user's keys, and when the key could not be matched to ListAccessKeys. */
  keyId: z.string().nullable(),
  slot: z.number(),
  createdAt: z.string().nullable(),
  ageDays: z.number().nullable(),
  lastUsedAt: z.string().nullable(),
  lastUsedService: z.string().nullable(),
  lastUsedRegion: z.string().nullable(),
  /** Days since the last use, or since creation for a key never used. */
  idleDays: z.number().nullable(),
  reasons: z.array(FindingReasonSchema),
  /** Bigger is worse; findings are listed worst first. */
  severity: z.number(),
  /** The owner's Slack user id, from the IAM user's `slack` tag. */
  ownerSlack: z.string().nullable(),
  /** The owner's e-mail address, from the IAM user's `email` tag (resolved with users.lookupByEmail). */
  ownerEmail: z.string().nullable(),
});

/** One reported access key. */
export type KeyFinding = z.infer<typeof KeyFindingSchema>;

/** What one account's report says. */
export type AccountKeyAgeReport = {
  accountAlias: string;
  accountId: string;
  limits: KeyAgeLimits;
  /** The report's GeneratedTime as AWS gives it. */
  generatedAt: string | null;
  /** Whether a report younger than 4 hours was reused instead of generating a new one. */
  reused: boolean;
  users: number;
  activeKeys: number;
  findings: KeyFinding[];
};

/** How long to wait between GenerateCredentialReport polls (bounded: the sum is about a minute). */
export const REPORT_POLL_DELAYS_MS = [
  500, 1000, 2000, 2000, 3000, 3000, 4000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 5000,
];

/** Options for reading a report (injectable for tests). */
export interface FetchReportOptions {
  now: Date;
  signal?: AbortSignal | undefined;
  pollDelaysMs?: readonly number[];
}

/**
 * Reads the account's credential report: reuses the existing one when it is younger than 4 hours,
 * otherwise asks IAM to generate one and polls (bounded) until it is COMPLETE.
 */
export async function fetchCredentialReport(
  iam: IAMClient,
  options: FetchReportOptions,
): Promise<{ csv: string; generatedAt: Date | null; reused: boolean }> {
  const { GenerateCredentialReportCommand } = await loadIam();
  const existing = await getReport(iam, options.signal);
  if (
    existing?.generatedAt &&
    options.now.getTime() - existing.generatedAt.getTime() < REPORT_FRESH_MS &&
    existing.generatedAt.getTime() <= options.now.getTime() + 60_000
  ) {
    return { ...existing, reused: true };
  }
  const delays = options.pollDelaysMs ?? REPORT_POLL_DELAYS_MS;
  for (let attempt = 0; ; attempt++) {
    const out = await iam.send(new GenerateCredentialReportCommand({}), { abortSignal: options.signal });
    if (out.State === 'COMPLETE') break;
    const delay = delays[attempt];
    if (delay === undefined) {
      const waited = Math.round(delays.reduce((a, b) => a + b, 0) / 1000);
      throw new AwsCallFailedError(
        'iam:GenerateCredentialReport',
        `ReportNotReadyAfter${waited}s`,
        undefined,
      );
    }
    await sleep(delay, undefined, { signal: options.signal });
  }
  const report = await getReport(iam, options.signal);
  if (!report) throw new AwsCallFailedError('iam:GetCredentialReport', 'ReportNotPresent', undefined);
  return { ...report, reused: false };
}

/** The current report, or undefined when there is none (yet), it expired, or it is being generated. */
async function getReport(
  iam: IAMClient,
  signal: AbortSignal | undefined,
): Promise<{ csv: string; generatedAt: Date | null } | undefined> {
  const { GetCredentialReportCommand } = await loadIam();
  try {
    const out = await iam.send(new GetCredentialReportCommand({}), { abortSignal: signal });
    return {
      csv: out.Content ? new TextDecoder('utf-8').decode(out.Content) : '',
      generatedAt: out.GeneratedTime ?? null,
    };
  } catch (error) {
    // No report yet, expired (older than 4 h), or still being generated: generate and poll. The SDK names
    // them CredentialReport{NotPresent,Expired,NotReady}Exception; the API documents ReportNotPresent etc.
    const code = error instanceof AwsCallFailedError ? error.awsCode : (error as Error | undefined)?.name;
    if (
      code &&
      /^(CredentialReport(NotPresent|Expired|NotReady)Exception|Report(NotPresent|Expired|InProgress))$/.test(
        code,
      )
    )
      return undefined;
    if (error instanceof AwsResourceNotFoundError) return undefined;
    throw error;
  }
}

const days = (from: Date, to: Date) => Math.max(0, Math.floor((to.getTime() - from.getTime()) / DAY_MS));

/**
 * The findings of a parsed report (pure): every active key that is older than the limit, never used or
 * unused beyond the limit, belongs to a user with both keys active, or belongs to the root user. Worst first.
 */
export function findKeyAgeFindings(
  rows: readonly CredentialReportRow[],
  limits: KeyAgeLimits,
  now: Date,
  account: { alias: string; id: string },
): KeyFinding[] {
  const findings: KeyFinding[] = [];
  for (const row of rows) {
    const bothActive = row.keys[0].active && row.keys[1].active;
    for (const key of row.keys) {
      if (!key.active) continue;
      const reasons: FindingReason[] = [];
      const ageDays = key.lastRotated ? days(key.lastRotated, now) : null;
      const idleDays = key.lastUsedAt ? days(key.lastUsedAt, now) : ageDays;
      let severity = 0;
      if (row.isRoot) {
        reasons.push('root-key');
        severity += 100;
      }
      if (ageDays !== null && ageDays > limits.maxKeyAgeDays) {
        reasons.push('old');
        severity += ageDays / limits.maxKeyAgeDays;
      }
      if (idleDays !== null && idleDays > limits.maxUnusedDays) {
        reasons.push(key.lastUsedAt ? 'unused' : 'never-used');
        severity += idleDays / limits.maxUnusedDays;
      }
      if (bothActive) {
        reasons.push('both-active');
        severity += 0.25;
      }
      if (reasons.length === 0) continue;
      findings.push({
        accountAlias: account.alias,
        accountId: account.id,
        userName: row.user,
        userArn: row.arn,
        keyId: null,
        slot: key.slot,
        createdAt: key.lastRotated?.toISOString() ?? null,
        ageDays,
        lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
        lastUsedService: key.lastUsedService,
        lastUsedRegion: key.lastUsedRegion,
        idleDays,
        reasons,
        severity: Math.round(severity * 100) / 100,
        ownerSlack: null,
        ownerEmail: null,
      });
    }
  }
  return sortFindings(findings);
}

/** Worst first; ties by user and slot, so the order is stable. */
export function sortFindings(findings: KeyFinding[]): KeyFinding[] {
  return findings.sort(
    (a, b) =>
      b.severity - a.severity ||
      a.accountAlias.localeCompare(b.accountAlias) ||
      a.userName.localeCompare(b.userName) ||
      a.slot - b.slot,
  );
}

const SLACK_USER = /^[UW][A-Z0-9]{2,20}$/;
const EMAIL = /^[^\s@<>|]{1,64}@[^\s@<>|]{1,255}\.[^\s@<>|]{2,63}$/;

/**
 * Fills in each finding's key id (the report names only slots 1 and 2: the slot is matched to
 * ListAccessKeys by creation time) and the owner tags of its IAM user (`slack`, `email`).
 */
export async function resolveKeysAndOwners(
  iam: IAMClient,
  findings: KeyFinding[],
  signal?: AbortSignal,
): Promise<void> {
  const { ListAccessKeysCommand, ListUserTagsCommand } = await loadIam();
  const users = [...new Set(findings.filter((f) => f.userName !== '<root_account>').map((f) => f.userName))];
  // A few users at a time: IAM's control plane is shared by every caller in the account.
  for (let i = 0; i < users.length; i += 5) {
    await Promise.all(
      users.slice(i, i + 5).map(async (userName) => {
        const mine = findings.filter((f) => f.userName === userName);
        const [keys, tags] = await Promise.all([
          iam.send(new ListAccessKeysCommand({ UserName: userName }), { abortSignal: signal }),
          iam.send(new ListUserTagsCommand({ UserName: userName }), { abortSignal: signal }),
        ]);
        const candidates = (keys.AccessKeyMetadata ?? []).map((k, order) => ({
          id: k.AccessKeyId ?? '',
          created: k.CreateDate?.getTime() ?? 0,
          order,
        }));
        const taken = new Set<string>();
        for (const finding of mine.sort((a, b) => a.slot - b.slot)) {
          const created = finding.createdAt ? Date.parse(finding.createdAt) : Number.NaN;
          // The report rounds to the second; slots with equal times keep ListAccessKeys' order.
          const match = candidates
            .filter((c) => c.id && !taken.has(c.id) && Math.abs(c.created - created) < 1500)
            .sort(
              (a, b) => Math.abs(a.created - created) - Math.abs(b.created - created) || a.order - b.order,
            )[0];
          if (match) {
            finding.keyId = match.id;
            taken.add(match.id);
          }
        }
        const tag = (name: string) =>
          tags.Tags?.find((t) => t.Key?.toLowerCase() === name)
            ?.Value?.trim()
            .slice(0, 320);
        const slack = tag('slack');
        const email = tag('email');
        for (const finding of mine) {
          finding.ownerSlack = slack && SLACK_USER.test(slack) ? slack : null;
          finding.ownerEmail = email && EMAIL.test(email) ? email.toLowerCase() : null;
        }
      }),
    );
  }
}

/** Reads one account's report and returns its findings, key ids and owners filled in. */
export async function collectKeyAgeReport(
  aws: ScopedAws,
  limits: KeyAgeLimits,
  options: FetchReportOptions,
): Promise<AccountKeyAgeReport> {
  const { IAMClient } = await loadIam();
  // IAM is global; its endpoint region depends on the partition of the account's roles.
  const iam = aws.client(IAMClient, iamRegionFor(aws.roleArn));
  const report = await fetchCredentialReport(iam, options);
  const rows = parseCredentialReport(report.csv);
  const findings = findKeyAgeFindings(rows, limits, options.now, {
    alias: aws.accountAlias,
    id: aws.accountId,
  });
  await resolveKeysAndOwners(iam, findings, options.signal);
  return {
    accountAlias: aws.accountAlias,
    accountId: aws.accountId,
    limits,
    generatedAt: report.generatedAt?.toISOString() ?? null,
    reused: report.reused,
    users: rows.filter((r) => !r.isRoot).length,
    activeKeys: rows.reduce((n, r) => n + r.keys.filter((k) => k.active).length, 0),
    findings,
  };
}

/** Counts of a report's findings by reason (a key can count under several). */
export function countReasons(findings: readonly KeyFinding[]): Record<FindingReason, number> {
  const counts: Record<FindingReason, number> = {
    'root-key': 0,
    old: 0,
    unused: 0,
    'never-used': 0,
    'both-active': 0,
  };
  for (const f of findings) for (const r of f.reasons) counts[r]++;
  return counts;
}

/** One line saying what a report found, for the run's result and the reminder's headline. */
export function summarizeReport(
  report: Pick<AccountKeyAgeReport, 'accountAlias' | 'findings' | 'limits'>,
): string {
  const n = report.findings.length;
  if (n === 0)
    return `${report.accountAlias}: no access key older than ${report.limits.maxKeyAgeDays} days or unused for more than ${report.limits.maxUnusedDays}.`;
  const c = countReasons(report.findings);
  const users = new Set(
    report.findings.filter((f) => f.reasons.includes('both-active')).map((f) => f.userName),
  );
  const parts = [
    c['root-key'] ? `${c['root-key']} root key${c['root-key'] > 1 ? 's' : ''}` : '',
    c.old ? `${c.old} older than ${report.limits.maxKeyAgeDays} days` : '',
    c.unused ? `${c.unused} unused for more than ${report.limits.maxUnusedDays} days` : '',
    c['never-used'] ? `${c['never-used']} never used` : '',
    users.size ? `${users.size} user${users.size > 1 ? 's' : ''} with both keys active` : '',
  ].filter(Boolean);
  return `${report.accountAlias}: ${n} key${n > 1 ? 's' : ''} to look at (${parts.join(', ')}).`;
}

/** The findings as CSV (attached to on-demand runs, so nothing is cut off). */
export function findingsCsv(findings: readonly KeyFinding[]): string {
  const header = [
    'account',
    'account_id',
    'user',
    'key_id',
    'slot',
    'reasons',
    'age_days',
    'created',
    'last_used',
    'last_used_service',
    'last_used_region',
    'idle_days',
    'owner_slack',
    'owner_email',
  ];
  const quote = (v: string | number | null) => {
    const text = v === null ? '' : String(v);
    // A leading = + - @ would be read as a formula by spreadsheet programs.
    const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const lines = findings.map((f) =>
    [
      f.accountAlias,
      f.accountId,
      f.userName,
      f.keyId,
      f.slot,
      f.reasons.join(' '),
      f.ageDays,
      f.createdAt,
      f.lastUsedAt,
      f.lastUsedService,
      f.lastUsedRegion,
      f.idleDays,
      f.ownerSlack,
      f.ownerEmail,
    ]
      .map(quote)
      .join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
}

const DaysOptionSchema = z
  .string()
  .regex(/^\d{1,4}$/, 'must be a number of days, like 90')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 3650, 'must be between 1 and 3650 days')
  .optional();

const KeyAgeInputSchema = z
  .object({
    positional: z.tuple([], { error: 'key-age takes no positional argument; use `account=`' }),
    options: z
      .object({
        account: AccountOptionSchema,
        'max-age': DaysOptionSchema,
        'max-unused': DaysOptionSchema,
      })
      .strict(),
  })
  .transform(({ options }) => ({
    account: options.account,
    region: undefined,
    reason: undefined,
    maxKeyAgeDays: options['max-age'] ?? DEFAULT_KEY_AGE_LIMITS.maxKeyAgeDays,
    maxUnusedDays: options['max-unused'] ?? DEFAULT_KEY_AGE_LIMITS.maxUnusedDays,
    /** Never parsed from a command (nobody can name several accounts): see reminderInput. */
    accounts: undefined as string[] | undefined,
  }));

type KeyAgeInput = z.infer<typeof KeyAgeInputSchema>;

/** The accounts a reminder covers, in config order. */
export function reminderAccounts(
  config: Pick<Config, 'accounts'>,
  reminder: Pick<ReminderConfig, 'accounts'>,
): AccountConfig[] {
  if (reminder.accounts.includes('*')) return config.accounts;
  return config.accounts.filter((a) => reminder.accounts.includes(a.alias));
}

/**
 * The input of a scheduled reminder's run: every account of its `reminders` entry, in config order, and
 * its limits. Built from the validated configuration, never from a command. The run is filed under the
 * first account (a run record names one); the others are read through `ctx.scopeFor`.
 */
export function reminderInput(
  config: Pick<Config, 'accounts'>,
  reminder: Pick<ReminderConfig, 'accounts' | 'maxKeyAgeDays' | 'maxUnusedDays'>,
): KeyAgeInput {
  const accounts = reminderAccounts(config, reminder).map((a) => a.alias);
  return {
    account: accounts[0],
    region: undefined,
    reason: undefined,
    maxKeyAgeDays: reminder.maxKeyAgeDays,
    maxUnusedDays: reminder.maxUnusedDays,
    accounts,
  };
}

/** What execute reads: the limits, and the accounts of a reminder's run (absent for one account). */
type KeyAgePlanData = KeyAgeLimits & { accounts?: string[] };

const KeyAgeAccountSchema = z.object({
  accountAlias: z.string(),
  accountId: z.string(),
  findings: z.number(),
  summary: z.string(),
  /** Why the account's report could not be read (null when it was). */
  error: z.string().nullable(),
  generatedAt: z.string().nullable(),
});

/** One account of a run: what its report says in one line, or why it could not be read. */
export type KeyAgeAccount = z.infer<typeof KeyAgeAccountSchema>;

const KeyAgeLimitsSchema = z.object({ maxKeyAgeDays: z.number(), maxUnusedDays: z.number() });

/** A reminder's run stores a row per account and every finding. */
const ReminderResultSchema = z.object({
  limits: KeyAgeLimitsSchema,
  accounts: z.array(KeyAgeAccountSchema),
  /** Accounts in the order read, each account's findings worst first; buttons refer to them by index. */
  findings: z.array(KeyFindingSchema),
});

/** What a run's findings are read back as, whichever run stored them (see readKeyAgeResult). */
export type KeyAgeFindings = z.infer<typeof ReminderResultSchema>;

/** What a key-age run stores: a run of one account its report whole, a reminder's run its rows and findings. */
export type KeyAgeResult = { report: AccountKeyAgeReport } | KeyAgeFindings;

/** A stored result, checked, as KeyAgeFindings (one account's report is one row and its findings). */
const StoredKeyAgeResultSchema = z.object({
  execute: z.object({
    data: z.union([
      ReminderResultSchema,
      z
        .object({
          report: z.object({
            accountAlias: z.string(),
            accountId: z.string(),
            limits: KeyAgeLimitsSchema,
            generatedAt: z.string().nullable(),
            findings: z.array(KeyFindingSchema),
          }),
        })
        .transform(
          ({ report }): KeyAgeFindings => ({
            limits: report.limits,
            accounts: [accountRow(report)],
            findings: report.findings,
          }),
        ),
    ]),
  }),
});

/** One account's row of a result, from its report. */
function accountRow(
  report: Pick<AccountKeyAgeReport, 'accountAlias' | 'accountId' | 'limits' | 'generatedAt' | 'findings'>,
): KeyAgeAccount {
  return {
    accountAlias: report.accountAlias,
    accountId: report.accountId,
    findings: report.findings.length,
    summary: summarizeReport(report),
    error: null,
    generatedAt: report.generatedAt,
  };
}

/** The runbook. */
export const keyAge = defineRunbook<KeyAgeInput, KeyAgePlanData, KeyAgeResult>({
  id: 'key-age',
  title: 'Old and unused access keys',
  risk: 'read-only',
  description: 'list access keys older than 90 days, unused for 45, or with both keys of a user active',
  usage: 'key-age [account=prod] [max-age=90] [max-unused=45]',
  input: KeyAgeInputSchema,
  access: 'read',
  iam: {
    plan: [
      'iam:GenerateCredentialReport',
      'iam:GetCredentialReport',
      'iam:ListAccessKeys',
      'iam:ListUserTags',
    ],
    execute: [],
  },
  defaultRegion: (account) => iamRegionFor(account.roles.read),
  async plan(ctx, input): Promise<Plan<KeyAgePlanData>> {
    const limits = { maxKeyAgeDays: input.maxKeyAgeDays, maxUnusedDays: input.maxUnusedDays };
    const calls: PlannedCall[] = [
      { action: 'iam:GetCredentialReport', params: {} },
      { action: 'iam:GenerateCredentialReport', params: { when: 'the report is older than 4 hours' } },
      { action: 'iam:ListAccessKeys', params: { UserName: 'each user with a finding' } },
      { action: 'iam:ListUserTags', params: { UserName: 'each user with a finding' } },
    ];
    const limitFacts: [string, string][] = [
      ['Older than', `${limits.maxKeyAgeDays} days`],
      ['Unused for more than', `${limits.maxUnusedDays} days`],
    ];
    const accounts = input.accounts;
    if (accounts !== undefined) {
      return {
        summary: `Read the credential reports of ${accounts.join(', ')} for keys older than ${limits.maxKeyAgeDays} days or unused for more than ${limits.maxUnusedDays}`,
        facts: [['Accounts', accounts.join(', ')], ...limitFacts],
        calls,
        notes: [
          'Read-only: nothing in the accounts changes.',
          'Each account is read through its own read role; one that cannot be read is reported, the others still are.',
        ],
        material: { accounts, ...limits },
        data: { ...limits, accounts },
      };
    }
    return {
      summary: `Read the credential report of ${ctx.account.alias} for keys older than ${limits.maxKeyAgeDays} days or unused for more than ${limits.maxUnusedDays}`,
      facts: [['Account', `${ctx.account.alias} (${ctx.account.id})`], ...limitFacts],
      calls,
      notes: ['Read-only: nothing in the account changes.'],
      material: { accountId: ctx.account.id, ...limits },
      data: limits,
    };
  },
  async execute(ctx, plan): Promise<Outcome<KeyAgeResult>> {
    const limits = { maxKeyAgeDays: plan.data.maxKeyAgeDays, maxUnusedDays: plan.data.maxUnusedDays };
    const options = { now: ctx.now(), signal: ctx.signal };
    if (plan.data.accounts !== undefined) return readAccounts(ctx, plan.data.accounts, limits, options);
    const report = await collectKeyAgeReport(ctx.aws, limits, options);
    const c = countReasons(report.findings);
    return {
      ok: true,
      summary: summarizeReport(report),
      facts: [
        ['Users', String(report.users)],
        ['Active keys', String(report.activeKeys)],
        ['Findings', String(report.findings.length)],
        ['Older than the limit', String(c.old)],
        ['Unused or never used', String(c.unused + c['never-used'])],
        ['Report generated', report.generatedAt ?? 'unknown'],
      ],
      data: { report },
      files:
        report.findings.length > 0
          ? [
              {
                filename: `key-age-${report.accountAlias}.csv`,
                title: `Access keys to look at in ${report.accountAlias}`,
                content: findingsCsv(report.findings),
              },
            ]
          : [],
    };
  },
  async verify() {
    return { ok: true, summary: 'Read-only: nothing changed.', facts: [], data: {} };
  },
  undo: 'irreversible',
});

/**
 * A reminder's accounts, read in parallel, each through its own read session of the run: an account
 * that cannot be read becomes a row saying why (the run then counts as failed), the others are reported.
 * No file is attached: the reminder's pages show every finding.
 */
async function readAccounts(
  ctx: RunContext,
  aliases: readonly string[],
  limits: KeyAgeLimits,
  options: FetchReportOptions,
): Promise<Outcome<KeyAgeResult>> {
  const read = await Promise.all(
    aliases.map(async (alias) => {
      const scope = alias === ctx.account.alias ? ctx.aws : ctx.scopeFor(alias);
      try {
        const report = await collectKeyAgeReport(scope, limits, options);
        return { row: accountRow(report), findings: report.findings };
      } catch (error) {
        ctx.log.warn({ err: error, account: alias }, 'could not read the credential report');
        const row: KeyAgeAccount = {
          accountAlias: alias,
          accountId: scope.accountId,
          findings: 0,
          summary: '',
          error: describeCollectError(error),
          generatedAt: null,
        };
        return { row, findings: [] as KeyFinding[] };
      } finally {
        if (scope !== ctx.aws) scope.dispose();
      }
    }),
  );
  const accounts = read.map((r) => r.row);
  const findings = read.flatMap((r) => r.findings);
  const failed = accounts.filter((a) => a.error !== null).map((a) => a.accountAlias);
  const counts = accounts.map((a) => `${a.accountAlias} ${a.error === null ? a.findings : 'unreadable'}`);
  return {
    ok: failed.length === 0,
    summary: `${findings.length} key${findings.length === 1 ? '' : 's'} to look at (${counts.join(', ')}).${failed.length > 0 ? ` Could not read ${failed.join(', ')}.` : ''}`,
    facts: [
      ['Accounts read', `${accounts.length - failed.length} of ${accounts.length}`],
      ['Findings', String(findings.length)],
    ],
    data: { limits, accounts, findings },
  };
}

/** The findings a key-age run stored, checked against their schema; undefined for any other run. */
export function readKeyAgeResult(run: RunRecord): KeyAgeFindings | undefined {
  if (run.runbook !== keyAge.id || run.kind !== 'run') return undefined;
  const parsed = StoredKeyAgeResultSchema.safeParse(run.result);
  return parsed.success ? parsed.data.execute.data : undefined;
}

/** The finding a button refers to (`index` into the run's stored findings), if there is one. */
export function findingOfRun(run: RunRecord, index: number): KeyFinding | undefined {
  return readKeyAgeResult(run)?.findings[index];
}

/** A snooze as shown next to a finding. */
export type FindingSnooze = { until: number; reason: string; by: string; at: number };

/** A finding as a message shows it: its index in the run's findings (what buttons carry) and its snooze. */
export type ShownFinding = KeyFinding & { index: number; snooze: FindingSnooze | null };

/** Marks findings with the snoozes in force and numbers them (the number is what buttons carry). */
export function applySnoozes(
  findings: readonly KeyFinding[],
  snoozes: readonly SnoozeRecord[],
): ShownFinding[] {
  const byKey = new Map(snoozes.map((s) => [`${s.accountId}|${s.keyId}`, s]));
  return findings.map((finding, index) => {
    const s = finding.keyId ? byKey.get(`${finding.accountId}|${finding.keyId}`) : undefined;
    return { ...finding, index, snooze: s ? { until: s.until, reason: s.reason, by: s.by, at: s.at } : null };
  });
}

/** What an account that could not be read shows: the coded error's message, else a pointer to the log. */
export function describeCollectError(error: unknown): string {
  const e = asQuellError(error);
  return e.code === ErrorCode.Unknown ? 'an unexpected error (see the log)' : e.message;
}
