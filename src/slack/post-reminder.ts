/**
 * One credential-age reminder slot: a `key-age` run through the engine like any other — requested by
 * the scheduler (SCHEDULER_USER, source `schedule`, in the reminder's channel), over the reminder's
 * accounts, with the same audit entries (command received, plan, every AWS call, result) — whose
 * findings are then posted with key-age's result view, the same pages a `/quell key-age` run shows in
 * its thread, here as a message of their own, and sent to each owner. The scheduler stores what this
 * returns as the slot's summary; `undefined` leaves the slot to be retried after its lease.
 */
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config.ts';
import { asQuellError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import { newRunId } from '../runbooks/engine/run-id.ts';
import { type Requester, SCHEDULER_USER } from '../runbooks/engine/run-notifier.ts';
import { keyAge, reminderInput, type ShownFinding } from '../runbooks/key-age.ts';
import type { ReminderJob, ReminderJobRunner } from '../schedule/reminder-scheduler.ts';
import type { Json } from '../store/store.ts';
import type { ReminderReport } from './build-key-age-message.ts';
import type { KeyAgeResultView, PostedReport } from './key-age-result-view.ts';

/** How many findings each `reminder.findings` audit entry holds (the audit log keeps arrays short). */
export const FINDINGS_PER_ENTRY = 200;

/** Creates the job runner the scheduler calls for each due slot. */
export function createReminderRunner(deps: {
  config: Config;
  engine: Engine;
  audit: AuditLog;
  view: KeyAgeResultView;
  log: Logger;
  now?: () => number;
}): ReminderJobRunner {
  const { config, engine, audit, view } = deps;
  const now = deps.now ?? Date.now;
  return async (job: ReminderJob): Promise<Json | undefined> => {
    const reminder = job.schedule.reminder;
    const runId = newRunId();
    const at = now();
    const log = deps.log.child({ runId, schedule: job.schedule.id });
    const requester: Requester = { user: SCHEDULER_USER, channel: reminder.channel, source: 'schedule' };
    const input = reminderInput(config, reminder);
    const failed = async (message: string): Promise<undefined> => {
      await audit.record({
        type: 'reminder.failed',
        runId,
        actor: SCHEDULER_USER,
        data: { channel: reminder.channel, message },
      });
      return undefined;
    };
    await audit.record({
      type: 'reminder.started',
      runId,
      actor: SCHEDULER_USER,
      data: {
        schedule: job.schedule.id,
        cron: reminder.schedule,
        timezone: config.timezone,
        slot: new Date(job.slot).toISOString(),
        skippedSlots: job.skipped,
        channel: reminder.channel,
        accounts: input.accounts ?? [],
        maxKeyAgeDays: input.maxKeyAgeDays,
        maxUnusedDays: input.maxUnusedDays,
      },
    });

    const run = await engine.start({ runbook: keyAge, input }, requester, { runId });
    const report = run ? await view.reportOf(run, { slot: job.slot, skipped: job.skipped }) : undefined;
    if (!run || !report) {
      // Refused, or failed before anything was read (the run's card and audit entries say why).
      log.error({ state: run?.state ?? 'not started' }, 'the reminder run produced no report');
      return failed(`the run ended ${run?.state.replace('_', ' ') ?? 'before it started'}`);
    }
    await recordFindings(audit, report);

    let posted: PostedReport;
    try {
      posted = await view.post(report);
    } catch (err) {
      // Nothing reached the channel: leave the slot claimed so it is tried again after its lease.
      log.error({ err }, 'could not post the reminder');
      return failed(asQuellError(err).message);
    }

    const findings = report.findings.filter((f) => f.snooze === null);
    const dms: string[] = [];
    const dmFailures: string[] = [];
    for (const { owner, findings: mine } of groupByOwner(findings)) {
      try {
        const reached = await view.notifyOwner(owner, mine, report);
        if (reached) dms.push(reached);
        else dmFailures.push(owner.slack ?? owner.email ?? 'unknown');
      } catch (err) {
        log.warn({ err }, 'could not send an owner their reminder');
        dmFailures.push(owner.slack ?? owner.email ?? 'unknown');
      }
    }
    const summary = {
      reminderId: runId,
      channel: reminder.channel,
      at,
      messageTs: posted.ts ?? null,
      pages: posted.pages,
      findings: findings.length,
      snoozed: report.findings.length - findings.length,
      counts: Object.fromEntries(report.accounts.map((a) => [a.accountAlias, a.error ? -1 : a.findings])),
      failedAccounts: report.accounts.filter((a) => a.error).map((a) => a.accountAlias),
      dms: dms.length,
    };
    await audit.record({
      type: 'reminder.posted',
      runId,
      actor: SCHEDULER_USER,
      data: { ...summary, dmFailures },
    });
    return summary;
  };
}

/** Writes the findings as posted (numbered, snoozes marked) under the run's id, FINDINGS_PER_ENTRY a time. */
export async function recordFindings(audit: AuditLog, report: ReminderReport): Promise<void> {
  const parts = Math.max(1, Math.ceil(report.findings.length / FINDINGS_PER_ENTRY));
  for (let part = 0; part < parts; part++) {
    const slice = report.findings.slice(part * FINDINGS_PER_ENTRY, (part + 1) * FINDINGS_PER_ENTRY);
    await audit.record({
      type: 'reminder.findings',
      runId: report.id,
      actor: SCHEDULER_USER,
      data: {
        source: 'reminder',
        channel: report.channel,
        part,
        parts,
        offset: part * FINDINGS_PER_ENTRY,
        findings: slice,
      },
    });
  }
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
