/**
 * The audit log: every command, plan, decision, AWS call and result, appended to the hash chain in the
 * store first and then copied to the sinks (the JSON log, the audit channel). Data is sanitised before
 * it is hashed: secret-named fields are dropped and token-shaped text is scrubbed.
 */
import type { Logger } from '../logger.ts';
import { scrubSecrets } from '../logger.ts';
import type { AuditRecord, Json, Store } from '../store/store.ts';
import { type ChainVerdict, hashAuditEntry, verifyAuditChain } from './chain.ts';

/** The kinds of entries quell writes. */
export type AuditType =
  | 'command.received'
  | 'command.rejected'
  | 'plan.created'
  | 'plan.failed'
  | 'approval.requested'
  | 'approval.intent'
  | 'approval.decision'
  | 'approval.rejected'
  | 'approval.expired'
  | 'run.approved'
  | 'run.break_glass'
  | 'run.reviewed'
  | 'run.recovered'
  | 'run.needs_operator'
  | 'run.retried'
  | 'retry.rejected'
  | 'plan.rechecked'
  | 'plan.changed'
  | 'execute.started'
  | 'aws.intent'
  | 'aws.call'
  | 'execute.finished'
  | 'verify.finished'
  | 'run.finished'
  | 'undo.requested'
  | 'session.assumed'
  | 'run.cancelled'
  | 'run.confirmed'
  | 'reminder.started'
  | 'reminder.findings'
  | 'reminder.posted'
  | 'reminder.failed'
  | 'finding.snoozed'
  | 'finding.posted'
  | 'finding.poisoned'
  | 'evidence.captured'
  | 'evidence.missing'
  | 'case.exported';

/** One event to record. */
export interface AuditEvent {
  type: AuditType;
  runId?: string | null;
  actor?: string | null;
  data?: Record<string, unknown>;
}

/** Something that receives each entry after it is committed (a log, a Slack channel). */
export type AuditSink = (record: AuditRecord) => void | Promise<void>;

const SECRET_KEY = /secret|password|passphrase|token|credential|private.?key/i;
// Names that match SECRET_KEY but hold no secret.
const NOT_SECRET = new Set(['ClientRequestToken', 'NextToken', 'nextToken']);

/** Deep copy with secret-named fields removed and token-shaped strings scrubbed. */
export function sanitizeAuditData(value: unknown, depth = 0): Json {
  if (depth > 8) return '[truncated]';
  if (value === null || value === undefined) return null;
  if (typeof value === 'string')
    return scrubSecrets(value.length > 4000 ? `${value.slice(0, 4000)}…` : value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.slice(0, 500).map((v) => sanitizeAuditData(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      out[k] = SECRET_KEY.test(k) && !NOT_SECRET.has(k) ? '[redacted]' : sanitizeAuditData(v, depth + 1);
    }
    return out;
  }
  return String(value);
}

/** Append-only, hash-chained audit log over a store. */
export class AuditLog {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #sinks: AuditSink[] = [];
  readonly #closers: (() => Promise<void>)[] = [];
  readonly #now: () => number;

  constructor(store: Store, log: Logger, now: () => number = Date.now) {
    this.#store = store;
    this.#log = log;
    this.#now = now;
  }

  /**
   * Adds a sink that sees every committed entry (best effort: a failing sink is logged, not fatal).
   * `close` runs at `close()`, for a sink that finishes work of its own (the checkpoint writer's last one).
   */
  addSink(sink: AuditSink, close?: () => Promise<void>): void {
    this.#sinks.push(sink);
    if (close) this.#closers.push(close);
  }

  /** Lets every sink finish (the last checkpoint of what this process wrote); call before closing the store. */
  async close(): Promise<void> {
    // Sinks are handed each entry on a later tick: let the last ones arrive before closing.
    await new Promise((resolve) => setImmediate(resolve));
    for (const close of this.#closers.splice(0)) {
      await close().catch((err: unknown) => this.#log.warn({ err }, 'an audit sink did not close cleanly'));
    }
  }

  /** Commits the event to the chain, then hands it to the sinks. Resolves once it is committed. */
  async record(event: AuditEvent): Promise<AuditRecord> {
    const record = await this.#store.appendAudit(
      {
        at: this.#now(),
        runId: event.runId ?? null,
        type: event.type,
        actor: event.actor ?? null,
        data: sanitizeAuditData(event.data ?? {}),
      },
      hashAuditEntry,
    );
    this.#log.info(
      {
        audit: {
          seq: record.seq,
          type: record.type,
          runId: record.runId,
          actor: record.actor,
          data: record.data,
        },
      },
      'audit',
    );
    for (const sink of this.#sinks) {
      Promise.resolve()
        .then(() => sink(record))
        .catch((err: unknown) => this.#log.warn({ err, seq: record.seq }, 'audit sink failed'));
    }
    return record;
  }

  /** Recomputes the whole chain from the store. */
  async verify(): Promise<ChainVerdict> {
    return verifyAuditChain(await this.#store.listAudit());
  }
}
