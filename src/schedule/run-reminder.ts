/**
 * One credential-age reminder run: read each account's credential report in parallel (through the read
 * role, as a run of its own id), mark snoozed keys, write the findings to the audit log (so the buttons
 * on the message can be resolved against what was shown), post the message and DM the owners.
 */
import type { AuditLog } from '../audit/audit-log.ts';
import type { AwsClientFactory } from '../aws/client-factory.ts';
import type { AccountConfig, Config, ReminderConfig } from '../config.ts';
import { asQuellError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { iamRegionFor } from '../runbooks/disable-key.ts';
import { newRunId } from '../runbooks/engine/run-id.ts';
import {
  type AccountKeyAgeReport,
  collectKeyAgeReport,
  type KeyAgeLimits,
  type KeyFinding,
  summarizeReport,
} from '../runbooks/key-age.ts';
import type { Json, SnoozeRecord, Store } from '../store/store.ts';
import type { ReminderJob } from './reminder-scheduler.ts';

/** The identity the scheduler's AWS sessions carry (SourceIdentity) and the audit log's actor. */
export const SCHEDULER_ACTOR = 'quell-scheduler';

/** How many findings each `reminder.findings` audit entry holds (the audit log keeps arrays short). */
export const FINDINGS_PER_ENTRY = 200;

/** A snooze as shown next to a finding. */
export type FindingSnooze = { until: number; reason: string; by: string; at: number };

/** A finding as a reminder shows it: its position (what buttons refer to) and its snooze. */
export type ShownFinding = KeyFinding & { index: number; snooze: FindingSnooze | null };

/** One account's part of a reminder: its report, or why it could not be read. */
export type ReminderAccount = {
  accountAlias: string;
  accountId: string;
  findings: number;
  summary: string;
  error: string | null;
  generatedAt: string | null;
};

/** Everything a reminder message is built from. */
export interface ReminderReport {
  /** Buttons refer to findings as `<id>.<index>`; also the run id of its AWS sessions and audit entries. */
  id: string;
  channel: string;
  /** When it ran (ms), and the slot it ran for (ms; null when not scheduled). */
  at: number;
  slot: number | null;
  limits: KeyAgeLimits;
  accounts: ReminderAccount[];
  findings: ShownFinding[];
  /** Slots that were missed during downtime and folded into this one. */
  skipped: number;
}

/** How reminders reach people (implemented over Slack by the commands layer). */
export interface ReminderNotifier {
  /** Posts the reminder: headline and first page in the channel, further pages in its thread. */
  postReminder(report: ReminderReport): Promise<{ ts: string | undefined; pages: number }>;
  /** Sends one owner a direct message about their keys; resolves to the Slack user reached, if any. */
  notifyOwner(
    owner: { slack: string | null; email: string | null },
    findings: ShownFinding[],
    report: ReminderReport,
  ): Promise<string | undefined>;
}

/** The accounts a reminder covers, in config order. */
export function reminderAccounts(
  config: Pick<Config, 'accounts'>,
  reminder: ReminderConfig,
): AccountConfig[] {
  if (reminder.accounts.includes('*')) return config.accounts;
  return config.accounts.filter((a) => reminder.accounts.includes(a.alias));
}

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

/** Writes a report's findings to the audit log under its id, in entries of FINDINGS_PER_ENTRY. */
export async function recordFindings(audit: AuditLog, report: ReminderReport, source: string): Promise<void> {
  const parts = Math.max(1, Math.ceil(report.findings.length / FINDINGS_PER_ENTRY));
  for (let part = 0; part < parts; part++) {
    const slice = report.findings.slice(part * FINDINGS_PER_ENTRY, (part + 1) * FINDINGS_PER_ENTRY);
    await audit.record({
      type: 'reminder.findings',
      runId: report.id,
      actor: SCHEDULER_ACTOR,
      data: {
        source,
        channel: report.channel,
        part,
        parts,
        offset: part * FINDINGS_PER_ENTRY,
        findings: slice,
      },
    });
  }
}

/** Creates the job runner the scheduler calls for each due slot. */
export function createReminderRunner(deps: {
  config: Config;
  store: Store;
  audit: AuditLog;
  aws: AwsClientFactory;
  notifier: ReminderNotifier;
  log: Logger;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  return async (job: ReminderJob): Promise<Json | undefined> => {
    const reminder = job.schedule.reminder;
    const id = newRunId();
    const at = now();
    const limits = { maxKeyAgeDays: reminder.maxKeyAgeDays, maxUnusedDays: reminder.maxUnusedDays };
    const accounts = reminderAccounts(deps.config, reminder);
    const log = deps.log.child({ reminderId: id, schedule: job.schedule.id });
    await deps.audit.record({
      type: 'reminder.started',
      runId: id,
      actor: SCHEDULER_ACTOR,
      data: {
        schedule: job.schedule.id,
        cron: reminder.schedule,
        timezone: deps.config.timezone,
        slot: new Date(job.slot).toISOString(),
        skippedSlots: job.skipped,
        channel: reminder.channel,
        accounts: accounts.map((a) => a.alias),
        ...limits,
      },
    });
    const settled = await Promise.allSettled(
      accounts.map(async (account) => {
        const scope = deps.aws.scope({
          account,
          tier: 'read',
          runId: id,
          runbook: 'key-age',
          sourceIdentity: SCHEDULER_ACTOR,
          region: iamRegionFor(account.roles.read),
        });
        try {
          return await collectKeyAgeReport(scope, limits, {
            now: new Date(at),
            signal: AbortSignal.timeout(4 * 60_000),
          });
        } finally {
          scope.dispose();
        }
      }),
    );
    deps.aws.release(id);
    const reports: AccountKeyAgeReport[] = [];
    const accountRows: ReminderAccount[] = settled.map((result, i) => {
      const account = accounts[i] as AccountConfig;
      if (result.status === 'fulfilled') {
        reports.push(result.value);
        return {
          accountAlias: account.alias,
          accountId: account.id,
          findings: result.value.findings.length,
          summary: summarizeReport(result.value),
          error: null,
          generatedAt: result.value.generatedAt,
        };
      }
      const error = asQuellError(result.reason);
      log.warn({ err: result.reason, account: account.alias }, 'could not read the credential report');
      return {
        accountAlias: account.alias,
        accountId: account.id,
        findings: 0,
        summary: '',
        error: error.code === 'quell_unknown' ? 'an unexpected error (see the log)' : error.message,
        generatedAt: null,
      };
    });
    // Accounts in config order, each account's findings worst first (the runbook sorted them).
    const findings = applySnoozes(
      reports.flatMap((r) => r.findings),
      await deps.store.activeSnoozes(at),
    );
    const report: ReminderReport = {
      id,
      channel: reminder.channel,
      at,
      slot: job.slot,
      limits,
      accounts: accountRows,
      findings,
      skipped: job.skipped,
    };
    await recordFindings(deps.audit, report, 'reminder');

    let posted: { ts: string | undefined; pages: number };
    try {
      posted = await deps.notifier.postReminder(report);
    } catch (err) {
      // Nothing reached the channel: leave the slot claimed so it is tried again after its lease.
      log.error({ err }, 'could not post the reminder');
      await deps.audit.record({
        type: 'reminder.failed',
        runId: id,
        actor: SCHEDULER_ACTOR,
        data: { channel: reminder.channel, message: asQuellError(err).message },
      });
      return undefined;
    }

    const owners = groupByOwner(findings.filter((f) => f.snooze === null));
    const dms: string[] = [];
    const dmFailures: string[] = [];
    for (const { owner, findings: mine } of owners) {
      try {
        const reached = await deps.notifier.notifyOwner(owner, mine, report);
        if (reached) dms.push(reached);
        else dmFailures.push(owner.slack ?? owner.email ?? 'unknown');
      } catch (err) {
        log.warn({ err }, 'could not send an owner their reminder');
        dmFailures.push(owner.slack ?? owner.email ?? 'unknown');
      }
    }
    const counts = Object.fromEntries(accountRows.map((a) => [a.accountAlias, a.error ? -1 : a.findings]));
    const summary = {
      reminderId: id,
      channel: reminder.channel,
      at,
      messageTs: posted.ts ?? null,
      pages: posted.pages,
      findings: findings.filter((f) => f.snooze === null).length,
      snoozed: findings.filter((f) => f.snooze !== null).length,
      counts,
      failedAccounts: accountRows.filter((a) => a.error).map((a) => a.accountAlias),
      dms: dms.length,
    };
    await deps.audit.record({
      type: 'reminder.posted',
      runId: id,
      actor: SCHEDULER_ACTOR,
      data: { ...summary, dmFailures },
    });
    return summary;
  };
}

/** Findings grouped by the owner tags of their IAM user (findings without an owner tag are left out). */
export function groupByOwner(
  findings: readonly ShownFinding[],
): { owner: { slack: string | null; email: string | null }; findings: ShownFinding[] }[] {
  const groups = new Map<
    string,
    { owner: { slack: string | null; email: string | null }; findings: ShownFinding[] }
  >();
  for (const f of findings) {
    if (!f.ownerSlack && !f.ownerEmail) continue;
    const key = f.ownerSlack ?? `email:${f.ownerEmail}`;
    const group = groups.get(key) ?? { owner: { slack: f.ownerSlack, email: f.ownerEmail }, findings: [] };
    group.findings.push(f);
    groups.set(key, group);
  }
  return [...groups.values()];
}
