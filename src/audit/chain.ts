/**
 * The audit hash chain. Each entry's hash covers its sequence number, content and the previous entry's
 * hash, so editing, deleting or reordering any entry breaks every hash after it.
 */
import { createHash } from 'node:crypto';
import { GENESIS_HASH } from '../store/run-rows.ts';
import type { AuditInput, AuditRecord, Json } from '../store/store.ts';

/** JSON with object keys sorted at every level, so the same value always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The hash of one entry given the previous hash. */
export function hashAuditEntry(prevHash: string, seq: number, entry: AuditInput): string {
  const body = canonicalJson({
    seq,
    at: entry.at,
    runId: entry.runId,
    type: entry.type,
    actor: entry.actor,
    data: entry.data as Json,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/** The result of checking a chain: ok, or the first entry that does not fit and why. */
export type ChainVerdict =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; badSeq: number; reason: string };

/**
 * Recomputes the chain over `records` (in stored order) and names the first bad entry. From the genesis by
 * default; `from` checks a segment that starts later (the previous entry's hash and the first seq).
 */
export function verifyAuditChain(
  records: Iterable<AuditRecord>,
  from: { prevHash: string; seq: number } = { prevHash: GENESIS_HASH, seq: 1 },
): ChainVerdict {
  let prevHash = from.prevHash;
  let expectedSeq = from.seq;
  let count = 0;
  for (const record of records) {
    count++;
    if (record.seq !== expectedSeq) {
      return {
        ok: false,
        entries: count,
        badSeq: record.seq,
        reason:
          record.seq > expectedSeq
            ? `entries ${expectedSeq}–${record.seq - 1} are missing`
            : `entry is out of order (expected ${expectedSeq})`,
      };
    }
    if (record.prevHash !== prevHash) {
      return {
        ok: false,
        entries: count,
        badSeq: record.seq,
        reason: 'does not link to the entry before it (deleted or reordered)',
      };
    }
    if (hashAuditEntry(prevHash, record.seq, record) !== record.hash) {
      return {
        ok: false,
        entries: count,
        badSeq: record.seq,
        reason: 'content does not match its hash (edited)',
      };
    }
    prevHash = record.hash;
    expectedSeq++;
  }
  return { ok: true, entries: count, head: prevHash };
}
