/**
 * User-group membership from Slack (`usergroups.users.list`), cached for a short time. Slack allows that
 * method about 20 calls a minute (Tier 2, api.slack.com/methods/usergroups.users.list); without a cache,
 * every Home tab, `help` and click of an incident's worth of responders asks again and runs into it.
 */
import type { webApi } from '@slack/bolt';
import type { ApproverDirectory, Freshness } from '../approvals/approval-policy.ts';

/** How long a group's members are answered from the cache for a `recent` look-up. */
export const GROUP_CACHE_TTL_MS = 30_000;
/** How many groups the cache holds; the least recently fetched goes first. */
export const GROUP_CACHE_MAX_GROUPS = 200;

/** Cache settings (tests move the clock). */
export interface SlackDirectoryOptions {
  ttlMs?: number;
  maxGroups?: number;
  now?: () => number;
}

/**
 * An ApproverDirectory backed by the Slack Web API. A `recent` look-up may be answered from a cache up to
 * `ttlMs` old; a `now` look-up (an approver's click) always asks Slack, sharing a look-up of the same
 * group already in flight. An API error fails the look-up (and so the check) and is never cached.
 */
export function createSlackDirectory(
  client: webApi.WebClient,
  options: SlackDirectoryOptions = {},
): ApproverDirectory {
  const ttlMs = options.ttlMs ?? GROUP_CACHE_TTL_MS;
  const maxGroups = options.maxGroups ?? GROUP_CACHE_MAX_GROUPS;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; members: ReadonlySet<string> }>();
  const inFlight = new Map<string, Promise<ReadonlySet<string>>>();

  function fetchMembers(groupId: string): Promise<ReadonlySet<string>> {
    const pending = inFlight.get(groupId);
    if (pending) return pending;
    // Dated when asked, not when answered: an entry is never younger than what Slack said.
    const askedAt = now();
    const lookup = client.usergroups.users
      .list({ usergroup: groupId })
      .then((out) => {
        const members: ReadonlySet<string> = new Set(out.users ?? []);
        cache.delete(groupId); // re-inserted last: Map order is fetch order
        cache.set(groupId, { at: askedAt, members });
        for (const oldest of cache.keys()) {
          if (cache.size <= maxGroups) break;
          cache.delete(oldest);
        }
        return members;
      })
      .finally(() => inFlight.delete(groupId));
    inFlight.set(groupId, lookup);
    return lookup;
  }

  return {
    async groupMembers(groupId: string, freshness: Freshness = 'recent') {
      if (freshness === 'recent') {
        const hit = cache.get(groupId);
        if (hit && now() - hit.at < ttlMs) return hit.members;
      }
      return fetchMembers(groupId);
    },
  };
}
