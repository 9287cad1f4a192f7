/**
 * Signed Slack requests: small payload factories for slash commands and button clicks, signed with
 * v0 HMAC-SHA256 exactly as Slack signs them, and sent to quell's HTTP receiver.
 */
import { createHmac } from 'node:crypto';

export const SIGNING_SECRET = 'a3f1c0de5b7e4f2a9c8d6e5f4a3b2c1d';

/** A slash-command body. */
export function slashCommand(opts: {
  text: string;
  user: string;
  channel: string;
  command?: string;
  responseUrl?: string;
}): string {
  return new URLSearchParams({
    token: 'legacy-verification-token-unused',
    team_id: 'T0TEAM',
    team_domain: 'acme',
    channel_id: opts.channel,
    channel_name: 'incident',
    user_id: opts.user,
    user_name: opts.user.toLowerCase(),
    command: opts.command ?? '/quell',
    text: opts.text,
    api_app_id: 'A0QUELL',
    response_url: opts.responseUrl ?? 'http://127.0.0.1:9/unused',
    trigger_id: '123.456.abc',
  }).toString();
}

/** A block_actions body for a click on the card's button. */
export function buttonClick(opts: {
  actionId: string;
  value: string;
  user: string;
  channel: string;
  messageTs?: string;
  responseUrl?: string;
}): string {
  const payload = {
    type: 'block_actions',
    team: { id: 'T0TEAM', domain: 'acme' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0TEAM' },
    api_app_id: 'A0QUELL',
    token: 'legacy-verification-token-unused',
    container: {
      type: 'message',
      message_ts: opts.messageTs ?? '1.0',
      channel_id: opts.channel,
      is_ephemeral: false,
    },
    trigger_id: '123.456.abc',
    channel: { id: opts.channel, name: 'incident' },
    message: { ts: opts.messageTs ?? '1.0', text: 'card' },
    response_url: opts.responseUrl ?? 'http://127.0.0.1:9/unused',
    actions: [
      {
        action_id: opts.actionId,
        block_id: 'run',
        value: opts.value,
        type: 'button',
        action_ts: `${Date.now() / 1000}`,
        text: { type: 'plain_text', text: 'Approve' },
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Signature headers for a body at a given time (seconds). */
export function sign(
  body: string,
  opts: { secret?: string; timestamp?: number } = {},
): Record<string, string> {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = `v0=${createHmac('sha256', opts.secret ?? SIGNING_SECRET)
    .update(`v0:${timestamp}:${body}`)
    .digest('hex')}`;
  return {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': signature,
  };
}

/** POSTs a signed body to `/slack/events`; returns status and body text. */
export async function postSigned(
  baseUrl: string,
  body: string,
  opts: { secret?: string; timestamp?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string; json: Record<string, unknown> | undefined }> {
  const res = await fetch(`${baseUrl}/slack/events`, {
    method: 'POST',
    headers: { ...sign(body, opts), ...opts.headers },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}
