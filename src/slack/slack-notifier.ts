/**
 * The engine's voice in Slack: posts and updates run cards, replies in their threads, and tells a
 * requester privately (through the command's response URL when there is one) that something failed.
 * A scheduled run has nobody waiting on a card: it gets none (nor thread lines, files or private
 * notes); whoever scheduled it posts its result with the runbook's result view (see post-reminder.ts).
 */
import type { webApi } from '@slack/bolt';
import type { Logger } from '../logger.ts';
import type { OutcomeFile } from '../runbooks/define-runbook.ts';
import type { Requester, RunNotifier, RunView } from '../runbooks/engine/run-notifier.ts';
import type { RunRecord } from '../store/store.ts';
import { buildRunCard } from './build-run-card.ts';
import { escapeMrkdwn } from './escape-text.ts';
import { type RetrySlackOptions, retrySlackCall } from './retry-slack-call.ts';

/** Requester details only Slack knows. */
export interface SlackRequester extends Requester {
  responseUrl?: string | undefined;
}

/** Creates the Slack RunNotifier. */
export function createSlackNotifier(
  client: webApi.WebClient,
  log: Logger,
  retry: RetrySlackOptions = {},
): RunNotifier {
  // Cards and thread lines outlast rate limits and 5xx (retry-slack-call.ts): losing one hides a run's state.
  const again = <T>(call: () => Promise<T>) => retrySlackCall(call, retry);
  const scheduled = (run: Pick<RunRecord, 'source'>) => run.source === 'schedule';
  return {
    async showRun(view: RunView) {
      if (scheduled(view.run)) return undefined;
      const card = buildRunCard(view);
      if (view.run.messageTs) {
        const ts = view.run.messageTs;
        await again(() =>
          client.chat.update({ channel: view.run.channel, ts, text: card.text, blocks: card.blocks }),
        );
        return undefined;
      }
      const posted = await again(() =>
        client.chat.postMessage({
          channel: view.run.channel,
          text: card.text,
          blocks: card.blocks,
          unfurl_links: false,
        }),
      );
      return posted.ts;
    },
    async reply(run: RunRecord, text: string) {
      if (scheduled(run)) return;
      const safe = escapeMrkdwn(text, 2900);
      if (!run.messageTs) {
        await client.chat.postEphemeral({ channel: run.channel, user: run.requester, text: safe });
        return;
      }
      const threadTs = run.messageTs;
      await again(() =>
        client.chat.postMessage({
          channel: run.channel,
          thread_ts: threadTs,
          text: safe,
          unfurl_links: false,
        }),
      );
    },
    async upload(run: RunRecord, files: OutcomeFile[]) {
      if (scheduled(run)) return;
      // Slack's external upload flow (files.getUploadURLExternal, then completeUploadExternal), in the thread.
      await client.filesUploadV2({
        channel_id: run.channel,
        ...(run.messageTs ? { thread_ts: run.messageTs } : {}),
        file_uploads: files.map((f) => ({
          file: Buffer.from(f.content, 'utf8'),
          filename: f.filename,
          title: f.title,
        })),
      });
    },
    async tell(requester: Requester, text: string) {
      if (scheduled(requester)) {
        log.warn({ channel: requester.channel, reason: text }, 'a scheduled run was refused');
        return;
      }
      const safe = `:warning: ${escapeMrkdwn(text, 2900)}`;
      const responseUrl = (requester as SlackRequester).responseUrl;
      if (responseUrl) {
        const res = await fetch(responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text: safe }),
          signal: AbortSignal.timeout(10_000),
        });
        if (res.ok) return;
        log.warn(
          { status: res.status },
          'response_url refused the message; falling back to an ephemeral message',
        );
      }
      await client.chat.postEphemeral({ channel: requester.channel, user: requester.user, text: safe });
    },
  };
}
