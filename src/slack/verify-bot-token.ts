/**
 * Checks the bot token with one `auth.test` before the Bolt app is built. Bolt would otherwise call it
 * from its constructor and leave the rejection unhandled, so that a revoked token or an unreachable
 * Slack crashed the process with a stack trace seconds after "quell started".
 */
import { webApi } from '@slack/bolt';
import { SlackUnavailableError } from '../errors.ts';

/** The bot's identity, which Bolt takes instead of calling auth.test itself. */
export interface BotIdentity {
  botId: string;
  botUserId: string;
}

/** Platform errors that mean the token itself is wrong, revoked or its app uninstalled. */
const TOKEN_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
]);

/**
 * Calls auth.test with the bot token; resolves with the bot's ids or rejects with a one-line
 * SlackUnavailableError naming what to check (never the token).
 */
export async function verifyBotToken(
  token: string,
  options: { slackApiUrl?: string | undefined; logger: webApi.Logger; retryConfig?: webApi.RetryOptions },
): Promise<BotIdentity> {
  const client = new webApi.WebClient(token, {
    ...(options.slackApiUrl ? { slackApiUrl: options.slackApiUrl } : {}),
    logger: options.logger,
    ...(options.retryConfig ? { retryConfig: options.retryConfig } : {}),
  });
  let result: webApi.AuthTestResponse;
  try {
    result = await client.auth.test();
  } catch (error) {
    throw new SlackUnavailableError(describeFailure(error, options.slackApiUrl), { cause: error });
  }
  if (!result.bot_id || !result.user_id) {
    throw new SlackUnavailableError(
      'SLACK_BOT_TOKEN is not a bot token (auth.test names no bot): use the Bot User OAuth Token (xoxb-…) from api.slack.com/apps → your app → OAuth & Permissions.',
    );
  }
  return { botId: result.bot_id, botUserId: result.user_id };
}

function describeFailure(error: unknown, slackApiUrl: string | undefined): string {
  const where = slackApiUrl ? `SLACK_API_URL (${slackApiUrl})` : 'https://slack.com/api/';
  const e = error as {
    code?: string;
    data?: { error?: string };
    original?: { code?: string; message?: string; cause?: { code?: string } };
  };
  if (e.code === webApi.ErrorCode.PlatformError) {
    const code = e.data?.error ?? 'unknown_error';
    if (TOKEN_ERRORS.has(code))
      return `Slack refused SLACK_BOT_TOKEN (${code}): check the Bot User OAuth Token at api.slack.com/apps → your app → OAuth & Permissions, and that the app is still installed in the workspace.`;
    return `Slack's auth.test answered ${code}: check SLACK_BOT_TOKEN and the app's installation at api.slack.com/apps.`;
  }
  if (e.code === webApi.ErrorCode.RequestError) {
    // fetch wraps the socket error (ECONNREFUSED, ENOTFOUND, …) as the cause of "fetch failed".
    const reason = e.original?.cause?.code ?? e.original?.code ?? e.original?.message ?? 'no answer';
    return `Could not reach the Slack Web API at ${where} (${reason}): check SLACK_API_URL (leave it unset for Slack itself) and this host's network access to Slack (proxy, firewall, DNS).`;
  }
  if (e.code === webApi.ErrorCode.HTTPError) {
    const status = (error as { statusCode?: number }).statusCode ?? 'unknown';
    return `The Slack Web API at ${where} answered HTTP ${status} to auth.test: check SLACK_API_URL (leave it unset for Slack itself) and whether Slack is up (status.slack.com).`;
  }
  return `Could not check SLACK_BOT_TOKEN with Slack's auth.test at ${where}: check SLACK_API_URL and this host's network access to Slack.`;
}
