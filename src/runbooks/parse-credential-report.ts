/**
 * The IAM credential report (`GetCredentialReport`, text/csv) as typed rows. The CSV is parsed properly
 * (RFC 4180: quoted fields, doubled quotes, commas and line breaks inside quotes, CRLF), columns are
 * found by header name rather than position, and AWS's placeholders (`N/A`, `not_supported`,
 * `no_information`) become null. Column meanings:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html#id_credentials_understanding_the_report_format
 */
import { AwsCallFailedError } from '../errors.ts';

/** One access-key slot of a user (the report has two: access_key_1 and access_key_2). */
export interface ReportKeySlot {
  slot: 1 | 2;
  active: boolean;
  /** When the key was created or last rotated. */
  lastRotated: Date | null;
  lastUsedAt: Date | null;
  lastUsedRegion: string | null;
  lastUsedService: string | null;
}

/** One row of the report: an IAM user, or the account's root user. */
export interface CredentialReportRow {
  user: string;
  arn: string;
  /** The row of the root user (`<root_account>`), whose keys cannot be managed through IAM users. */
  isRoot: boolean;
  userCreationTime: Date | null;
  passwordEnabled: boolean;
  mfaActive: boolean;
  keys: [ReportKeySlot, ReportKeySlot];
}

/** Placeholders AWS writes where a value does not apply or is not known. */
const PLACEHOLDERS = new Set(['', 'N/A', 'not_supported', 'no_information']);

/** Splits CSV text into rows of fields (RFC 4180). Throws on an unterminated quoted field. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  // A UTF-8 byte-order mark is not part of the first header.
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quoted = true;
      i++;
    } else if (ch === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (ch === '\r' || ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) throw unreadable('UnterminatedQuote');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** A report value, or null for AWS's placeholders. */
export function reportValue(text: string | undefined): string | null {
  const trimmed = text?.trim() ?? '';
  return PLACEHOLDERS.has(trimmed) ? null : trimmed;
}

/** A report timestamp (ISO 8601 with offset), or null for placeholders and unparseable text. */
export function reportDate(text: string | undefined): Date | null {
  const value = reportValue(text);
  if (value === null) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const REQUIRED_COLUMNS = [
  'user',
  'arn',
  'access_key_1_active',
  'access_key_1_last_rotated',
  'access_key_1_last_used_date',
  'access_key_2_active',
  'access_key_2_last_rotated',
  'access_key_2_last_used_date',
] as const;

/** The report could not be read: named like an AWS failure of the call that returned it. */
function unreadable(reason: string): AwsCallFailedError {
  return new AwsCallFailedError('iam:GetCredentialReport', `UnreadableReport(${reason})`, undefined);
}

/** Parses the report's CSV into rows; throws when a column quell relies on is missing. */
export function parseCredentialReport(csv: string): CredentialReportRow[] {
  const [header, ...body] = parseCsv(csv);
  if (!header) return [];
  const index = new Map(header.map((name, i) => [name.trim(), i]));
  const missing = REQUIRED_COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) {
    throw unreadable(`MissingColumn:${missing.join(',')}`);
  }
  const cell = (row: string[], column: string) => {
    const i = index.get(column);
    return i === undefined ? undefined : row[i];
  };
  const slot = (row: string[], n: 1 | 2): ReportKeySlot => ({
    slot: n,
    active: reportValue(cell(row, `access_key_${n}_active`)) === 'true',
    lastRotated: reportDate(cell(row, `access_key_${n}_last_rotated`)),
    lastUsedAt: reportDate(cell(row, `access_key_${n}_last_used_date`)),
    lastUsedRegion: reportValue(cell(row, `access_key_${n}_last_used_region`)),
    lastUsedService: reportValue(cell(row, `access_key_${n}_last_used_service`)),
  });
  return body
    .filter((row) => row.some((f) => f.trim() !== ''))
    .map((row) => {
      const user = cell(row, 'user') ?? '';
      return {
        user,
        arn: cell(row, 'arn') ?? '',
        isRoot: user === '<root_account>',
        userCreationTime: reportDate(cell(row, 'user_creation_time')),
        passwordEnabled: reportValue(cell(row, 'password_enabled')) === 'true',
        mfaActive: reportValue(cell(row, 'mfa_active')) === 'true',
        keys: [slot(row, 1), slot(row, 2)],
      };
    });
}
