/**
 * How a run maps to and from a database row, shared by the SQLite and PostgreSQL stores: the same
 * columns, the same JSON encoding, only the SQL dialects differ.
 */
import type { FindingRecord, Json, LedgerRecord, RunPatch, RunRecord, RunState } from './store.ts';

/** The prevHash of the first audit entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** The column of each patchable RunRecord field. */
export const PATCH_COLUMNS: Record<keyof RunPatch, string> = {
  plan: 'plan',
  planHash: 'plan_hash',
  requiredApprovals: 'required_approvals',
  expiresAt: 'expires_at',
  approvedAt: 'approved_at',
  messageTs: 'message_ts',
  result: 'result',
  error: 'error',
  accountAlias: 'account_alias',
  accountId: 'account_id',
  region: 'region',
  breakGlass: 'break_glass',
  reviewState: 'review_state',
  executor: 'executor',
  heartbeatAt: 'heartbeat_at',
};
/** Patchable fields stored as JSON text. */
export const JSON_FIELDS = new Set<keyof RunPatch>(['plan', 'result', 'error']);

/** The patched fields in column order, JSON fields encoded; each store adds its own placeholders. */
export function patchEntries(patch: RunPatch): [column: string, value: unknown][] {
  return (Object.entries(PATCH_COLUMNS) as [keyof RunPatch, string][])
    .filter(([key]) => key in patch)
    .map(([key, column]) => [
      column,
      JSON_FIELDS.has(key) ? toJson(patch[key] as Json | null) : (patch[key] ?? null),
    ]);
}

/** A JSON column value (text), or null. */
export function toJson(value: Json | null | undefined): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

/** Parses a JSON column (stored as text by both stores). */
export function fromJson(value: unknown): Json | null {
  return value === null || value === undefined ? null : (JSON.parse(String(value)) as Json);
}

/** A run_ledger row, from either store. */
export function toLedgerRecord(row: Record<string, unknown>): LedgerRecord {
  return {
    runId: String(row.run_id),
    key: String(row.key),
    value: fromJson(row.value),
    recordedAt: Number(row.recorded_at),
    updatedAt: Number(row.updated_at),
  };
}

/** A runs row, from either store, as a RunRecord. */
/** A security_findings row as a FindingRecord (both dialects). */
export function toFindingRecord(row: Record<string, unknown>): FindingRecord {
  return {
    id: String(row.id),
    ref: String(row.ref),
    finding: fromJson(row.finding),
    channel: String(row.channel),
    claimedBy: String(row.claimed_by),
    claimedAt: Number(row.claimed_at),
    postedAt: row.posted_at === null || row.posted_at === undefined ? null : Number(row.posted_at),
    messageTs: row.message_ts === null || row.message_ts === undefined ? null : String(row.message_ts),
  };
}

export function toRun(row: Record<string, unknown>): RunRecord {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    id: String(row.id),
    runbook: String(row.runbook),
    kind: row.kind === 'undo' ? 'undo' : 'run',
    parentRunId: str(row.parent_run_id),
    state: String(row.state) as RunState,
    source: row.source === 'cli' || row.source === 'schedule' ? row.source : 'slack',
    requester: String(row.requester),
    channel: String(row.channel),
    reason: str(row.reason),
    input: fromJson(row.input) ?? {},
    accountAlias: str(row.account_alias),
    accountId: str(row.account_id),
    region: str(row.region),
    plan: fromJson(row.plan),
    planHash: str(row.plan_hash),
    requiredApprovals: Number(row.required_approvals),
    // SQLite stores booleans as 0/1, PostgreSQL as booleans.
    breakGlass: row.break_glass === true || Number(row.break_glass) === 1,
    reviewState: row.review_state === 'pending' || row.review_state === 'reviewed' ? row.review_state : null,
    expiresAt: num(row.expires_at),
    approvedAt: num(row.approved_at),
    messageTs: str(row.message_ts),
    result: fromJson(row.result),
    error: fromJson(row.error),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    executor: str(row.executor),
    heartbeatAt: num(row.heartbeat_at),
  };
}
