/**
 * The one place an error becomes a Slack message: quell's coded errors say what went wrong and what to
 * do; anything else becomes a short reference, and the log line carries the same reference and the cause.
 */
import { asQuellError, ErrorCode, InputInvalidError, NotAllowedError } from '../errors.ts';
import { createErrorRef, type Logger } from '../logger.ts';
import { escapeMrkdwn, mentionUser } from './escape-text.ts';

/** The message for the user; logs unexpected errors with a reference. */
export function formatError(error: unknown, log: Logger, command = '/quell'): string {
  const e = asQuellError(error);
  if (e.code === ErrorCode.Unknown || e.code === ErrorCode.Storage) {
    const ref = createErrorRef();
    log.error({ err: error, ref }, 'request failed');
    return `${escapeMrkdwn(e.message)} (reference \`${ref}\`)`;
  }
  if (e instanceof InputInvalidError) {
    const problems = e.problems.map((p) => `• ${escapeMrkdwn(p, 300)}`).join('\n');
    const usage = e.usage ? `\nUsage: \`${command} ${escapeMrkdwn(e.usage)}\`` : `\nSee \`${command} help\`.`;
    return `:warning: That did not run. ${e.problems.length > 1 ? 'Problems' : 'Problem'}:\n${problems}${usage}`;
  }
  if (e instanceof NotAllowedError && e.contacts.length > 0) {
    const who = e.contacts.map(mentionPrincipal).join(', ');
    return `:warning: ${escapeMrkdwn(e.message, 1500)}\nRefused by \`${escapeMrkdwn(e.rule, 100)}\` in quell's configuration. Who can change it: the people who maintain that file — ask ${who}.`;
  }
  return `:warning: ${escapeMrkdwn(e.message, 1500)}`;
}

/** A user (<@U…>) or user-group (<!subteam^S…>) mention, for ids of that shape only. */
export function mentionPrincipal(id: string): string {
  if (/^S[A-Z0-9]{2,20}$/.test(id)) return `<!subteam^${id}>`;
  return mentionUser(id);
}
