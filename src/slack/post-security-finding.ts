/**
 * Posts a finding's card to its channel: the buttons offered are decided now, from the runbooks the
 * engine has and the channel's guardrail (the click checks both again). Resolves with the message's ts
 * only when Slack took the message; the poller deletes the queue message only after that.
 */
import type { webApi } from '@slack/bolt';
import type { Config } from '../config.ts';
import type { PostFindingCard } from '../findings/finding-poller.ts';
import { listOfferedActions } from '../findings/security-finding.ts';
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import { buildSecurityFindingCard, findingCardText } from './build-security-finding-card.ts';

/** The poster the findings poller uses. */
export function createFindingCardPoster(
  client: webApi.WebClient,
  deps: { config: Config; runbooks: readonly AnyRunbook[] },
): PostFindingCard {
  const runbookIds = deps.runbooks.map((r) => r.id);
  return async ({ ref, channel, finding }) => {
    const actions = listOfferedActions(finding, deps.config, runbookIds, channel);
    const out = await client.chat.postMessage({
      channel,
      text: findingCardText(finding),
      // biome-ignore lint/suspicious/noExplicitAny: Slack validates the blocks' shape
      blocks: buildSecurityFindingCard(finding, ref, actions, deps.config) as any,
      unfurl_links: false,
      unfurl_media: false,
    });
    if (!out.ok || !out.ts)
      throw new Error(`chat.postMessage did not post the card (${out.error ?? 'no ts'})`);
    return out.ts;
  };
}
