/** The `timezone` and `reminders` configuration keys: defaults, and every mistake named by path. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { ConfigInvalidError } from '../../src/errors.ts';

const BASE = `
accounts:
  - alias: prod
    id: "111111111111"
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
  - alias: dev
    id: "222222222222"
    roles:
      read: arn:aws:iam::222222222222:role/quell-read
      respond: arn:aws:iam::222222222222:role/quell-respond
`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'quell.yaml');
  } catch (error) {
    if (error instanceof ConfigInvalidError) return error.problems;
    throw error;
  }
  return [];
}

describe('reminders and timezone', () => {
  it('defaults to UTC and no reminders', () => {
    const config = parseConfig(BASE);
    expect(config.timezone).toBe('UTC');
    expect(config.reminders).toEqual([]);
  });

  it('fills in the documented defaults', () => {
    const config = parseConfig(`${BASE}
timezone: Europe/Berlin
reminders:
  - schedule: "0 9 * * 1-5"
    channel: C0SECURITY
`);
    expect(config.timezone).toBe('Europe/Berlin');
    expect(config.reminders).toEqual([
      {
        schedule: '0 9 * * 1-5',
        channel: 'C0SECURITY',
        accounts: ['*'],
        maxKeyAgeDays: 90,
        maxUnusedDays: 45,
      },
    ]);
  });

  it('accepts the product example as written', () => {
    const config = parseConfig(`${BASE}
reminders:
  - schedule: "0 9 * * 1-5"
    channel: C0SECURITY
    accounts: ["*"]
    maxKeyAgeDays: 90
    maxUnusedDays: 45
`);
    expect(config.reminders[0]?.accounts).toEqual(['*']);
  });

  it('names each bad value by path and line', () => {
    const problems = problemsOf(`${BASE}
timezone: Mars/Olympus_Mons
reminders:
  - schedule: "0 9 * *"
    channel: "#security"
    accounts: [staging]
    maxKeyAgeDays: 0
  - schedule: "61 9 * * *"
    channel: C0SEC
    extra: true
`);
    expect(problems.some((p) => p.startsWith('timezone (line 14): must be an IANA time zone'))).toBe(true);
    expect(
      problems.some((p) =>
        p.startsWith('reminders.0.schedule (line 16): must be a cron expression with 5 fields'),
      ),
    ).toBe(true);
    expect(problems.some((p) => p.startsWith('reminders.0.channel (line 17)'))).toBe(true);
    expect(
      problems.some(
        (p) => p.includes('reminders.0.accounts.0') && p.includes('unknown account alias "staging"'),
      ),
    ).toBe(true);
    expect(problems.some((p) => p.startsWith('reminders.0.maxKeyAgeDays'))).toBe(true);
    expect(problems.some((p) => p.startsWith('reminders.1.schedule') && p.includes('minute'))).toBe(true);
    expect(problems.some((p) => p.includes('extra'))).toBe(true);
  });

  it('refuses offsets and abbreviations that are not IANA names', () => {
    for (const tz of ['+01:00', 'GMT+1 ', '../etc/passwd', '']) {
      expect(problemsOf(`${BASE}\ntimezone: "${tz}"\n`).some((p) => p.startsWith('timezone'))).toBe(true);
    }
    for (const tz of ['UTC', 'America/Argentina/Buenos_Aires', 'Asia/Kolkata', 'Etc/GMT+5']) {
      expect(problemsOf(`${BASE}\ntimezone: "${tz}"\n`)).toEqual([]);
    }
  });
});
