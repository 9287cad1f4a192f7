/**
 * Mirrors run-level audit entries (not every AWS call) into the audit channel, one line each with the
 * entry's sequence number and hash, so the chain's progress is also witnessed outside the database.
 * Lines are posted one after another to keep their order.
 */
import type { webApi } from '@slack/bolt';
import type { AuditSink } from '../audit/audit-log.ts';
import type { Logger } from '../logger.ts';
import type { AuditRecord } from '../store/store.ts';
import { escapeCode, escapeMrkdwn } from './escape-text.ts';

const MIRRORED = new Set([
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
  'command.received',
  'run.recovered',
  'run.needs_operator',
]);

/** Creates the sink; returns a function that resolves when every queued line has been posted. */
export function createAuditChannelSink(
  client: webApi.WebClient,
  channel: string,
  log: Logger,
): { sink: AuditSink; drain(): Promise<void> } {
  let queue: Promise<unknown> = Promise.resolve();
  const sink: AuditSink = (record: AuditRecord) => {
    if (!MIRRORED.has(record.type)) return;
    const text = describe(record);
    queue = queue.then(() =>
      client.chat.postMessage({ channel, text, unfurl_links: false }).catch((err: unknown) => {
        // The chain in the store is intact; only the outside copy has a gap, which must be visible.
        log.error(
          { err, seq: record.seq, type: record.type },
          'could not mirror an audit entry to the audit channel',
        );
      }),
    );
    return queue.then(() => undefined);
  };
  return { sink, drain: () => queue.then(() => undefined) };
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
    `· hash \`${record.hash.slice(0, 16)}\``,
  ]
    .filter(Boolean)
    .join(' ');
}
