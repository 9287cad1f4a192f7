/** User-group membership from Slack, looked up at click time (`usergroups.users.list`). */
import type { webApi } from '@slack/bolt';
import type { ApproverDirectory } from '../approvals/approval-policy.ts';

/** An ApproverDirectory backed by the Slack Web API. Fails closed: an API error means "not a member". */
export function createSlackDirectory(client: webApi.WebClient): ApproverDirectory {
  return {
    async groupMembers(groupId: string) {
      const out = await client.usergroups.users.list({ usergroup: groupId });
      return new Set(out.users ?? []);
    },
  };
}
