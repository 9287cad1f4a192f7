/**
 * key-age's result view: a finished run's findings as pages with their buttons — in the run card's
 * thread for `/quell key-age`, or, for a scheduled reminder (a run without a card), as a message of its
 * own in the channel with further pages in its thread — and the direct message to each owner found
 * through the IAM user's `slack` or `email` tag. Buttons appear only where the channel's guardrails
 * would let the clicker's request through.
 */
import type { webApi } from '@slack/bolt';
import { channelAllows } from '../approvals/approval-policy.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import { applySnoozes, keyAge, readKeyAgeResult, type ShownFinding } from '../runbooks/key-age.ts';
import type { RunRecord, Store } from '../store/store.ts';
import {
  buildKeyAgePages,
  buildOwnerMessage,
  type FindingButtons,
  type MessagePage,
  type ReminderReport,
} from './build-key-age-message.ts';
import type { ResultView } from './result-views.ts';

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

/** The reminder slot a scheduled run was started for. */
export interface ScheduledSlot {
  slot: number;
  /** Slots missed during downtime and folded into this one. */
  skipped: number;
}

/** What posting a report did. */
export interface PostedReport {
  ts: string | undefined;
  pages: number;
}

/** key-age's result view, with what a scheduled reminder needs besides `show`. */
export interface KeyAgeResultView extends ResultView {
  /** The report a finished run's stored result makes, snoozes in force marked; undefined for any other run. */
  reportOf(run: RunRecord, scheduled?: ScheduledSlot): Promise<ReminderReport | undefined>;
  /** Posts the report: in `threadTs` when given (the run's card), else in the channel, further pages in the thread. */
  post(report: ReminderReport, threadTs?: string): Promise<PostedReport>;
  /** Sends one owner a direct message about their keys; resolves to the Slack user reached, if any. */
  notifyOwner(
    owner: { slack: string | null; email: string | null },
    findings: ShownFinding[],
    report: ReminderReport,
  ): Promise<string | undefined>;
}

/** Creates key-age's result view over Slack. */
export function createKeyAgeResultView(
  client: webApi.WebClient,
  deps: { config: Config; runbooks: readonly AnyRunbook[]; store: Store; log: Logger; now?: () => number },
): KeyAgeResultView {
  const now = deps.now ?? Date.now;
  const view: KeyAgeResultView = {
    runbook: keyAge.id,
    async reportOf(run, scheduled) {
      const result = readKeyAgeResult(run);
      if (!result) return undefined;
      const at = now();
      return {
        id: run.id,
        channel: run.channel,
        at,
        slot: scheduled?.slot ?? null,
        limits: result.limits,
        accounts: result.accounts,
        findings: applySnoozes(result.findings, await deps.store.activeSnoozes(at)),
        skipped: scheduled?.skipped ?? 0,
      };
    },
    async post(report, threadTs) {
      const pages = buildKeyAgePages(report, findingButtonsFor(deps.config, deps.runbooks, report.channel));
      const ts = await postPages(client, report.channel, pages, deps.log, threadTs);
      return { ts, pages: pages.length };
    },
    async show(run) {
      // The card shows the counts; the findings, if any, follow in its thread.
      const report = await view.reportOf(run);
      if (!report || report.findings.length === 0 || !run.messageTs) return;
      await view.post(report, run.messageTs);
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
  return view;
}
