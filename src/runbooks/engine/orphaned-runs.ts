/**
 * What a replica needs to take over the runs of a replica that died: its own identity, and for a run that
 * died while executing, what the audit log says about its AWS calls. The audit log is quell's write-ahead
 * log: the intent of every mutating call is committed before the call is sent, so an intent without an
 * outcome is a call that may or may not have reached AWS, and a run with no mutating intent sent nothing.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AuditRecord, RunRecord } from '../../store/store.ts';

/** Which replica works on a run: the host (the pod's name in Kubernetes), the process id and a nonce. */
export function newReplicaId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '')
      .slice(0, 63) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** How replicas share in-flight work (config `replicas`). */
export interface ReplicaOptions {
  id: string;
  /** A run whose replica has not beaten for this long is taken over. */
  orphanAfterMs: number;
}

/** The mutating AWS calls of one run, from its audit entries. */
export interface CallSummary {
  /** `service:Operation` of each intent with no recorded outcome: may or may not have happened. */
  unfinished: string[];
  /** Mutating calls AWS answered successfully. */
  completed: string[];
  /** Mutating calls AWS refused. */
  refused: string[];
}

/** Pairs each `aws.intent` with the next `aws.call` of the same operation. */
export function summarizeMutatingCalls(entries: readonly AuditRecord[]): CallSummary {
  const open = new Map<string, number>();
  const summary: CallSummary = { unfinished: [], completed: [], refused: [] };
  for (const entry of entries) {
    const data = (entry.data ?? {}) as {
      service?: string;
      operation?: string;
      outcome?: string;
      mutating?: boolean;
    };
    const name = `${data.service ?? '?'}:${data.operation ?? '?'}`;
    if (entry.type === 'aws.intent') open.set(name, (open.get(name) ?? 0) + 1);
    if (entry.type === 'aws.call' && data.mutating) {
      const pending = open.get(name) ?? 0;
      if (pending > 0) open.set(name, pending - 1);
      (data.outcome === 'ok' ? summary.completed : summary.refused).push(name);
    }
  }
  for (const [name, count] of open) for (let i = 0; i < count; i++) summary.unfinished.push(name);
  return summary;
}

/**
 * The thread message (and the run's error) for a run whose replica died while executing it. quell does
 * not retry such a run: it cannot know whether an unfinished call took effect, and a runbook that is not
 * idempotent must not run twice. It says what is known and what the operator should check.
 */
export function describeInterruptedRun(run: RunRecord, calls: CallSummary): string {
  const seen = run.heartbeatAt ? ` (last heartbeat ${new Date(run.heartbeatAt).toISOString()})` : '';
  const who = run.executor ? `replica \`${run.executor}\`${seen}` : 'its replica';
  const list = (names: string[]) => names.map((n) => `\`${n}\``).join(', ');
  const parts = [
    `The quell replica executing this run stopped before it finished: ${who}. The run is not retried automatically, because quell cannot tell which changes took effect.`,
  ];
  if (calls.unfinished.length > 0)
    parts.push(
      `Sent or about to be sent, with no answer recorded: ${list(calls.unfinished)} — check in AWS whether it took effect.`,
    );
  if (calls.completed.length > 0) parts.push(`Completed before it stopped: ${list(calls.completed)}.`);
  if (calls.refused.length > 0) parts.push(`Refused by AWS: ${list(calls.refused)}.`);
  if (calls.unfinished.length === 0 && calls.completed.length === 0)
    parts.push(
      'No change had been sent to AWS (the audit log holds no intent of a mutating call for this run), so requesting it again is safe.',
    );
  else
    parts.push(
      'An operator should check the target (every call and its parameters are in the audit log), then request the run again if it is still needed.',
    );
  return parts.join(' ');
}
