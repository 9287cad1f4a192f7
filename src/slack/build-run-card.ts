/**
 * The run card: one message per run that shows the plan (account, region, target, the exact API calls),
 * the requester and reason, the expiry, the decisions so far and the outcome, with the buttons that fit
 * its state. Buttons carry only the run id; everything else is read back from the store.
 */
import type { Plan } from '../runbooks/define-runbook.ts';
import type { RunView } from '../runbooks/engine/run-notifier.ts';
import { offeredFollowUps } from '../runbooks/resolve-follow-up.ts';
import type { RunRecord, RunState } from '../store/store.ts';
import { escapeCode, escapeMrkdwn, mentionUser, plainText } from './escape-text.ts';

/** Action ids of the card's buttons. */
export const ACTION = {
  approve: 'quell_approve',
  deny: 'quell_deny',
  undo: 'quell_undo',
  review: 'quell_review',
  /** On a partially applied card: runs the remaining changes under the same approval. */
  retry: 'quell_retry',
  /**
   * disable-key's follow-up ("Look up this key's activity"), declared in its runbook file like every
   * follow-up; named here because cards posted before follow-ups were declared carry it.
   */
  trailKey: 'quell_trail_key',
  /** On every card: exports the case file of the run's incident (its runs, decisions, calls, evidence). */
  caseFile: 'quell_case_file',
} as const;

/** A Block Kit block (kept loose: Slack validates the shape). */
export type Block = { type: string; block_id?: string; [key: string]: unknown };

const STATE_LABEL: Record<RunState, string> = {
  planning: ':hourglass_flowing_sand: Planning',
  awaiting_approval: ':raised_hand: Awaiting approval',
  approved: ':white_check_mark: Approved, starting',
  running: ':gear: Running',
  succeeded: ':white_check_mark: Succeeded',
  failed: ':x: Failed',
  denied: ':no_entry: Denied',
  expired: ':alarm_clock: Expired',
  superseded: ':arrows_counterclockwise: Superseded (the plan changed)',
  plan_failed: ':x: Could not plan',
  partial: ':warning: Partially applied',
  needs_operator: ':warning: Needs an operator (quell stopped while it ran; see the thread)',
};

/** How the card names where a request came from (a Slack request needs no note). */
const SOURCE_NOTE: Record<RunRecord['source'], string> = {
  slack: '',
  cli: ' (CLI)',
  schedule: ' (scheduled)',
};

/** Builds the card for a run in its current state. `now` is only used to word the expiry. */
export function buildRunCard(view: RunView): { text: string; blocks: Block[] } {
  const { run, decisions, runbook } = view;
  const plan = run.plan as unknown as Plan | null;
  const title =
    run.kind === 'undo' && runbook.undo !== 'irreversible'
      ? `Undo ${runbook.id}: ${runbook.undo.title}`
      : `${runbook.id}: ${runbook.title}`;
  const blocks: Block[] = [{ type: 'header', text: plainText(title) }];

  if (plan)
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*${escapeMrkdwn(plan.summary, 300)}*` } });

  const fields: string[] = [
    ...(plan?.facts ?? []).map(
      ([label, value]) => `*${escapeMrkdwn(label, 50)}*\n${escapeMrkdwn(value, 300)}`,
    ),
    `*Requested by*\n${mentionUser(run.requester)}${SOURCE_NOTE[run.source]}`,
  ];
  if (run.reason) fields.push(`*Reason*\n${escapeMrkdwn(run.reason, 500)}`);
  if (run.kind === 'undo' && run.parentRunId) fields.push(`*Undoes*\n\`${run.parentRunId}\``);
  for (let i = 0; i < fields.length; i += 10) {
    blocks.push({
      type: 'section',
      fields: fields.slice(i, i + 10).map((text) => ({ type: 'mrkdwn', text })),
    });
  }

  if (plan && plan.calls.length > 0) {
    const calls = plan.calls.map(
      (c) =>
        `${c.action} ${Object.entries(c.params)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
    );
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*API calls*\n\`\`\`${escapeCode(calls.join('\n'), 2500)}\`\`\`` },
    });
  }
  if (plan && plan.notes.length > 0) {
    blocks.push({
      type: 'context',
      elements: plan.notes.slice(0, 10).map((n) => ({ type: 'mrkdwn', text: escapeMrkdwn(n, 500) })),
    });
  }

  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: describeStatus(run, decisions) } });
  // What the run found or did, as label/value rows (a read-only runbook's findings live here).
  const resultFacts =
    (run.result as { execute?: { facts?: [string, string][] } } | null)?.execute?.facts ?? [];
  if (resultFacts.length > 0) {
    blocks.push({
      type: 'section',
      fields: resultFacts.slice(0, 10).map(([label, value]) => ({
        type: 'mrkdwn',
        text: `*${escapeMrkdwn(label, 50)}*\n${escapeMrkdwn(value, 300)}`,
      })),
    });
  }

  const buttons = buildButtons(view);
  if (buttons.length > 0) blocks.push({ type: 'actions', block_id: `run:${run.id}`, elements: buttons });
  // The footer carries the case-file button as an accessory, apart from the state's own buttons.
  blocks.push({
    type: 'section',
    block_id: `case:${run.id}`,
    text: { type: 'mrkdwn', text: `run \`${run.id}\` · ${runbook.risk}` },
    accessory: { type: 'button', action_id: ACTION.caseFile, text: plainText('Case file'), value: run.id },
  });

  const text = `${title} — ${STATE_LABEL[run.state]}${plan ? `: ${plan.summary}` : ''}`;
  return { text: escapeMrkdwn(text, 300), blocks };
}

/** What the card reads of the evidence summary the engine stores with the run. */
type EvidenceLine = {
  status?: string;
  sha256?: string;
  key?: string | null;
  problems?: string[];
  reason?: string;
};

function describeStatus(run: RunRecord, decisions: RunView['decisions']): string {
  const lines = [`*Status:* ${STATE_LABEL[run.state]}`];
  const approvals = decisions.filter((d) => d.decision === 'approve');
  const denial = decisions.find((d) => d.decision === 'deny');
  if (run.requiredApprovals > 0 && !run.breakGlass) {
    lines.push(
      `*Approvals:* ${approvals.length}/${run.requiredApprovals}${approvals.length ? ` (${approvals.map((d) => mentionUser(d.userId)).join(', ')})` : ''}`,
    );
  }
  if (denial) lines.push(`*Denied by* ${mentionUser(denial.userId)}`);
  if (run.state === 'awaiting_approval' && run.expiresAt) {
    const seconds = Math.floor(run.expiresAt / 1000);
    lines.push(
      `*Expires:* <!date^${seconds}^{date_short_pretty} {time}|${new Date(run.expiresAt).toISOString()}>`,
    );
  }
  if (run.breakGlass) {
    lines.push(
      `*Break-glass:* ran without approval — ${run.reviewState === 'reviewed' ? 'reviewed' : 'review pending'}`,
    );
  }
  const result = run.result as { execute?: { summary: string }; verify?: { summary: string } } | null;
  if (result?.execute) lines.push(`*Result:* ${escapeMrkdwn(result.execute.summary, 600)}`);
  if (result?.verify) lines.push(`*Verify:* ${escapeMrkdwn(result.verify.summary, 400)}`);
  const evidence = (run.result as { evidence?: EvidenceLine } | null)?.evidence;
  if (evidence?.status === 'captured')
    lines.push(
      `*Evidence:* captured before any change (SHA-256 \`${escapeCode(String(evidence.sha256), 64)}\`${evidence.key ? ', kept in the evidence bucket' : ''})${evidence.problems?.length ? ` — ${escapeMrkdwn(evidence.problems.join('; '), 300)}` : ''}`,
    );
  else if (evidence?.status === 'missing')
    lines.push(`:warning: *Evidence:* MISSING — ${escapeMrkdwn(String(evidence.reason), 400)}`);
  const error = run.error as { message?: string } | null;
  if (error?.message) lines.push(`*Error:* ${escapeMrkdwn(error.message, 800)}`);
  return lines.join('\n');
}

function buildButtons({ run, runbook }: RunView): Block[] {
  if (run.state === 'awaiting_approval') {
    return [
      {
        type: 'button',
        action_id: ACTION.approve,
        text: plainText('Approve'),
        style: 'primary',
        value: run.id,
      },
      {
        type: 'button',
        action_id: ACTION.deny,
        text: plainText('Deny'),
        style: 'danger',
        value: run.id,
        confirm: {
          title: plainText('Deny this run?'),
          text: plainText('A denial is final: the run will not execute.'),
          confirm: plainText('Deny'),
          deny: plainText('Cancel'),
        },
      },
    ];
  }
  const buttons: Block[] = [];
  if (run.state === 'partial') {
    buttons.push({
      type: 'button',
      action_id: ACTION.retry,
      text: plainText('Retry'),
      style: 'primary',
      value: run.id,
      confirm: {
        title: plainText('Retry what was not applied?'),
        text: plainText('The remaining changes run now, under the approval already given.'),
        confirm: plainText('Retry'),
        deny: plainText('Cancel'),
      },
    });
  }
  if (
    (run.state === 'succeeded' || run.state === 'partial') &&
    run.kind === 'run' &&
    runbook.undo !== 'irreversible'
  ) {
    buttons.push({ type: 'button', action_id: ACTION.undo, text: plainText('Undo'), value: run.id });
  }
  // The runbook's own follow-ups (each starts another runbook from this stored run).
  for (const followUp of offeredFollowUps(runbook, run)) {
    buttons.push({
      type: 'button',
      action_id: followUp.actionId,
      text: plainText(followUp.label),
      value: run.id,
    });
  }
  if (run.breakGlass && run.reviewState === 'pending') {
    buttons.push({
      type: 'button',
      action_id: ACTION.review,
      text: plainText('Mark reviewed'),
      value: run.id,
    });
  }
  return buttons;
}
