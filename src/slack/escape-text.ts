/**
 * Untrusted text (from AWS or users) on its way into Slack. Escaping `&`, `<` and `>` is what Slack
 * documents for mrkdwn (api.slack.com/reference/surfaces/formatting#escaping): with them escaped no
 * `<!channel>`, `<@U…>` mention or `<https://…|link>` can be injected.
 */

/** Escapes text for a mrkdwn field and caps its length. */
export function escapeMrkdwn(text: string, max = 1500): string {
  const capped = text.length > max ? `${text.slice(0, max)}…` : text;
  return capped.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes text for an inline code span: no backticks can close it early. */
export function escapeCode(text: string, max = 500): string {
  return escapeMrkdwn(text.replace(/`/g, "'"), max);
}

/** Plain-text fields are not parsed for mentions, but Slack caps their length. */
export function plainText(text: string, max = 150): { type: 'plain_text'; text: string; emoji: boolean } {
  return { type: 'plain_text', text: text.length > max ? `${text.slice(0, max - 1)}…` : text, emoji: true };
}

/** A user mention, only for ids that have the shape of a Slack user id. */
export function mentionUser(userId: string): string {
  return /^[UW][A-Z0-9]{2,20}$/.test(userId) ? `<@${userId}>` : `\`${escapeCode(userId, 64)}\``;
}
