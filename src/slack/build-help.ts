/** The `help` reply: only the runbooks this user may run in this channel, with their exact forms. */
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import type { Block } from './build-run-card.ts';
import { escapeMrkdwn } from './escape-text.ts';
import { mentionPrincipal } from './format-error.ts';

/** Where help is asked, for the wording of what is (not) allowed. */
export interface HelpContext {
  channel: string;
  /** Whether the channel has an entry under `channels`. */
  listed: boolean;
  /** The account aliases the channel's guardrail allows. */
  accounts: readonly string[];
  /** Who can change the configuration (see policyContacts). */
  contacts: readonly string[];
}

/** Builds the help message for a channel. */
export function buildHelp(
  command: string,
  runbooks: readonly AnyRunbook[],
  context?: HelpContext,
): { text: string; blocks: Block[] } {
  const who =
    context && context.contacts.length > 0
      ? ` Who can change it: the people who maintain quell's configuration — ask ${context.contacts.map(mentionPrincipal).join(', ')}.`
      : '';
  if (runbooks.length === 0) {
    const text =
      context?.listed === true
        ? `Nothing here that you may run: \`channels.${context.channel}\` allows runbooks that \`approvals.runbooks.<id>.requesters\` restricts to other people.${who}`
        : `No runbook may run in this ${context?.channel.startsWith('D') ? 'direct message' : 'channel'}: it has no entry under \`channels\` in the quell configuration (nothing runs where nothing is configured; a direct message counts as a channel of its own). Use an incident channel, or ask your security lead to add this one.${who}`;
    return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
  }
  const accounts =
    context && context.accounts.length > 0
      ? ` on ${context.accounts.map((a) => `\`${escapeMrkdwn(a, 40)}\``).join(', ')}`
      : '';
  const lines = runbooks.map(
    (r) => `• \`${command} ${escapeMrkdwn(r.usage)}\` — ${escapeMrkdwn(r.description)} _(${r.risk})_`,
  );
  lines.push(`• \`${command} status <run-id>\` — show a run requested in this channel`);
  lines.push(
    `• \`${command} case <run-id or thread ts>\` — the case file of a thread here: runs, decisions, AWS calls, evidence, audit chain`,
  );
  lines.push(`• \`${command} help\` — this list`);
  const text = `*What you can run here*${accounts}\n${lines.join('\n')}`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}
