/**
 * Payload factories for the Slack surfaces beyond slash commands and card buttons: a button in a
 * message thread (with a trigger id, for modals), a button in the Home tab, a modal submission and the
 * app_home_opened event. Sent signed to quell's HTTP receiver like every other test request.
 */
import { postSigned } from './slack-requests.ts';

type Sent = ReturnType<typeof postSigned>;

/** A block_actions click on a button of a channel message (optionally inside a thread). */
export function messageButton(
  baseUrl: string,
  opts: {
    actionId: string;
    value: string;
    user: string;
    channel: string;
    messageTs?: string;
    threadTs?: string;
    responseUrl?: string;
    timestamp?: number;
  },
): Sent {
  const ts = opts.messageTs ?? '1700000000.000100';
  const payload = {
    type: 'block_actions',
    team: { id: 'T0TEAM', domain: 'acme' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0TEAM' },
    api_app_id: 'A0QUELL',
    token: 'legacy-verification-token-unused',
    container: { type: 'message', message_ts: ts, channel_id: opts.channel, is_ephemeral: false },
    trigger_id: `trigger-${opts.user}-${Date.now()}`,
    channel: { id: opts.channel, name: 'security' },
    message: { ts, text: 'reminder', ...(opts.threadTs ? { thread_ts: opts.threadTs } : {}) },
    response_url: opts.responseUrl ?? 'http://127.0.0.1:9/unused',
    actions: [
      {
        action_id: opts.actionId,
        block_id: `finding:${opts.value}`,
        value: opts.value,
        type: 'button',
        action_ts: `${Date.now() / 1000}`,
        text: { type: 'plain_text', text: 'button' },
      },
    ],
  };
  return postSigned(baseUrl, new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), {
    ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
  });
}

/** A block_actions click on a button of the user's Home tab (no channel, no response URL). */
export function homeButton(
  baseUrl: string,
  opts: { actionId: string; value: string; user: string; timestamp?: number },
): Sent {
  const payload = {
    type: 'block_actions',
    team: { id: 'T0TEAM', domain: 'acme' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0TEAM' },
    api_app_id: 'A0QUELL',
    token: 'legacy-verification-token-unused',
    container: { type: 'view', view_id: 'V0HOME' },
    trigger_id: `trigger-${opts.user}`,
    view: { id: 'V0HOME', type: 'home', callback_id: '', private_metadata: '', state: { values: {} } },
    actions: [
      {
        action_id: opts.actionId,
        block_id: `home:${opts.value}`,
        value: opts.value,
        type: 'button',
        action_ts: `${Date.now() / 1000}`,
        text: { type: 'plain_text', text: 'button' },
      },
    ],
  };
  return postSigned(baseUrl, new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), {
    ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
  });
}

/** A modal submitted with `values` (block id → action id → value or selected option). */
export function viewSubmission(
  baseUrl: string,
  opts: {
    callbackId: string;
    user: string;
    privateMetadata: string;
    values: Record<
      string,
      Record<string, { type: string; value?: string; selected_option?: { value: string } }>
    >;
    timestamp?: number;
  },
): Sent {
  const payload = {
    type: 'view_submission',
    team: { id: 'T0TEAM', domain: 'acme' },
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0TEAM' },
    api_app_id: 'A0QUELL',
    token: 'legacy-verification-token-unused',
    trigger_id: `trigger-${opts.user}`,
    view: {
      id: 'V0MODAL',
      type: 'modal',
      callback_id: opts.callbackId,
      private_metadata: opts.privateMetadata,
      state: { values: opts.values },
      hash: '1.abc',
    },
    response_urls: [],
  };
  return postSigned(baseUrl, new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), {
    ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
  });
}

/** The app_home_opened event (Events API, JSON body). */
export function appHomeOpened(baseUrl: string, opts: { user: string; timestamp?: number }): Sent {
  const body = JSON.stringify({
    token: 'legacy-verification-token-unused',
    team_id: 'T0TEAM',
    api_app_id: 'A0QUELL',
    type: 'event_callback',
    event_id: `Ev${Date.now()}${Math.floor(Math.random() * 1000)}`,
    event_time: Math.floor(Date.now() / 1000),
    event: {
      type: 'app_home_opened',
      user: opts.user,
      channel: `D${opts.user.slice(1)}`,
      tab: 'home',
      event_ts: `${Date.now() / 1000}`,
    },
  });
  return postSigned(baseUrl, body, {
    headers: { 'content-type': 'application/json' },
    ...(opts.timestamp ? { timestamp: opts.timestamp } : {}),
  });
}
