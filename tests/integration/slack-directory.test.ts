/**
 * User-group look-ups through Slack's real Web API client against the fake Slack, counting the
 * `usergroups.users.list` calls it receives (issue 9, item 10): `recent` look-ups (help, who may request,
 * the Home tab) are answered from a cache for 30 seconds, bounded in size; `now` look-ups (an approver's
 * click) always reach Slack, concurrent ones sharing one call; failures are not cached.
 */
import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertApprover } from '../../src/approvals/approval-policy.ts';
import { ConfigSchema } from '../../src/config.ts';
import { createSlackDirectory, GROUP_CACHE_TTL_MS } from '../../src/slack/slack-directory.ts';
import { createFakeClock } from '../support/fake-clock.ts';
import { type FakeSlack, startFakeSlack } from '../support/fake-slack.ts';
import { BOT_TOKEN } from '../support/test-quell.ts';

describe('user-group look-ups are cached for a short time', () => {
  let slack: FakeSlack;
  let client: webApi.WebClient;
  const lookups = (group?: string) =>
    slack.callsOf('usergroups.users.list').filter((c) => !group || c.body.usergroup === group).length;

  beforeAll(async () => {
    slack = await startFakeSlack();
    client = new webApi.WebClient(BOT_TOKEN, {
      slackApiUrl: slack.apiUrl,
      retryConfig: { retries: 0 },
    });
  });
  beforeEach(() => {
    slack.calls.length = 0;
    slack.groups.set('S0LEADS', ['U0GRP1', 'U0GRP2']);
  });
  afterAll(async () => {
    await slack?.close();
  });

  it('answers 20 recent look-ups of a group with 1 usergroups.users.list call, and asks again after 30 s', async () => {
    const clock = createFakeClock(1_800_000_000_000);
    const directory = createSlackDirectory(client, { now: clock.now });
    for (let i = 0; i < 20; i++) expect((await directory.groupMembers('S0LEADS')).has('U0GRP1')).toBe(true);
    expect(lookups('S0LEADS')).toBe(1);
    await clock.advance(GROUP_CACHE_TTL_MS - 1);
    await directory.groupMembers('S0LEADS', 'recent');
    expect(lookups('S0LEADS')).toBe(1);
    slack.groups.set('S0LEADS', ['U0GRP2']);
    await clock.advance(1);
    expect((await directory.groupMembers('S0LEADS')).has('U0GRP1')).toBe(false);
    expect(lookups('S0LEADS')).toBe(2);
  });

  it('checks an approver at click time: a member removed from the group is refused at once, cache or not', async () => {
    const clock = createFakeClock(1_800_000_000_000);
    const directory = createSlackDirectory(client, { now: clock.now });
    const config = ConfigSchema.parse({
      accounts: [
        {
          alias: 'prod',
          id: '111111111111',
          regions: ['us-east-1'],
          roles: { read: 'arn:aws:iam::111111111111:role/r', respond: 'arn:aws:iam::111111111111:role/w' },
        },
      ],
      approvals: { approvers: ['S0LEADS'] },
      channels: {},
      storage: { url: 'sqlite::memory:' },
    });
    // The Home tab (recent) fills the cache; then U0GRP1 leaves the group and clicks.
    await assertApprover(config, directory, 'U0GRP1', 'recent');
    slack.groups.set('S0LEADS', ['U0GRP2']);
    await expect(assertApprover(config, directory, 'U0GRP1', 'recent')).resolves.toBeUndefined();
    await expect(assertApprover(config, directory, 'U0GRP1')).rejects.toThrow(/not an approver/);
    expect(lookups('S0LEADS')).toBe(2);
    // What the click learnt refreshes the cache for what is only shown.
    await expect(assertApprover(config, directory, 'U0GRP1', 'recent')).rejects.toThrow(/not an approver/);
    expect(lookups('S0LEADS')).toBe(2);
  });

  it('shares one call among 50 concurrent click-time look-ups of a group', async () => {
    const directory = createSlackDirectory(client);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => directory.groupMembers('S0LEADS', 'now')),
    );
    expect(answers.every((a) => a.has('U0GRP1'))).toBe(true);
    expect(lookups('S0LEADS')).toBe(1);
  });

  it('keeps at most the configured number of groups: the least recently fetched is asked again', async () => {
    const directory = createSlackDirectory(client, { maxGroups: 3 });
    for (const g of ['S0A', 'S0B', 'S0C', 'S0D']) await directory.groupMembers(g);
    expect(lookups()).toBe(4);
    await directory.groupMembers('S0D');
    await directory.groupMembers('S0B');
    expect(lookups()).toBe(4);
    await directory.groupMembers('S0A'); // evicted by S0D
    expect(lookups()).toBe(5);
    expect(lookups('S0A')).toBe(2);
  });

  it('does not cache a failed look-up: the next one asks Slack again', async () => {
    let failures = 1;
    const flaky = {
      usergroups: {
        users: {
          list: (args: { usergroup: string }) => {
            if (failures-- > 0) return Promise.reject(new Error('ratelimited'));
            return client.usergroups.users.list(args);
          },
        },
      },
    } as unknown as webApi.WebClient;
    const directory = createSlackDirectory(flaky);
    await expect(directory.groupMembers('S0LEADS')).rejects.toThrow('ratelimited');
    expect((await directory.groupMembers('S0LEADS')).has('U0GRP1')).toBe(true);
    expect(lookups('S0LEADS')).toBe(1);
  });
});
