/**
 * The Slack surface: the slash command and the card's buttons. Every handler acknowledges first (bad
 * input is answered in the acknowledgement itself, which needs no I/O); planning, approvals and AWS
 * work happen after, with progress in the run's thread.
 */

import type { App } from '@slack/bolt';
import type { AuditLog } from '../audit/audit-log.ts';
import { QuellError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { parseCommandText } from '../runbooks/engine/command-grammar.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import { listFollowUps, resolveFollowUp } from '../runbooks/resolve-follow-up.ts';
import type { ActionRouter } from './action-router.ts';
import { buildHelp } from './build-help.ts';
import { ACTION, buildRunCard } from './build-run-card.ts';
import { formatError } from './format-error.ts';
import { helpContext, listRunnableRunbooks } from './list-runnable-runbooks.ts';
import type { SlackRequester } from './slack-notifier.ts';
import { tellClicker } from './tell-clicker.ts';

/** Wires the command and button handlers onto a Bolt app. */
export function registerHandlers(
  app: App,
  actions: ActionRouter,
  deps: { engine: Engine; audit: AuditLog; log: Logger },
): void {
  const { engine, audit, log } = deps;
  const command = engine.config.slack.command;

  app.command(command, async ({ command: cmd, ack, respond }) => {
    const requester: SlackRequester = {
      user: cmd.user_id,
      channel: cmd.channel_id,
      source: 'slack',
      responseUrl: cmd.response_url,
    };
    let parsed: ReturnType<typeof parseCommandText>;
    try {
      parsed = parseCommandText(cmd.text ?? '');
    } catch (error) {
      await ack({ response_type: 'ephemeral', text: formatError(error, log, command) });
      recordRejection(audit, log, requester, cmd.text ?? '', error);
      return;
    }

    if (parsed.name === 'help') {
      await ack({
        response_type: 'ephemeral',
        ...buildHelp(
          command,
          await listRunnableRunbooks(engine, cmd.user_id, cmd.channel_id),
          helpContext(engine, cmd.channel_id),
        ),
      });
      return;
    }

    if (parsed.name === 'status') {
      const runId = parsed.args.positional[0] ?? '';
      await ack({
        response_type: 'ephemeral',
        text: `Looking up \`${runId.replace(/[^a-z0-9]/g, '').slice(0, 20)}\`…`,
      });
      try {
        const card = buildRunCard(await engine.view(runId, cmd.channel_id));
        await respond({ response_type: 'ephemeral', replace_original: true, ...card });
      } catch (error) {
        await respond({
          response_type: 'ephemeral',
          replace_original: true,
          text: formatError(error, log, command),
        });
      }
      return;
    }

    if (parsed.name === 'case') {
      const reference = parsed.args.positional[0] ?? '';
      await ack({
        response_type: 'ephemeral',
        text: `Building the case file of \`${reference.replace(/[^a-z0-9.]/g, '').slice(0, 20)}\`… It will be attached to the run's thread.`,
      });
      void exportCaseFor(reference, requester, respond);
      return;
    }

    let prepared: ReturnType<Engine['prepare']>;
    try {
      prepared = engine.prepare(parsed.name, parsed.args, requester);
    } catch (error) {
      await ack({ response_type: 'ephemeral', text: formatError(error, log, command) });
      recordRejection(audit, log, requester, cmd.text ?? '', error);
      return;
    }
    await ack({
      response_type: 'ephemeral',
      text: `Planning \`${prepared.runbook.id}\`… ${prepared.runbook.risk === 'read-only' ? 'The result' : 'The plan and its approval buttons'} will appear in this channel.`,
    });
    void engine.start(prepared, requester).catch(async (error: unknown) => {
      // Failed before the run could even be recorded (the store is unreachable, say): nothing runs, and
      // the requester hears why instead of waiting on "Planning…".
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: formatError(error, log, command),
      }).catch((err: unknown) =>
        log.warn({ err }, 'could not tell the requester that the run could not start'),
      );
    });
  });

  /** Exports a case and tells the requester where it went (or why not), privately. */
  const exportCaseFor = async (
    reference: string,
    requester: SlackRequester,
    respond: (message: {
      response_type: 'ephemeral';
      replace_original: boolean;
      text: string;
    }) => Promise<unknown>,
  ) => {
    try {
      const { root, runs, attached } = await engine.exportCase(reference, requester);
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: attached
          ? `Case file of \`${root.id}\` (${runs.length} run${runs.length === 1 ? '' : 's'}) attached to its thread.`
          : `The case file of \`${root.id}\` could not be attached to its thread; see the audit log.`,
      });
    } catch (error) {
      await respond({
        response_type: 'ephemeral',
        replace_original: false,
        text: formatError(error, log, command),
      }).catch((err: unknown) =>
        log.warn({ err }, 'could not tell the requester why the case file was refused'),
      );
    }
  };

  actions.action(ACTION.caseFile, async ({ ack, body, action, respond }) => {
    await ack();
    const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
    const requester: SlackRequester = {
      user: body.user.id,
      channel: body.channel?.id ?? '',
      source: 'slack',
    };
    await exportCaseFor(runId, requester, (message) => tellClicker(respond, message.text, log));
  });

  const onDecision = (decision: 'approve' | 'deny') =>
    (async ({ ack, body, action, respond }) => {
      await ack();
      const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      const channel = body.channel?.id ?? '';
      try {
        await engine.decide(runId, body.user.id, decision, channel);
      } catch (error) {
        await tellClicker(respond, formatError(error, log, command), log);
      }
    }) satisfies Parameters<App['action']>[1];

  actions.action(ACTION.approve, onDecision('approve'));
  actions.action(ACTION.deny, onDecision('deny'));

  actions.action(ACTION.undo, async ({ ack, body, action, respond }) => {
    await ack();
    const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
    try {
      await engine.requestUndo(runId, {
        user: body.user.id,
        channel: body.channel?.id ?? '',
        source: 'slack',
      });
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  actions.action(ACTION.review, async ({ ack, body, action, respond }) => {
    await ack();
    const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
    try {
      await engine.review(runId, body.user.id, body.channel?.id ?? '');
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  actions.action(ACTION.retry, async ({ ack, body, action, respond }) => {
    await ack();
    const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
    try {
      await engine.retry(runId, body.user.id, body.channel?.id ?? '');
    } catch (error) {
      await tellClicker(respond, formatError(error, log, command), log);
    }
  });

  // The runbooks' follow-up buttons: the arguments come from the stored run, and the new run goes
  // through the same guardrails as the command typed by the clicker.
  for (const { followUp } of listFollowUps(engine.runbooks)) {
    actions.action(followUp.actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      const requester: SlackRequester = {
        user: body.user.id,
        channel: body.channel?.id ?? '',
        source: 'slack',
        responseUrl:
          'response_url' in body && typeof body.response_url === 'string' ? body.response_url : undefined,
      };
      try {
        const { run } = await engine.view(runId, requester.channel);
        const next = resolveFollowUp(engine.runbooks, followUp.actionId, run);
        const prepared = engine.prepare(next.runbook, next.args, requester);
        await engine.start(prepared, requester);
      } catch (error) {
        await tellClicker(respond, formatError(error, log, command), log);
      }
    });
  }
}

function recordRejection(
  audit: AuditLog,
  log: Logger,
  requester: SlackRequester,
  text: string,
  error: unknown,
): void {
  const code = error instanceof QuellError ? error.code : 'unknown';
  audit
    .record({
      type: 'command.rejected',
      actor: requester.user,
      data: { channel: requester.channel, text: text.slice(0, 300), length: text.length, code },
    })
    .catch((err: unknown) => log.error({ err }, 'could not audit a rejected command'));
}
