/** The credential report's CSV: quoted fields, AWS's placeholders, the root row, columns found by name. */
import { describe, expect, it } from 'vitest';
import { AwsCallFailedError } from '../../src/errors.ts';
import {
  parseCredentialReport,
  parseCsv,
  reportDate,
  reportValue,
} from '../../src/runbooks/parse-credential-report.ts';

const HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

describe('parseCsv', () => {
  it('splits plain fields, CRLF and LF rows, and a missing final newline', () => {
    expect(parseCsv('a,b,c\r\n1,2,3\n4,5,6')).toEqual([
      ['a', 'b', 'c'],
      ['1', '2', '3'],
      ['4', '5', '6'],
    ]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks', () => {
    expect(parseCsv('name,note\n"Smith, Ann","said ""hi""\nthen left"\n')).toEqual([
      ['name', 'note'],
      ['Smith, Ann', 'said "hi"\nthen left'],
    ]);
  });

  it('keeps empty fields and strips a byte-order mark', () => {
    expect(parseCsv('\ufeffa,,c\n,,\n')).toEqual([
      ['a', '', 'c'],
      ['', '', ''],
    ]);
  });

  it('refuses an unterminated quoted field', () => {
    expect(() => parseCsv('a,"b\n')).toThrow(AwsCallFailedError);
  });
});

describe('placeholders', () => {
  it('turns N/A, not_supported and no_information into null', () => {
    for (const text of ['N/A', 'not_supported', 'no_information', '', undefined])
      expect(reportValue(text)).toBeNull();
    expect(reportValue('s3')).toBe('s3');
    expect(reportDate('2026-01-02T03:04:05+00:00')?.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(reportDate('N/A')).toBeNull();
    expect(reportDate('yesterday')).toBeNull();
  });
});

describe('parseCredentialReport', () => {
  it('types a real-shaped report, including the root row and a quoted user name', () => {
    const csv = [
      HEADER,
      '<root_account>,arn:aws:iam::111111111111:root,2020-01-01T00:00:00+00:00,not_supported,2026-11-01T10:00:00+00:00,not_supported,not_supported,true,true,2021-05-05T05:05:05+00:00,2026-11-20T09:00:00+00:00,us-east-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A',
      '"deploy,bot",arn:aws:iam::111111111111:user/deploy-bot,2022-02-02T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2022-02-02T00:00:10+00:00,N/A,N/A,N/A,true,2024-03-03T00:00:00+00:00,2026-11-22T12:00:00+00:00,eu-west-1,s3,false,N/A,false,N/A',
      '',
    ].join('\n');
    const rows = parseCredentialReport(csv);
    expect(rows).toHaveLength(2);
    const [root, bot] = rows;
    expect(root?.isRoot).toBe(true);
    expect(root?.mfaActive).toBe(true);
    expect(root?.keys[0]).toMatchObject({
      slot: 1,
      active: true,
      lastUsedService: 'iam',
      lastUsedRegion: 'us-east-1',
    });
    expect(root?.keys[1]).toEqual({
      slot: 2,
      active: false,
      lastRotated: null,
      lastUsedAt: null,
      lastUsedRegion: null,
      lastUsedService: null,
    });
    expect(bot?.user).toBe('deploy,bot');
    expect(bot?.isRoot).toBe(false);
    expect(bot?.keys[0].lastUsedAt).toBeNull();
    expect(bot?.keys[0].lastRotated?.toISOString()).toBe('2022-02-02T00:00:10.000Z');
    expect(bot?.keys[1]).toMatchObject({ active: true, lastUsedService: 's3', lastUsedRegion: 'eu-west-1' });
  });

  it('finds columns by name, whatever their order', () => {
    const csv =
      'access_key_2_active,user,access_key_1_last_used_date,arn,access_key_1_active,access_key_1_last_rotated,access_key_2_last_rotated,access_key_2_last_used_date\n' +
      'false,bob,N/A,arn:aws:iam::1:user/bob,true,2025-01-01T00:00:00+00:00,N/A,N/A\n';
    const [bob] = parseCredentialReport(csv);
    expect(bob?.user).toBe('bob');
    expect(bob?.keys[0].active).toBe(true);
    expect(bob?.keys[0].lastUsedService).toBeNull();
  });

  it('names the missing column when AWS changes the format', () => {
    expect(() => parseCredentialReport('user,arn\nbob,arn:x\n')).toThrow(/MissingColumn:access_key_1_active/);
  });

  it('returns nothing for an empty report', () => {
    expect(parseCredentialReport('')).toEqual([]);
  });
});
