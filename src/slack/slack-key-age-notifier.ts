/**
 * Credential-age findings in Slack: the scheduled reminder (pages in the channel and its thread, and a
 * direct message to each owner found through the IAM user's `slack` or `email` tag), and the findings
 * of an on-demand `/quell key-age` run in that run's thread. Buttons appear only where the channel's
 * guardrails would let the clicker's request through.
 */
import type { webApi } from '@slack/bolt';
import { channelAllows } from '../approvals/approval-policy.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import type { RunNotifier } from '../runbooks/engine/run-notifier.ts';
import { type KeyAgeResult, summarizeReport } from '../runbooks/key-age.ts';
import { applySnoozes, type ReminderNotifier, type ReminderReport } from '../schedule/run-reminder.ts';
import type { RunRecord, Store } from '../store/store.ts';
import {
  buildKeyAgePages,
  buildOwnerMessage,
  type FindingButtons,
  type MessagePage,
} from './build-key-age-message.ts';

/** Which finding buttons the guardrails of `channel` allow, per account. */
export function findingButtonsFor(
  config: Config,
  runbooks: readonly AnyRunbook[],
  channel: string,
): (accountAlias: string) => FindingButtons {
  const has = (id: string) => runbooks.some((r) => r.id === id);
  return (accountAlias) => ({
    disable: has('disable-key') && channelAllows(config, channel, 'disable-key', accountAlias),
    lookUp: has('trail') && channelAllows(config, channel, 'trail', accountAlias),
    snooze: true,
  });
}

/** Posts the pages: the first in `channel` (or in `threadTs`), the others in the first one's thread. */
async function postPages(
  client: webApi.WebClient,
  channel: string,
  pages: MessagePage[],
  log: Logger,
  threadTs?: string,
): Promise<string | undefined> {
  const [first, ...rest] = pages;
  if (!first) return undefined;
  const posted = await client.chat.postMessage({
    channel,
    text: first.text,
    blocks: first.blocks,
    unfurl_links: false,
    unfurl_media: false,
    ...(threadTs ? { thread_ts: threadTs } : {}),
  });
  const thread = threadTs ?? posted.ts;
  for (const page of rest) {
    try {
      await client.chat.postMessage({
        channel,
        thread_ts: thread,
        text: page.text,
        blocks: page.blocks,
        unfurl_links: false,
        unfurl_media: false,
      });
    } catch (err) {
      // The first page is out: re-posting everything would duplicate it, so the gap is logged instead.
      log.error({ err, channel }, 'could not post a page of findings in the thread');
    }
  }
  return posted.ts;
}

/** The Slack ReminderNotifier. */
export function createSlackReminderNotifier(
  client: webApi.WebClient,
  deps: { config: Config; runbooks: readonly AnyRunbook[]; log: Logger },
): ReminderNotifier {
  return {
    async postReminder(report: ReminderReport) {
      const pages = buildKeyAgePages(report, findingButtonsFor(deps.config, deps.runbooks, report.channel));
      const ts = await postPages(client, report.channel, pages, deps.log);
      return { ts, pages: pages.length };
    },
    async notifyOwner(owner, findings, report) {
      let userId = owner.slack;
      if (!userId && owner.email) {
        try {
          const found = await client.users.lookupByEmail({ email: owner.email });
          userId = found.user?.id ?? null;
        } catch (err) {
          deps.log.info({ err }, 'no Slack user for an owner e-mail tag');
          return undefined;
        }
      }
      if (!userId) return undefined;
      const opened = await client.conversations.open({ users: userId });
      const channel = opened.channel?.id;
      if (!channel) return undefined;
      const message = buildOwnerMessage(findings, report);
      await client.chat.postMessage({
        channel,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
      });
      return userId;
    },
  };
}

/**
 * After `/quell key-age` succeeded: its findings, with buttons, in the run's thread (the run card shows
 * the summary). Snoozed keys are marked as on the reminders.
 */
export async function postKeyAgeRunFindings(
  client: webApi.WebClient,
  deps: { config: Config; runbooks: readonly AnyRunbook[]; store: Store; log: Logger; now?: () => number },
  run: RunRecord,
): Promise<void> {
  if (run.runbook !== 'key-age' || run.state !== 'succeeded' || !run.messageTs) return;
  const result = (run.result as { execute?: { data?: KeyAgeResult } } | null)?.execute?.data;
  const report = result?.report;
  if (!report || report.findings.length === 0) return;
  const at = deps.now?.() ?? Date.now();
  const shown: ReminderReport = {
    id: run.id,
    channel: run.channel,
    at,
    slot: null,
    limits: report.limits,
    accounts: [
      {
        accountAlias: report.accountAlias,
        accountId: report.accountId,
        findings: report.findings.length,
        summary: summarizeReport(report),
        error: null,
        generatedAt: report.generatedAt,
      },
    ],
    findings: applySnoozes(report.findings, await deps.store.activeSnoozes(at)),
    skipped: 0,
  };
  const pages = buildKeyAgePages(shown, findingButtonsFor(deps.config, deps.runbooks, run.channel));
  await postPages(client, run.channel, pages, deps.log, run.messageTs);
}

/**
 * Wraps the run notifier so that a succeeded `key-age` run's findings follow its final "Done" line in
 * the thread, whichever way the run was started.
 */
export function withKeyAgeFindings(
  notifier: RunNotifier,
  post: (run: RunRecord) => Promise<void>,
  log: Logger,
): RunNotifier {
  const posted = new Set<string>();
  return {
    ...notifier,
    async reply(run, text) {
      await notifier.reply(run, text);
      if (run.runbook !== 'key-age' || run.state !== 'succeeded' || posted.has(run.id)) return;
      posted.add(run.id);
      await post(run).catch((err: unknown) =>
        log.warn({ err, runId: run.id }, 'could not post the findings'),
      );
    },
  };
}
