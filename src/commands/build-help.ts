/** The `help` reply: only the runbooks this user may run in this channel, with their exact forms. */
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import type { Block } from './build-run-card.ts';
import { escapeMrkdwn } from './escape-text.ts';

/** Builds the help message for a channel. */
export function buildHelp(
  command: string,
  runbooks: readonly AnyRunbook[],
): { text: string; blocks: Block[] } {
  if (runbooks.length === 0) {
    const text =
      'No runbook may run in this channel: it has no entry under `channels` in the quell configuration (nothing runs where nothing is configured). Use an incident channel, or ask your security lead to add this one.';
    return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
  }
  const lines = runbooks.map(
    (r) => `• \`${command} ${escapeMrkdwn(r.usage)}\` — ${escapeMrkdwn(r.description)} _(${r.risk})_`,
  );
  lines.push(`• \`${command} status <run-id>\` — show a run requested in this channel`);
  lines.push(`• \`${command} help\` — this list`);
  const text = `*What you can run here*\n${lines.join('\n')}`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
}
