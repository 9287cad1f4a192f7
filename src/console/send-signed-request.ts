/**
 * What the console sends to quell's HTTP receiver in Slack's place: slash commands, button clicks,
 * modal submissions and the app_home_opened event, with Slack's payload shapes, signed with v0
 * HMAC-SHA256 exactly as Slack signs them (https://api.slack.com/authentication/verifying-requests-from-slack).
 */
import { createHmac } from 'node:crypto';

/** Where and how to send: quell's receiver URL and the signing secret it was started with. */
export interface SlackTarget {
  eventsUrl: string;
  signingSecret: string;
}

const TEAM = { id: 'T0CONSOLE', domain: 'quell-console' };

/** POSTs a signed body; returns the HTTP status and the parsed JSON answer (if any). */
export async function sendSigned(
  target: SlackTarget,
  body: string,
  contentType = 'application/x-www-form-urlencoded',
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = `v0=${createHmac('sha256', target.signingSecret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const res = await fetch(target.eventsUrl, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature,
    },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

/** A slash command's form body. */
export function slashCommandBody(opts: {
  command: string;
  text: string;
  user: string;
  channel: string;
  responseUrl: string;
  triggerId: string;
}): string {
  return new URLSearchParams({
    team_id: TEAM.id,
    team_domain: TEAM.domain,
    channel_id: opts.channel,
    channel_name: opts.channel.toLowerCase(),
    user_id: opts.user,
    user_name: opts.user.toLowerCase(),
    command: opts.command,
    text: opts.text,
    api_app_id: 'A0CONSOLE',
    response_url: opts.responseUrl,
    trigger_id: opts.triggerId,
  }).toString();
}

/** A button click: on a message (channel, ts, thread) or in the user's Home tab. */
export function blockActionsBody(opts: {
  user: string;
  actionId: string;
  blockId: string;
  value: string;
  text: string;
  triggerId: string;
  message?: { channel: string; ts: string; threadTs: string | undefined; responseUrl: string };
  homeViewId?: string;
}): string {
  const where = opts.message
    ? {
        container: {
          type: 'message',
          message_ts: opts.message.ts,
          channel_id: opts.message.channel,
          is_ephemeral: false,
        },
        channel: { id: opts.message.channel, name: opts.message.channel.toLowerCase() },
        message: {
          ts: opts.message.ts,
          text: '',
          ...(opts.message.threadTs ? { thread_ts: opts.message.threadTs } : {}),
        },
        response_url: opts.message.responseUrl,
      }
    : {
        container: { type: 'view', view_id: opts.homeViewId ?? 'V0HOME' },
        view: {
          id: opts.homeViewId ?? 'V0HOME',
          type: 'home',
          callback_id: '',
          private_metadata: '',
          state: { values: {} },
        },
      };
  const payload = {
    type: 'block_actions',
    team: TEAM,
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: TEAM.id },
    api_app_id: 'A0CONSOLE',
    trigger_id: opts.triggerId,
    ...where,
    actions: [
      {
        action_id: opts.actionId,
        block_id: opts.blockId,
        value: opts.value,
        type: 'button',
        action_ts: `${Date.now() / 1000}`,
        text: { type: 'plain_text', text: opts.text },
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Values of a submitted modal: block id → action id → a typed value or a selected option. */
export type ViewStateValues = Record<
  string,
  Record<string, { type: string; value?: string; selected_option?: { value: string } }>
>;

/** A modal submission. */
export function viewSubmissionBody(opts: {
  user: string;
  viewId: string;
  callbackId: string;
  privateMetadata: string;
  values: ViewStateValues;
  triggerId: string;
}): string {
  const payload = {
    type: 'view_submission',
    team: TEAM,
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: TEAM.id },
    api_app_id: 'A0CONSOLE',
    trigger_id: opts.triggerId,
    view: {
      id: opts.viewId,
      type: 'modal',
      callback_id: opts.callbackId,
      private_metadata: opts.privateMetadata,
      state: { values: opts.values },
      hash: '1.console',
    },
    response_urls: [],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** The app_home_opened event (Events API, JSON). */
export function appHomeOpenedBody(user: string): string {
  return JSON.stringify({
    team_id: TEAM.id,
    api_app_id: 'A0CONSOLE',
    type: 'event_callback',
    event_id: `Ev${Date.now()}${Math.floor(Math.random() * 1e6)}`,
    event_time: Math.floor(Date.now() / 1000),
    event: {
      type: 'app_home_opened',
      user,
      channel: `D${user.slice(1)}`,
      tab: 'home',
      event_ts: `${Date.now() / 1000}`,
    },
  });
}
