/**
 * The reminder's Block Kit pages: at most 50 blocks each, every finding on exactly one page (nothing
 * dropped silently), grouped by account and owner worst first, untrusted text escaped, buttons that
 * carry only a reference, and buttons hidden where the channel's guardrails would refuse them.
 */
import { describe, expect, it } from 'vitest';
import { applySnoozes, type KeyFinding } from '../../src/runbooks/key-age.ts';
import {
  buildKeyAgePages,
  buildOwnerMessage,
  buildSnoozeModal,
  FINDING_ACTION,
  type ReminderReport,
} from '../../src/slack/build-key-age-message.ts';
import type { Block } from '../../src/slack/build-run-card.ts';

const NOW = Date.parse('2026-11-23T09:00:00Z');
const all = { disable: true, lookUp: true, snooze: true };

function finding(i: number, over: Partial<KeyFinding> = {}): KeyFinding {
  const age = 100 + i;
  return {
    accountAlias: 'prod',
    accountId: '111111111111',
    userName: `user${String(i).padStart(3, '0')}`,
    userArn: `arn:aws:iam::111111111111:user/user${i}`,
    keyId: `AKIA${String(i)
      .padStart(16, 'A')
      .replace(/[^A-Z2-7]/g, 'B')}`,
    slot: 1,
    createdAt: new Date(NOW - age * 86_400_000).toISOString(),
    ageDays: age,
    lastUsedAt: new Date(NOW - 50 * 86_400_000).toISOString(),
    lastUsedService: 's3',
    lastUsedRegion: 'eu-west-1',
    idleDays: 50,
    reasons: ['old', 'unused'],
    severity: age / 90 + 50 / 45,
    ownerSlack: null,
    ownerEmail: null,
    ...over,
  };
}

function report(findings: KeyFinding[], snoozed: string[] = []): ReminderReport {
  return {
    id: 'rabcdefghijkl',
    channel: 'C0SEC',
    at: NOW,
    slot: NOW,
    limits: { maxKeyAgeDays: 90, maxUnusedDays: 45 },
    accounts: [
      {
        accountAlias: 'prod',
        accountId: '111111111111',
        findings: 0,
        summary: '',
        error: null,
        generatedAt: null,
      },
      {
        accountAlias: 'dev',
        accountId: '222222222222',
        findings: 0,
        summary: '',
        error: null,
        generatedAt: null,
      },
      {
        accountAlias: 'stage',
        accountId: '333333333333',
        findings: 0,
        summary: '',
        error: 'AWS denied `iam:GenerateCredentialReport` to `arn:aws:iam::333333333333:role/quell-read`.',
        generatedAt: null,
      },
    ],
    findings: applySnoozes(
      findings,
      snoozed.map((keyId) => ({
        accountId: '111111111111',
        keyId,
        until: NOW + 7 * 86_400_000,
        reason: 'vendor key <!channel>',
        by: 'U0LEAD1',
        at: NOW,
      })),
    ),
    skipped: 0,
  };
}

const refsOn = (blocks: Block[]) =>
  blocks
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements as { value: string }[]).map((e) => e.value));

describe('buildKeyAgePages', () => {
  it('fits a short report in one message with the headline, counts by account and an unreadable account named', () => {
    const pages = buildKeyAgePages(
      report([finding(1), finding(2, { accountAlias: 'dev', accountId: '222222222222' })]),
      () => all,
    );
    expect(pages).toHaveLength(1);
    const text = JSON.stringify(pages[0]?.blocks);
    expect(pages[0]?.text).toContain('2 access keys to look at (prod 1, dev 1, stage unreadable)');
    expect(text).toContain('*2 access keys to look at*');
    expect(text).toContain('AWS denied `iam:GenerateCredentialReport`');
    expect(text).toContain('*101 days old*');
    expect(text).toContain('last used 2026-10-04 (50 days ago) via s3 in eu-west-1');
  });

  it('pages 120 findings into messages of at most 50 blocks, each finding exactly once, in the thread order', () => {
    const findings = Array.from({ length: 120 }, (_, i) =>
      finding(i, i % 3 === 0 ? { accountAlias: 'dev', accountId: '222222222222' } : {}),
    );
    const pages = buildKeyAgePages(report(findings), () => all);
    expect(pages.length).toBeGreaterThan(2);
    for (const page of pages) expect(page.blocks.length).toBeLessThanOrEqual(50);
    const refs = pages.flatMap((p) => refsOn(p.blocks));
    expect(refs).toHaveLength(120 * 3);
    const indices = new Set(refs.map((r) => r.split('.')[1]));
    expect(indices.size).toBe(120);
    // The first page says where the rest is; each further page says which keys it holds.
    expect(JSON.stringify(pages[0]?.blocks)).toMatch(/the other \d+ are in the thread \(pages 2–\d+\)/);
    expect(JSON.stringify(pages[1]?.blocks)).toMatch(/Page 2 of \d+ · keys \d+–\d+ of 120/);
    const total = pages.map((p) => JSON.stringify(p.blocks).match(/keys (\d+)–(\d+) of 120/));
    expect(total.at(-1)?.[2]).toBe('120');
  });

  it('groups by account and owner, worst first', () => {
    const findings = [
      finding(1, { userName: 'mild', severity: 1.2 }),
      finding(2, { userName: 'bad', severity: 9, accountAlias: 'dev', accountId: '222222222222' }),
      finding(3, { userName: 'mild', severity: 1.5, slot: 2 }),
      finding(4, { userName: 'worse', severity: 4 }),
    ];
    const pages = buildKeyAgePages(report(findings), () => all);
    const text = (pages[0]?.blocks ?? [])
      .map((b) => JSON.stringify(b))
      .filter((t) => t.includes(':cloud:') || t.includes('context'))
      .join('\n');
    expect(text.indexOf('*dev*')).toBeLessThan(text.indexOf('*prod*'));
    expect(text.indexOf('*worse*')).toBeLessThan(text.indexOf('*mild*'));
    const refs = refsOn(pages[0]?.blocks ?? []).filter((r, i, a) => a.indexOf(r) === i);
    expect(refs).toEqual(['rabcdefghijkl.1', 'rabcdefghijkl.3', 'rabcdefghijkl.2', 'rabcdefghijkl.0']);
  });

  it('escapes user names, tags and reasons from AWS and people', () => {
    const hostile = finding(1, {
      userName: '<!channel>&<@U0BOSS>',
      ownerEmail: 'a<b>@x.io',
      lastUsedService: '<https://evil|x>',
    });
    const text = JSON.stringify(
      buildKeyAgePages(report([hostile, finding(2)], [finding(2).keyId ?? '']), () => all),
    );
    expect(text).not.toContain('<!channel>');
    expect(text).not.toContain('<@U0BOSS>');
    expect(text).not.toContain('<https://evil');
    expect(text).toContain('&lt;!channel&gt;&amp;&lt;@U0BOSS&gt;');
  });

  it('lists snoozed keys apart, with who snoozed them, until when and why', () => {
    const keyId = finding(2).keyId ?? '';
    const pages = buildKeyAgePages(report([finding(1), finding(2)], [keyId]), () => all);
    const text = JSON.stringify(pages);
    expect(text).toContain('(and 1 snoozed)');
    expect(text).toContain('*Snoozed (1)*');
    expect(text).toContain(`${keyId}\` of *user002* in prod`);
    expect(text).toContain('snoozed until 2026-11-30 by `U0LEAD1`');
    expect(refsOn(pages[0]?.blocks ?? []).every((r) => r === 'rabcdefghijkl.0')).toBe(true);
  });

  it('offers only the buttons the channel allows, and none that need a key id the report did not give', () => {
    const pages = buildKeyAgePages(
      report([
        finding(1),
        finding(2, { keyId: null }),
        finding(3, { userName: '<root_account>', reasons: ['root-key'], severity: 100 }),
      ]),
      () => ({ disable: false, lookUp: true, snooze: true }),
    );
    const actions = (pages[0]?.blocks ?? []).filter((b) => b.type === 'actions');
    const ids = actions.map((b) => (b.elements as { action_id: string }[]).map((e) => e.action_id).join(','));
    // The root key: look up and snooze, never disable; user002 has no key id: no buttons at all.
    expect(ids).toEqual([
      `${FINDING_ACTION.lookUp},${FINDING_ACTION.snooze}`,
      `${FINDING_ACTION.lookUp},${FINDING_ACTION.snooze}`,
    ]);
    const everything = JSON.stringify(pages);
    expect(everything).toContain('key 1 (id not matched; see IAM)');
  });
});

describe('buildOwnerMessage and buildSnoozeModal', () => {
  it('tells the owner about their keys, pointing at the channel, with every key counted', () => {
    const findings = applySnoozes(
      Array.from({ length: 60 }, (_, i) => finding(i)),
      [],
    );
    const dm = buildOwnerMessage(findings, report([]));
    expect(dm.blocks.length).toBeLessThanOrEqual(50);
    const text = JSON.stringify(dm);
    expect(text).toContain('found 60 of your AWS access keys');
    expect(text).toContain('<#C0SEC>');
    expect(text).toContain('…and 13 more keys');
    expect(dm.blocks.some((b) => b.type === 'actions')).toBe(false);
  });

  it('asks for a reason and one of the offered durations', () => {
    const modal = buildSnoozeModal(applySnoozes([finding(1)], [])[0] as never, '{"ref":"rabcdefghijkl.0"}');
    expect(modal.callback_id).toBe(FINDING_ACTION.snoozeModal);
    expect(modal.private_metadata).toBe('{"ref":"rabcdefghijkl.0"}');
    const text = JSON.stringify(modal);
    expect(text).toContain('"block_id":"reason"');
    expect(text).toContain('"min_length":3');
    expect(text).toContain('"value":"90"');
  });
});
