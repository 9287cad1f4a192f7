/**
 * The buttons of credential-age findings and the snooze modal. A button carries only a reference to
 * the finding (`<run-id>.<index>`, a key-age run, scheduled or not); the handler reads the account, user
 * and key back from the stored run, checks the click comes from the run's channel, and then goes
 * through the same paths as a typed command: Disable → `disable-key` with its approvals, Look up
 * activity → `trail key=…`.
 */

import type { App } from '@slack/bolt';
import { type ApproverDirectory, assertApprover } from '../approvals/approval-policy.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { RunStateConflictError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import { findingOfRun, type KeyFinding } from '../runbooks/key-age.ts';
import type { Store } from '../store/store.ts';
import type { ActionRouter } from './action-router.ts';
import { buildSnoozeModal, FINDING_ACTION, parseFindingRef, SNOOZE_DAYS } from './build-key-age-message.ts';
import { escapeCode, escapeMrkdwn, mentionUser } from './escape-text.ts';
import { formatError } from './format-error.ts';
import type { SlackRequester } from './slack-notifier.ts';
import { tellClicker } from './tell-clicker.ts';

/** What the handlers need. */
export interface FindingHandlerDeps {
  engine: Engine;
  store: Store;
  audit: AuditLog;
  directory: ApproverDirectory;
  log: Logger;
  now?: () => number;
}

/** The reason a Disable click gives `disable-key` (3–500 characters, as the runbook requires). */
export function disableReason(f: KeyFinding): string {
  const why = f.reasons
    .map((r) =>
      r === 'old'
        ? `${f.ageDays} days old`
        : r === 'unused'
          ? `unused for ${f.idleDays} days`
          : r === 'never-used'
            ? 'never used'
            : r === 'both-active'
              ? 'both keys of the user active'
              : 'root key',
    )
    .join(', ');
  return `credential-age finding: ${why}`.slice(0, 500);
}

/** How far back "Look up activity" searches: past the last use (CloudTrail keeps 90 days), at least 24 h. */
export function lookupSince(f: KeyFinding): string {
  if (!f.lastUsedAt || f.idleDays === null) return '24h';
  return f.idleDays < 1 ? '24h' : `${Math.min(90, f.idleDays + 1)}d`;
}

/** A finding as stored with its run. */
interface StoredFinding {
  finding: KeyFinding;
  /** The run's channel: buttons only work there. */
  channel: string;
  runId: string;
  index: number;
}

interface ClickedFinding {
  stored: StoredFinding;
  requester: SlackRequester;
}

/** Looks a finding up by its reference; undefined when the reference is malformed or unknown. */
async function findStoredFinding(store: Store, ref: string): Promise<StoredFinding | undefined> {
  const parsed = parseFindingRef(ref);
  const run = parsed ? await store.getRun(parsed.runId) : undefined;
  if (!parsed || !run) return undefined;
  const finding = findingOfRun(run, parsed.index);
  return finding ? { finding, channel: run.channel, runId: run.id, index: parsed.index } : undefined;
}

/** Registers the finding buttons and the snooze modal on the app. */
export function registerFindingHandlers(app: App, actions: ActionRouter, deps: FindingHandlerDeps): void {
  const { engine, store, audit, log } = deps;
  const command = engine.config.slack.command;
  const now = deps.now ?? Date.now;

  /** The clicked finding, only if it exists and was posted in the channel clicked from. */
  async function resolveClick(body: unknown, value: string): Promise<ClickedFinding> {
    const b = body as { user: { id: string }; channel?: { id?: string }; response_url?: string };
    const channel = b.channel?.id ?? '';
    const requester: SlackRequester = {
      user: b.user.id,
      channel,
      source: 'slack',
      responseUrl: typeof b.response_url === 'string' ? b.response_url : undefined,
    };
    const stored = await findStoredFinding(store, value);
    if (!stored || stored.channel !== channel) {
      await audit.record({
        type: 'command.rejected',
        actor: requester.user,
        data: {
          channel,
          reason: stored ? 'finding of another channel' : 'unknown finding',
          ref: value.slice(0, 40),
        },
      });
      throw unknownFinding(command);
    }
    return { stored, requester };
  }

  const buttonValue = (action: unknown) => {
    const v = (action as { value?: unknown }).value;
    return typeof v === 'string' ? v : '';
  };

  actions.action(FINDING_ACTION.disable, async ({ ack, body, action, respond }) => {
    await ack();
    try {
      const { stored, requester } = await resolveClick(body, buttonValue(action));
      const f = stored.finding;
      if (!f.keyId || f.userName === '<root_account>')
        throw new RunStateConflictError(
          'quell cannot disable this key: root user keys (and keys whose id the report did not give) are deleted in the IAM console.',
        );
      const prepared = engine.prepare(
        'disable-key',
        { positional: [f.keyId], options: { account: f.accountAlias, reason: disableReason(f) } },
        requester,
      );
      await engine.start(prepared, requester);
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  actions.action(FINDING_ACTION.lookUp, async ({ ack, body, action, respond }) => {
    await ack();
    try {
      const { stored, requester } = await resolveClick(body, buttonValue(action));
      const f = stored.finding;
      if (!f.keyId) throw unknownFinding(command);
      const prepared = engine.prepare(
        'trail',
        { positional: [], options: { key: f.keyId, since: lookupSince(f), account: f.accountAlias } },
        requester,
      );
      await engine.start(prepared, requester);
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  actions.action(FINDING_ACTION.snooze, async ({ ack, body, action, respond, client }) => {
    await ack();
    try {
      const ref = buttonValue(action);
      const { stored, requester } = await resolveClick(body, ref);
      // Snoozing silences a security finding: approvers decide that, as they decide runs.
      await assertApprover(engine.config, deps.directory, requester.user);
      const b = body as { trigger_id?: string; message?: { ts?: string; thread_ts?: string } };
      if (!b.trigger_id) throw unknownFinding(command);
      const metadata = JSON.stringify({
        ref,
        thread: b.message?.thread_ts ?? b.message?.ts ?? null,
      });
      await client.views.open({
        trigger_id: b.trigger_id,
        // biome-ignore lint/suspicious/noExplicitAny: Slack validates the view's shape
        view: buildSnoozeModal({ ...stored.finding, index: stored.index, snooze: null }, metadata) as any,
      });
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  app.view(FINDING_ACTION.snoozeModal, async ({ ack, body, view, client }) => {
    const values = view.state.values as Record<
      string,
      Record<string, { value?: string | null; selected_option?: { value?: string } | null }>
    >;
    const reason = (values.reason?.value?.value ?? '').trim();
    const days = Number(values.duration?.value?.selected_option?.value ?? 'NaN');
    const errors: Record<string, string> = {};
    if (reason.length < 3 || reason.length > 500) errors.reason = 'Give a reason of 3 to 500 characters.';
    if (!(SNOOZE_DAYS as readonly number[]).includes(days))
      errors.duration = 'Choose one of the offered durations.';
    if (Object.keys(errors).length > 0) {
      await ack({ response_action: 'errors', errors });
      return;
    }
    await ack();
    const user = body.user.id;
    let metadata: { ref?: unknown; thread?: unknown } = {};
    try {
      metadata = JSON.parse(view.private_metadata || '{}') as typeof metadata;
    } catch {
      metadata = {};
    }
    const ref = typeof metadata.ref === 'string' ? metadata.ref : '';
    try {
      const stored = await findStoredFinding(store, ref);
      if (!stored?.finding.keyId) throw unknownFinding(command);
      // Checked again at submit: the group may have changed while the modal was open.
      await assertApprover(engine.config, deps.directory, user);
      const at = now();
      const until = at + days * 86_400_000;
      const f = stored.finding;
      await store.putSnooze({
        accountId: f.accountId,
        keyId: f.keyId as string,
        until,
        reason,
        by: user,
        at,
      });
      await audit.record({
        type: 'finding.snoozed',
        runId: stored.runId,
        actor: user,
        data: {
          account: f.accountAlias,
          accountId: f.accountId,
          keyId: f.keyId,
          userName: f.userName,
          days,
          until: new Date(until).toISOString(),
          reason,
          channel: stored.channel,
        },
      });
      const thread =
        typeof metadata.thread === 'string' && /^\d+\.\d+$/.test(metadata.thread)
          ? metadata.thread
          : undefined;
      await client.chat.postMessage({
        channel: stored.channel,
        ...(thread ? { thread_ts: thread } : {}),
        text: `:zzz: ${mentionUser(user)} snoozed \`${escapeCode(f.keyId ?? '', 32)}\` of *${escapeMrkdwn(f.userName, 64)}* in ${escapeMrkdwn(f.accountAlias, 40)} for ${days} days (until ${new Date(until).toISOString().slice(0, 10)}): ${escapeMrkdwn(reason, 500)}`,
        unfurl_links: false,
      });
    } catch (error) {
      const text = formatError(error, log, command);
      await client.chat
        .postMessage({ channel: user, text: `Your snooze was not saved. ${text}` })
        .catch((err: unknown) => log.warn({ err }, 'could not tell the user their snooze failed'));
    }
  });
}

function unknownFinding(command: string): RunStateConflictError {
  return new RunStateConflictError(
    `This finding is not known in this channel. Run \`${command} key-age\` here for a current list.`,
  );
}
