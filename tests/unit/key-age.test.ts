/**
 * key-age without AWS: the findings of a report (ages, last use, never used, both keys active, root),
 * worst first; reusing a report younger than 4 hours; polling GenerateCredentialReport to a bound;
 * matching report slots to key ids; owner tags. (moto always reports GeneratedTime 2015-02-02, so the
 * reuse path can only be exercised with a mocked client; the moto tests cover the rest.)
 */
import {
  GenerateCredentialReportCommand,
  GetCredentialReportCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUserTagsCommand,
} from '@aws-sdk/client-iam';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsCallFailedError } from '../../src/errors.ts';
import {
  fetchCredentialReport,
  findingsCsv,
  findKeyAgeFindings,
  type KeyFinding,
  resolveKeysAndOwners,
  summarizeReport,
} from '../../src/runbooks/key-age.ts';
import type { CredentialReportRow, ReportKeySlot } from '../../src/runbooks/parse-credential-report.ts';

const NOW = new Date('2026-11-23T09:00:00Z');
const daysAgo = (n: number) => new Date(NOW.getTime() - n * 86_400_000);
const LIMITS = { maxKeyAgeDays: 90, maxUnusedDays: 45 };
const ACCOUNT = { alias: 'prod', id: '111111111111' };

function slot(n: 1 | 2, key?: { created: number; used?: number; active?: boolean }): ReportKeySlot {
  return {
    slot: n,
    active: key ? key.active !== false : false,
    lastRotated: key ? daysAgo(key.created) : null,
    lastUsedAt: key?.used === undefined ? null : daysAgo(key.used),
    lastUsedRegion: key?.used === undefined ? null : 'eu-west-1',
    lastUsedService: key?.used === undefined ? null : 's3',
  };
}

function row(
  user: string,
  k1?: Parameters<typeof slot>[1],
  k2?: Parameters<typeof slot>[1],
): CredentialReportRow {
  return {
    user,
    arn:
      user === '<root_account>' ? 'arn:aws:iam::111111111111:root' : `arn:aws:iam::111111111111:user/${user}`,
    isRoot: user === '<root_account>',
    userCreationTime: daysAgo(1000),
    passwordEnabled: false,
    mfaActive: false,
    keys: [slot(1, k1), slot(2, k2)],
  };
}

describe('findKeyAgeFindings', () => {
  const rows = [
    row('fresh', { created: 10, used: 1 }), // fine
    row('young-never-used', { created: 30 }), // never used, but not beyond 45 days
    row('old-active', { created: 400, used: 2 }), // older than 90
    row('idle', { created: 60, used: 50 }), // unused for 50 > 45
    row('never', { created: 100 }), // never used for 100 days, and old
    row('inactive-old', { created: 900, active: false }), // inactive: not reported
    row('two-keys', { created: 5, used: 1 }, { created: 6, used: 1 }), // both keys active
    row('<root_account>', { created: 20, used: 3 }), // a root key is always reported
  ];
  const findings = findKeyAgeFindings(rows, LIMITS, NOW, ACCOUNT);

  it('reports exactly the keys that break a rule, with their reasons', () => {
    const byUser = Object.fromEntries(findings.map((f) => [`${f.userName}#${f.slot}`, f.reasons]));
    expect(byUser).toEqual({
      '<root_account>#1': ['root-key'],
      'old-active#1': ['old'],
      'idle#1': ['unused'],
      'never#1': ['old', 'never-used'],
      'two-keys#1': ['both-active'],
      'two-keys#2': ['both-active'],
    });
  });

  it('lists the worst first: root, then the most overdue', () => {
    expect(findings.map((f) => f.userName)).toEqual([
      '<root_account>',
      'old-active', // 400/90 = 4.44
      'never', // 100/90 + 100/45 = 3.33
      'idle', // 50/45 = 1.11
      'two-keys',
      'two-keys',
    ]);
  });

  it('carries age, last use and service', () => {
    const idle = findings.find((f) => f.userName === 'idle');
    expect(idle).toMatchObject({
      ageDays: 60,
      idleDays: 50,
      lastUsedService: 's3',
      lastUsedRegion: 'eu-west-1',
      lastUsedAt: daysAgo(50).toISOString(),
      accountAlias: 'prod',
      accountId: '111111111111',
    });
    expect(findings.find((f) => f.userName === 'never')).toMatchObject({ lastUsedAt: null, idleDays: 100 });
  });

  it('follows the limits it is given', () => {
    const strict = findKeyAgeFindings(rows, { maxKeyAgeDays: 7, maxUnusedDays: 7 }, NOW, ACCOUNT);
    expect(strict.map((f) => `${f.userName}#${f.slot}`)).toContain('fresh#1');
    expect(strict.map((f) => `${f.userName}#${f.slot}`)).toContain('young-never-used#1');
    expect(strict.map((f) => f.userName)).not.toContain('inactive-old');
  });

  it('summarises and exports without losing a finding', () => {
    expect(summarizeReport({ accountAlias: 'prod', findings, limits: LIMITS })).toBe(
      'prod: 6 keys to look at (1 root key, 2 older than 90 days, 1 unused for more than 45 days, 1 never used, 1 user with both keys active).',
    );
    expect(summarizeReport({ accountAlias: 'dev', findings: [], limits: LIMITS })).toContain('no access key');
    const csv = findingsCsv([{ ...(findings[0] as KeyFinding), userName: '=HYPERLINK("x")' }]);
    expect(csv.split('\n')).toHaveLength(3);
    expect(csv).toContain(`"'=HYPERLINK(""x"")"`);
  });
});

const iamMock = mockClient(IAMClient);
afterEach(() => iamMock.reset());

describe('fetchCredentialReport', () => {
  const content = (text: string) => new TextEncoder().encode(text);

  it('reuses a report younger than 4 hours without generating one', async () => {
    iamMock
      .on(GetCredentialReportCommand)
      .resolves({ Content: content('user,arn\n'), GeneratedTime: daysAgo(0.1) });
    const out = await fetchCredentialReport(new IAMClient({ region: 'us-east-1' }), { now: NOW });
    expect(out.reused).toBe(true);
    expect(iamMock.commandCalls(GenerateCredentialReportCommand)).toHaveLength(0);
  });

  it('generates when the report is stale or missing, and polls until COMPLETE', async () => {
    iamMock
      .on(GetCredentialReportCommand)
      .rejectsOnce(Object.assign(new Error('none'), { name: 'CredentialReportNotPresentException' }))
      .resolves({ Content: content('user,arn\n'), GeneratedTime: NOW });
    iamMock
      .on(GenerateCredentialReportCommand)
      .resolvesOnce({ State: 'STARTED' })
      .resolvesOnce({ State: 'INPROGRESS' })
      .resolves({ State: 'COMPLETE' });
    const out = await fetchCredentialReport(new IAMClient({ region: 'us-east-1' }), {
      now: NOW,
      pollDelaysMs: [1, 1, 1],
    });
    expect(out).toMatchObject({ reused: false, csv: 'user,arn\n' });
    expect(iamMock.commandCalls(GenerateCredentialReportCommand)).toHaveLength(3);
  });

  it('generates when the report expired (the SDK error name) and does not swallow other errors', async () => {
    iamMock
      .on(GetCredentialReportCommand)
      .rejectsOnce(Object.assign(new Error('old'), { name: 'CredentialReportExpiredException' }))
      .resolves({ Content: content('user,arn\n'), GeneratedTime: NOW });
    iamMock.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    await expect(
      fetchCredentialReport(new IAMClient({ region: 'us-east-1' }), { now: NOW }),
    ).resolves.toMatchObject({
      reused: false,
    });
    iamMock.reset();
    iamMock.on(GetCredentialReportCommand).rejects(Object.assign(new Error('no'), { name: 'AccessDenied' }));
    await expect(fetchCredentialReport(new IAMClient({ region: 'us-east-1' }), { now: NOW })).rejects.toThrow(
      'no',
    );
    expect(iamMock.commandCalls(GenerateCredentialReportCommand)).toHaveLength(0);
  });

  it('gives up after the last poll and says how long it waited', async () => {
    iamMock.on(GetCredentialReportCommand).resolves({ Content: content(''), GeneratedTime: daysAgo(2) });
    iamMock.on(GenerateCredentialReportCommand).resolves({ State: 'INPROGRESS' });
    const error = await fetchCredentialReport(new IAMClient({ region: 'us-east-1' }), {
      now: NOW,
      pollDelaysMs: [1, 1],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsCallFailedError);
    expect(iamMock.commandCalls(GenerateCredentialReportCommand)).toHaveLength(3);
  });
});

describe('resolveKeysAndOwners', () => {
  it('matches slots to key ids by creation time and reads the owner tags', async () => {
    const findings = findKeyAgeFindings(
      [row('alice', { created: 200 }, { created: 100 })],
      LIMITS,
      NOW,
      ACCOUNT,
    );
    iamMock.on(ListAccessKeysCommand).resolves({
      AccessKeyMetadata: [
        {
          AccessKeyId: 'AKIAAAAAAAAAAAAAAAA2',
          CreateDate: daysAgo(100),
          Status: 'Active',
          UserName: 'alice',
        },
        {
          AccessKeyId: 'AKIAAAAAAAAAAAAAAAA1',
          CreateDate: daysAgo(200),
          Status: 'Active',
          UserName: 'alice',
        },
      ],
    });
    iamMock.on(ListUserTagsCommand).resolves({
      Tags: [
        { Key: 'Slack', Value: 'U0ALICE' },
        { Key: 'email', Value: 'Alice@Example.com' },
      ],
    });
    await resolveKeysAndOwners(new IAMClient({ region: 'us-east-1' }), findings);
    expect(findings.map((f) => [f.slot, f.keyId])).toEqual(
      expect.arrayContaining([
        [1, 'AKIAAAAAAAAAAAAAAAA1'],
        [2, 'AKIAAAAAAAAAAAAAAAA2'],
      ]),
    );
    expect(findings.every((f) => f.ownerSlack === 'U0ALICE' && f.ownerEmail === 'alice@example.com')).toBe(
      true,
    );
  });

  it('ignores tags that are not a Slack user id or an address', async () => {
    const findings = findKeyAgeFindings([row('bob', { created: 200 })], LIMITS, NOW, ACCOUNT);
    iamMock.on(ListAccessKeysCommand).resolves({ AccessKeyMetadata: [] });
    iamMock.on(ListUserTagsCommand).resolves({
      Tags: [
        { Key: 'slack', Value: '<!channel>' },
        { Key: 'email', Value: 'not an address' },
      ],
    });
    await resolveKeysAndOwners(new IAMClient({ region: 'us-east-1' }), findings);
    expect(findings[0]).toMatchObject({ keyId: null, ownerSlack: null, ownerEmail: null });
  });
});
