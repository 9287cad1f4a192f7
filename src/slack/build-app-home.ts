/**
 * The bot's Home tab as a pure builder: the requests waiting for the viewer's approval (with the
 * buttons), the viewer's recent runs, the break-glass runs waiting for a review, and the latest
 * credential-age reminder of each schedule. Slack allows 100 blocks in a Home view
 * (api.slack.com/reference/surfaces/views): each list is capped and says how many it leaves out.
 */
import type { Plan } from '../runbooks/define-runbook.ts';
import type { RunRecord, RunState } from '../store/store.ts';
import type { Block } from './build-run-card.ts';
import { escapeCode, escapeMrkdwn, mentionUser, plainText } from './escape-text.ts';

/** Action ids of the Home tab's buttons (they carry the run id only). */
export const HOME_ACTION = {
  approve: 'quell_home_approve',
  deny: 'quell_home_deny',
  review: 'quell_home_review',
} as const;

/** The latest run of one reminder schedule, as its stored summary says. */
export interface ReminderSummaryView {
  schedule: string;
  cron: string;
  channel: string;
  at: number | null;
  findings: number | null;
  snoozed: number | null;
  counts: Record<string, number>;
  failedAccounts: string[];
  /** The slot is claimed but nothing is recorded as posted (running now, or failed and awaiting retry). */
  pending: boolean;
}

/** What the Home tab shows. */
export interface AppHomeInput {
  viewer: string;
  isApprover: boolean;
  awaitingViewer: RunRecord[];
  recentRuns: RunRecord[];
  awaitingReview: RunRecord[];
  reminders: ReminderSummaryView[];
  /** A line at the top (the outcome of the last click), as mrkdwn quell built (escaped already). */
  notice?: string | undefined;
  command: string;
}

const MAX_PER_LIST = 10;

const STATE: Record<RunState, string> = {
  planning: 'planning',
  awaiting_approval: 'awaiting approval',
  approved: 'approved',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  denied: 'denied',
  expired: 'expired',
  superseded: 'superseded',
  plan_failed: 'could not plan',
  partial: 'partially applied',
  needs_operator: 'needs an operator',
};

function stateLabel(state: RunState): string {
  return STATE[state];
}

function summaryOf(run: RunRecord): string {
  const plan = run.plan as unknown as Plan | null;
  return plan?.summary ?? run.runbook;
}

function where(run: RunRecord): string {
  const place =
    run.source === 'cli' ? 'the CLI' : /^[CGD][A-Z0-9]+$/.test(run.channel) ? `<#${run.channel}>` : '';
  const account = run.accountAlias ? ` · ${escapeMrkdwn(run.accountAlias, 40)}` : '';
  return `${place}${account}`;
}

function when(ms: number): string {
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${new Date(ms).toISOString()}>`;
}

function section(text: string): Block {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

function more(total: number, shown: number, what: string): Block[] {
  return total > shown
    ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `…and ${total - shown} more ${what}.` }] }]
    : [];
}

/** Builds the Home view. */
export function buildAppHome(input: AppHomeInput): { type: 'home'; blocks: Block[] } {
  const blocks: Block[] = [{ type: 'header', text: plainText('quell') }];
  if (input.notice) blocks.push(section(input.notice.slice(0, 2900)));

  blocks.push({ type: 'divider' }, section('*Waiting for your approval*'));
  if (!input.isApprover) {
    blocks.push({
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: 'You are not an approver (`approvals.approvers` in the configuration).' },
      ],
    });
  } else if (input.awaitingViewer.length === 0) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: 'Nothing waits for you.' }] });
  }
  for (const run of input.awaitingViewer.slice(0, MAX_PER_LIST)) {
    blocks.push(
      section(
        `*${escapeMrkdwn(run.runbook, 40)}* · ${escapeMrkdwn(summaryOf(run), 300)}\nRequested by ${mentionUser(run.requester)} in ${where(run)}${run.reason ? ` — ${escapeMrkdwn(run.reason, 200)}` : ''}${run.expiresAt ? ` · expires ${when(run.expiresAt)}` : ''} · \`${run.id}\``,
      ),
      {
        type: 'actions',
        block_id: `home:${run.id}`,
        elements: [
          {
            type: 'button',
            action_id: HOME_ACTION.approve,
            text: plainText('Approve'),
            style: 'primary',
            value: run.id,
          },
          {
            type: 'button',
            action_id: HOME_ACTION.deny,
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
        ],
      },
    );
  }
  blocks.push(
    ...more(input.awaitingViewer.length, MAX_PER_LIST, 'requests (see the channels they were made in)'),
  );

  if (input.isApprover) {
    blocks.push({ type: 'divider' }, section('*Break-glass runs waiting for a review*'));
    if (input.awaitingReview.length === 0)
      blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: 'None.' }] });
    for (const run of input.awaitingReview.slice(0, MAX_PER_LIST)) {
      blocks.push({
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*${escapeMrkdwn(run.runbook, 40)}* · ${escapeMrkdwn(summaryOf(run), 300)} · ${stateLabel(run.state)}\nRun without approval by ${mentionUser(run.requester)} from ${where(run)} · ${when(run.createdAt)} · \`${run.id}\``,
        },
        accessory: {
          type: 'button',
          action_id: HOME_ACTION.review,
          text: plainText('Mark reviewed'),
          value: run.id,
        },
      });
    }
    blocks.push(...more(input.awaitingReview.length, MAX_PER_LIST, 'runs to review'));
  }

  blocks.push({ type: 'divider' }, section('*Your recent runs*'));
  if (input.recentRuns.length === 0)
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `None yet. Type \`${input.command} help\` in a channel to see what you can run there.`,
        },
      ],
    });
  for (const run of input.recentRuns.slice(0, MAX_PER_LIST)) {
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `\`${run.id}\` *${escapeMrkdwn(run.runbook, 40)}* · ${stateLabel(run.state)}${run.breakGlass ? ` · break-glass (${run.reviewState === 'reviewed' ? 'reviewed' : 'review pending'})` : ''} · ${where(run)} · ${when(run.createdAt)}\n${escapeMrkdwn(summaryOf(run), 300)}`,
        },
      ],
    });
  }

  blocks.push({ type: 'divider' }, section('*Credential-age reminders*'));
  if (input.reminders.length === 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: 'No reminder is configured (`reminders` in the configuration).' }],
    });
  for (const r of input.reminders) {
    let text: string;
    if (r.at === null) text = 'has not run yet';
    else if (r.pending) text = `started ${when(r.at)}, not posted yet`;
    else {
      const counts = Object.entries(r.counts)
        .map(([alias, n]) => `${escapeMrkdwn(alias, 40)}: ${n < 0 ? 'unreadable' : n}`)
        .join(' · ');
      text = `${when(r.at)}: *${r.findings ?? 0} key${r.findings === 1 ? '' : 's'} to look at*${r.snoozed ? ` (${r.snoozed} snoozed)` : ''}${counts ? ` — ${counts}` : ''}`;
    }
    blocks.push(section(`\`${escapeCode(r.cron, 40)}\` in <#${r.channel}> · ${text}`));
  }
  return { type: 'home', blocks: blocks.slice(0, 100) };
}
