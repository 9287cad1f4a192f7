/**
 * key-age (read-only): the IAM credential report of an account, read for access keys that should not
 * exist any more — active keys older than the limit, active keys never used or unused beyond the limit,
 * and users with both keys active. The scheduled credential-age reminders (src/schedule) run the same
 * collection for several accounts at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GenerateCredentialReportCommand,
  GetCredentialReportCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUserTagsCommand,
} from '@aws-sdk/client-iam';
import { z } from 'zod';
import type { ScopedAws } from '../aws/client-factory.ts';
import { iamRegionFor } from '../aws/partitions.ts';
import { AwsCallFailedError, AwsResourceNotFoundError, QuellError } from '../errors.ts';
import { AccountOptionSchema, defineRunbook, type Outcome, type Plan } from './define-runbook.ts';
import { type CredentialReportRow, parseCredentialReport } from './parse-credential-report.ts';

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

/** Why a key is reported. */
export type FindingReason = 'root-key' | 'old' | 'unused' | 'never-used' | 'both-active';

/** One reported access key. JSON-shaped: it is stored with the run or the reminder and read back by buttons. */
export type KeyFinding = {
  accountAlias: string;
  accountId: string;
  userName: string;
  userArn: string;
  /** Null for the root user's keys, and when the key could not be matched to ListAccessKeys. */
  keyId: string | null;
  slot: number;
  createdAt: string | null;
  ageDays: number | null;
  lastUsedAt: string | null;
  lastUsedService: string | null;
  lastUsedRegion: string | null;
  /** Days since the last use, or since creation for a key never used. */
  idleDays: number | null;
  reasons: FindingReason[];
  /** Bigger is worse; findings are listed worst first. */
  severity: number;
  /** The owner's Slack user id, from the IAM user's `slack` tag. */
  ownerSlack: string | null;
  /** The owner's e-mail address, from the IAM user's `email` tag (resolved with users.lookupByEmail). */
  ownerEmail: string | null;
};

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
  }));

type KeyAgeInput = z.infer<typeof KeyAgeInputSchema>;

/** What a key-age run stores as its result (the reminders store the same shape per account). */
export type KeyAgeResult = { report: AccountKeyAgeReport };

/** The runbook. */
export const keyAge = defineRunbook<KeyAgeInput, KeyAgeLimits, KeyAgeResult>({
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
  async plan(ctx, input): Promise<Plan<KeyAgeLimits>> {
    const limits = { maxKeyAgeDays: input.maxKeyAgeDays, maxUnusedDays: input.maxUnusedDays };
    return {
      summary: `Read the credential report of ${ctx.account.alias} for keys older than ${limits.maxKeyAgeDays} days or unused for more than ${limits.maxUnusedDays}`,
      facts: [
        ['Account', `${ctx.account.alias} (${ctx.account.id})`],
        ['Older than', `${limits.maxKeyAgeDays} days`],
        ['Unused for more than', `${limits.maxUnusedDays} days`],
      ],
      calls: [
        { action: 'iam:GetCredentialReport', params: {} },
        { action: 'iam:GenerateCredentialReport', params: { when: 'the report is older than 4 hours' } },
        { action: 'iam:ListAccessKeys', params: { UserName: 'each user with a finding' } },
        { action: 'iam:ListUserTags', params: { UserName: 'each user with a finding' } },
      ],
      notes: ['Read-only: nothing in the account changes.'],
      material: { accountId: ctx.account.id, ...limits },
      data: limits,
    };
  },
  async execute(ctx, plan): Promise<Outcome<KeyAgeResult>> {
    const report = await collectKeyAgeReport(ctx.aws, plan.data, { now: ctx.now(), signal: ctx.signal });
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

/** Whether `error` is one a reminder should show per account instead of failing the whole run. */
export function describeCollectError(error: unknown): string {
  return error instanceof QuellError ? error.message : 'an unexpected error (see the log)';
}
