/**
 * trail's pure parts: the input schema (one attribute, time forms, regions, limit), the window, the CSV
 * (RFC 4180 quoting and formula neutralising), the summary facts (untrusted values as code spans).
 * (disable-key's "Look up this key's activity" follow-up is tested in follow-ups.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { InputInvalidError } from '../../src/errors.ts';
import { parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import {
  CSV_COLUMNS,
  codeSpan,
  csvCell,
  type LookupResult,
  parseTimeSpec,
  resolveWindow,
  summarizeEvents,
  type TimeSpec,
  type TrailEvent,
  toCsv,
  topValues,
  trail,
} from '../../src/runbooks/trail.ts';

type Parsed = {
  attribute: { key: string; value: string };
  since: TimeSpec;
  until: TimeSpec | null;
  regions: string[] | null;
  limit: number;
  account?: string;
};

function parse(text: string): Parsed {
  return parseRunbookInput<Parsed & { region: undefined }>(trail, parseCommandText(`trail ${text}`).args);
}

function problemsOf(text: string): string {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(InputInvalidError);
    return (error as InputInvalidError).problems.join(' | ');
  }
  throw new Error(`accepted: ${text}`);
}

describe('trail input', () => {
  it('maps each option to its CloudTrail lookup attribute, with the defaults', () => {
    expect(parse('key=AKIAIOSFODNN7EXAMPLE')).toMatchObject({
      attribute: { key: 'AccessKeyId', value: 'AKIAIOSFODNN7EXAMPLE' },
      since: { ago: 86_400_000 },
      until: null,
      regions: null,
      limit: 1000,
    });
    expect(parse('user=alice@example.com').attribute).toEqual({
      key: 'Username',
      value: 'alice@example.com',
    });
    expect(parse('event=ConsoleLogin').attribute).toEqual({ key: 'EventName', value: 'ConsoleLogin' });
    expect(parse('resource=arn:aws:s3:::my-bucket/key').attribute).toEqual({
      key: 'ResourceName',
      value: 'arn:aws:s3:::my-bucket/key',
    });
    expect(parse('source=iam.amazonaws.com').attribute).toEqual({
      key: 'EventSource',
      value: 'iam.amazonaws.com',
    });
    expect(
      parse(
        'key=ASIAIOSFODNN7EXAMPLE since=7d until=2026-11-23T10:00Z region=us-east-1,eu-west-1 limit=10000 account=prod',
      ),
    ).toMatchObject({
      since: { ago: 7 * 86_400_000 },
      until: { at: '2026-11-23T10:00:00.000Z' },
      regions: ['us-east-1', 'eu-west-1'],
      limit: 10_000,
      account: 'prod',
    });
  });

  it('refuses two attributes and says CloudTrail allows one per call', () => {
    const problems = problemsOf('key=AKIAIOSFODNN7EXAMPLE user=alice');
    expect(problems).toContain('one attribute per call');
    expect(problems).toContain('`key=` and `user=`');
    expect(problemsOf('since=24h')).toContain('give one lookup attribute');
  });

  it('refuses malformed values with a message naming the option', () => {
    expect(problemsOf('key=AKIA123')).toContain('`key=`');
    expect(problemsOf('user="alice bob"')).toContain('`user=`');
    expect(problemsOf('event=Console-Login')).toContain('`event=`');
    expect(problemsOf('source=evil.example.com')).toContain('`source=`');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE since=91d')).toContain('90 days');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE since=0m')).toContain('90 days');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE since=yesterday')).toContain('duration like 90m');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE until=2026-02-30T10:00Z')).toContain('ISO time');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE until=2026-11-23T10:00')).toContain('ISO time'); // no zone
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE region=us-east-1,mars-north-1x')).toContain('`region=`');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE limit=10001')).toContain('at most 10000');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE limit=0')).toContain('from 1 to 10000');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE limit=1e3')).toContain('`limit=`');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE account="prod; rm -rf /"')).toContain('`account=`');
    expect(problemsOf('AKIAIOSFODNN7EXAMPLE')).toContain('no positional argument');
    expect(problemsOf('key=AKIAIOSFODNN7EXAMPLE color=red')).toContain('unknown option `color=`');
  });
});

describe('time window', () => {
  const now = new Date('2026-11-23T12:00:00Z');

  it('parses durations and ISO times, refusing dates that do not exist', () => {
    expect(parseTimeSpec('90m')).toEqual({ ago: 90 * 60_000 });
    expect(parseTimeSpec('2026-11-23')).toEqual({ at: '2026-11-23T00:00:00.000Z' });
    expect(parseTimeSpec('2026-11-23T10:00+01:00')).toEqual({ at: '2026-11-23T09:00:00.000Z' });
    expect(parseTimeSpec('2026-02-29T10:00Z')).toBeUndefined();
    expect(parseTimeSpec('2026-11-23T24:00Z')).toBeUndefined();
    expect(parseTimeSpec('24 h')).toBeUndefined();
  });

  it('resolves against now, refuses more than 90 days back or an empty window, clamps a future end', () => {
    const window = resolveWindow({ ago: 86_400_000 }, null, now);
    expect(window.start.toISOString()).toBe('2026-11-22T12:00:00.000Z');
    expect(window.end.toISOString()).toBe('2026-11-23T12:00:00.000Z');
    expect(() => resolveWindow({ at: '2026-08-01T00:00:00.000Z' }, null, now)).toThrow(/90 days/);
    expect(() => resolveWindow({ ago: 3_600_000 }, { ago: 7_200_000 }, now)).toThrow(/window is empty/);
    const future = resolveWindow({ ago: 3_600_000 }, { at: '2027-01-01T00:00:00.000Z' }, now);
    expect(future.end).toEqual(now);
    expect(future.notes.join()).toContain('in the future');
  });
});

function event(overrides: Partial<TrailEvent>): TrailEvent {
  return {
    eventTime: '2026-11-23T10:00:00.000Z',
    region: 'us-east-1',
    eventName: 'GetObject',
    eventSource: 's3.amazonaws.com',
    readOnly: 'true',
    errorCode: '',
    errorMessage: '',
    sourceIPAddress: '203.0.113.1',
    userAgent: 'aws-cli/2',
    identityType: 'IAMUser',
    identity: 'arn:aws:iam::111111111111:user/alice',
    username: 'alice',
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    resources: '',
    eventId: 'e1',
    cloudTrailEvent: {},
    ...overrides,
  };
}

describe('CSV', () => {
  it('quotes per RFC 4180 and neutralises cells a spreadsheet would run as formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell('=HYPERLINK("http://evil.example","x")')).toBe(
      '"\'=HYPERLINK(""http://evil.example"",""x"")"',
    );
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tcmd')).toBe("'\tcmd");
    expect(csvCell('')).toBe('');
  });

  it('writes a header and one CRLF-terminated row per event, every column in order', () => {
    const csv = toCsv([
      event({ userAgent: '=cmd|"/c calc"!A1', sourceIPAddress: '203.0.113.9' }),
      event({ eventId: 'e2', errorCode: 'AccessDenied', errorMessage: 'not, authorized' }),
    ]);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(4); // header, two rows, and the empty string after the last CRLF
    expect(lines[1]).toContain(`"'=cmd|""/c calc""!A1"`);
    expect(lines[2]).toContain('AccessDenied,"not, authorized"');
  });
});

describe('summary facts', () => {
  const result = (events: TrailEvent[], truncated = false): LookupResult => ({
    events,
    regions: [{ region: 'us-east-1', events: events.length, pages: 1, throttled: 0, cut: truncated }],
    truncated,
    completeFrom: truncated ? '2026-11-23T09:00:00.000Z' : null,
    errors: [],
  });

  it('counts events, spans time, and lists the top values with their counts', () => {
    const events = [
      event({ eventTime: '2026-11-23T10:05:00.000Z', eventName: 'ConsoleLogin', errorCode: 'AccessDenied' }),
      event({ eventTime: '2026-11-23T10:04:00.000Z', eventName: 'ConsoleLogin', errorCode: 'AccessDenied' }),
      event({ eventTime: '2026-11-23T10:00:00.000Z', eventName: 'AssumeRole' }),
    ];
    const facts = Object.fromEntries(summarizeEvents(result(events)));
    expect(facts.Events).toBe('3 (us-east-1 3)');
    expect(facts['Time span']).toBe('2026-11-23T10:00:00.000Z → 2026-11-23T10:05:00.000Z');
    expect(facts['Top events']).toBe('`ConsoleLogin` ×2 · `AssumeRole` ×1');
    expect(facts.Errors).toBe('`AccessDenied` ×2');
    expect(facts['Source IPs']).toBe('`203.0.113.1` ×3');
    expect(Object.fromEntries(summarizeEvents(result(events, true))).Events).toContain('limit reached');
  });

  it('shows untrusted values as code spans that no backtick or line break can leave', () => {
    expect(codeSpan('a`b\nc')).toBe('`a b c`');
    expect(codeSpan('x'.repeat(100), 10)).toBe(`\`${'x'.repeat(9)}…\``);
    const facts = Object.fromEntries(
      summarizeEvents(result([event({ userAgent: '`<!channel>` <https://evil.example|click>' })])),
    );
    expect(facts['User agents']).toBe('` <!channel> <https://evil.example|click>` ×1');
    expect(topValues(['b', 'a', 'b', ''], 5)).toEqual([
      { value: 'b', count: 2 },
      { value: 'a', count: 1 },
    ]);
  });
});
