/**
 * Mirrors run-level audit entries (not every AWS call) into the audit channel, one line each with the
 * entry's sequence number and hash, so the chain's progress is also witnessed outside the database.
 * Lines are posted one after another to keep their order.
 */
import type { webApi } from '@slack/bolt';
import type { AuditSink } from '../audit/audit-log.ts';
import type { CheckpointEvent } from '../audit/checkpoint-writer.ts';
import type { Logger } from '../logger.ts';
import type { AuditRecord } from '../store/store.ts';
import { escapeCode, escapeMrkdwn } from './escape-text.ts';
import { type RetrySlackOptions, retrySlackCall } from './retry-slack-call.ts';

/** The audit entry types mirrored into the audit channel (the proof checks each one arrived). */
export const MIRRORED = new Set([
  'command.rejected',
  'plan.created',
  'plan.failed',
  'approval.requested',
  'approval.decision',
  'approval.rejected',
  'approval.expired',
  'run.approved',
  'run.break_glass',
  'run.reviewed',
  'plan.changed',
  'run.finished',
  'undo.requested',
  'run.cancelled',
  'reminder.posted',
  'reminder.failed',
  'finding.snoozed',
  'finding.posted',
  'finding.poisoned',
  'command.received',
  'run.recovered',
  'run.needs_operator',
]);

/**
 * Creates the sink; `checkpoint` posts each audit checkpoint (and each failure to write one) in the same
 * order; `drain` resolves when every queued line has been posted.
 */
export function createAuditChannelSink(
  client: webApi.WebClient,
  channel: string,
  log: Logger,
  retry: RetrySlackOptions = {},
): { sink: AuditSink; checkpoint(event: CheckpointEvent): void; drain(): Promise<void> } {
  let queue: Promise<unknown> = Promise.resolve();
  const post = (text: string, context: Record<string, unknown>) => {
    queue = queue.then(() =>
      // Rate limits and 5xx pass: the line waits for them (in order) rather than leaving a gap.
      retrySlackCall(() => client.chat.postMessage({ channel, text, unfurl_links: false }), retry).catch(
        (err: unknown) => {
          // The chain in the store is intact; only the outside copy has a gap, which must be visible.
          log.error({ err, ...context }, 'could not mirror an audit entry to the audit channel');
        },
      ),
    );
    return queue.then(() => undefined);
  };
  const sink: AuditSink = (record: AuditRecord) => {
    if (!MIRRORED.has(record.type)) return;
    return post(describe(record), { seq: record.seq, type: record.type });
  };
  return {
    sink,
    checkpoint: (event) => {
      void post(describeCheckpoint(event), { checkpoint: event.kind });
    },
    drain: () => queue.then(() => undefined),
  };
}

/** The audit-channel line for a checkpoint written (with the full hash) or a checkpoint that failed. */
export function describeCheckpoint(event: CheckpointEvent): string {
  if (event.kind === 'written') {
    const d = event.document;
    return `:lock: audit checkpoint \`#${d.seq}\` hash \`${d.hash}\` at ${d.time} · signed (${d.signer.kind}) · \`${escapeCode(event.location, 300)}\``;
  }
  return `:warning: audit checkpoint for \`#${event.seq}\` could not be written (${escapeCode(event.error, 80)}, attempt ${event.attempt}); retrying in ${Math.round(event.retryInMs / 1000)} s. Entries after \`#${event.lastAnchoredSeq}\` are not anchored outside the database yet.`;
}

function describe(record: AuditRecord): string {
  const data = record.data as Record<string, unknown>;
  const detail = [data.summary, data.decision, data.state, data.reason, data.message]
    .filter((v): v is string => typeof v === 'string')
    .join(' · ');
  return [
    `\`#${record.seq}\` \`${record.type}\``,
    record.runId ? `run \`${record.runId}\`` : '',
    // Plain ids, not mentions: the audit channel should not ping people.
    record.actor ? `by \`${escapeCode(record.actor, 64)}\`` : '',
    detail ? `— ${escapeMrkdwn(detail, 500)}` : '',
    `· hash \`${record.hash}\``,
  ]
    .filter(Boolean)
    .join(' ');
}
