/**
 * The buttons of security-finding cards. A button carries only `<finding ref>.<resource index>`; the
 * handler reads the finding back from the store, checks the click comes from the finding's channel and
 * that the button is the one the resource's runbook has, and then goes through the same path as a typed
 * command: `engine.prepare` (the runbook's input schema, the channel's guardrail) and `engine.start`
 * (requesters, approvals), with the clicker as requester. The run's card is posted in the channel, and a
 * line in the finding's thread links the two.
 */
import type { webApi } from '@slack/bolt';
import type { AuditLog } from '../audit/audit-log.ts';
import { RunStateConflictError } from '../errors.ts';
import {
  buildCommandArgs,
  type FindingCommandArgs,
  listOfferedActions,
  parseTargetRef,
  SecurityFindingSchema,
  TARGET_RUNBOOK,
} from '../findings/security-finding.ts';
import type { Logger } from '../logger.ts';
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import type { Store } from '../store/store.ts';
import type { ActionRouter } from './action-router.ts';
import { SECURITY_FINDING_ACTION } from './build-security-finding-card.ts';
import { escapeCode, mentionUser } from './escape-text.ts';
import { formatError } from './format-error.ts';
import type { SlackRequester } from './slack-notifier.ts';
import { tellClicker } from './tell-clicker.ts';

/** What the handlers need. */
export interface SecurityFindingHandlerDeps {
  engine: Engine;
  store: Store;
  audit: AuditLog;
  client: webApi.WebClient;
  log: Logger;
}

/**
 * The arguments the runbook takes: every runbook takes `account=`, and the resource's runbook takes what
 * the finding fills in, except perhaps `reason=` (a runbook that takes none gets none).
 */
export function fitArgs(runbook: Pick<AnyRunbook, 'input'>, args: FindingCommandArgs): FindingCommandArgs {
  const parsed = runbook.input.safeParse(args);
  if (parsed.success || !('reason' in args.options)) return args;
  const refusesReason = parsed.error.issues.some(
    (issue) => issue.code === 'unrecognized_keys' && issue.keys.includes('reason'),
  );
  if (!refusesReason) return args;
  const { reason: _reason, ...options } = args.options;
  return { positional: args.positional, options };
}

/** Registers one handler per finding button. */
export function registerSecurityFindingHandlers(
  actions: ActionRouter,
  deps: SecurityFindingHandlerDeps,
): void {
  const { engine, store, audit, client, log } = deps;
  const command = engine.config.slack.command;
  for (const [runbookId, actionId] of Object.entries(SECURITY_FINDING_ACTION)) {
    actions.action(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const b = body as { user: { id: string }; channel?: { id?: string }; response_url?: string };
      const channel = b.channel?.id ?? '';
      const requester: SlackRequester = {
        user: b.user.id,
        channel,
        source: 'slack',
        responseUrl: typeof b.response_url === 'string' ? b.response_url : undefined,
      };
      const value = (action as { value?: unknown }).value;
      const raw = typeof value === 'string' ? value : '';
      try {
        const parsedRef = parseTargetRef(raw);
        const stored = parsedRef ? await store.getFindingByRef(parsedRef.ref) : undefined;
        const finding = stored ? SecurityFindingSchema.safeParse(stored.finding) : undefined;
        const target = parsedRef && finding?.success ? finding.data.targets[parsedRef.index] : undefined;
        const reason = !stored
          ? 'unknown finding'
          : stored.channel !== channel
            ? 'finding of another channel'
            : !target || TARGET_RUNBOOK[target.kind] !== runbookId
              ? 'no such resource on the finding'
              : undefined;
        if (reason || !stored || !finding?.success || !parsedRef) {
          await audit.record({
            type: 'command.rejected',
            actor: requester.user,
            data: { channel, reason: reason ?? 'unknown finding', ref: raw.slice(0, 40), runbook: runbookId },
          });
          throw unknownFinding();
        }
        // Offered now? The runbook may have been removed, the account or the guardrail changed since.
        const offered = listOfferedActions(
          finding.data,
          engine.config,
          engine.runbooks.map((r) => r.id),
          channel,
        ).find((a) => a.index === parsedRef.index);
        const runbook = engine.runbooks.find((r) => r.id === runbookId);
        if (!offered || !runbook)
          throw new RunStateConflictError(
            `\`${runbookId}\` cannot be started from this finding here: the runbook is not installed, the finding's account is not configured, or this channel may not run it.`,
          );
        const args = fitArgs(runbook, buildCommandArgs(finding.data, stored.ref, offered));
        const prepared = engine.prepare(runbookId, args, requester);
        const run = await engine.start(prepared, requester);
        if (run && stored.messageTs) {
          await client.chat
            .postMessage({
              channel: stored.channel,
              thread_ts: stored.messageTs,
              text: `${mentionUser(requester.user)} started \`${runbookId}\` (run \`${escapeCode(run.id, 20)}\`) from this finding.`,
              unfurl_links: false,
            })
            .catch((err: unknown) =>
              log.warn({ err, runId: run.id }, 'could not link the run in the finding thread'),
            );
        }
      } catch (error) {
        await tellClicker(respond, formatError(error, log, command), log);
      }
    });
  }

  function unknownFinding(): RunStateConflictError {
    return new RunStateConflictError(
      'This finding is not known in this channel: its buttons only work on its card, where it was posted.',
    );
  }
}
