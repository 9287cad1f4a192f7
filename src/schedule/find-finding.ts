/**
 * Resolves what a finding's button refers to. A button carries only `<id>.<index>`: the id of the
 * reminder (its findings are in the audit log) or of the on-demand `key-age` run (its findings are in
 * the run's result). Everything a handler acts on — account, key, user — is read back from there.
 */
import type { AccountKeyAgeReport, KeyFinding } from '../runbooks/key-age.ts';
import type { Store } from '../store/store.ts';

/** A finding as stored, with where it was shown. */
export interface StoredFinding {
  finding: KeyFinding;
  /** The channel it was posted to: buttons only work there. */
  channel: string;
  sourceId: string;
  index: number;
  /** `reminder` for scheduled reminders, `run` for `/quell key-age`. */
  source: 'reminder' | 'run';
}

const REF = /^(r[a-z2-7]{12})\.(\d{1,6})$/;

/** The reference a button carries. */
export function findingRef(sourceId: string, index: number): string {
  return `${sourceId}.${index}`;
}

/** Looks up a finding by its reference; undefined when the reference is malformed or unknown. */
export async function findStoredFinding(store: Store, ref: string): Promise<StoredFinding | undefined> {
  const match = REF.exec(ref);
  if (!match) return undefined;
  const sourceId = match[1] as string;
  const index = Number(match[2]);
  const run = await store.getRun(sourceId);
  if (run) {
    if (run.runbook !== 'key-age' || run.state !== 'succeeded') return undefined;
    const report = (run.result as { execute?: { data?: { report?: AccountKeyAgeReport } } } | null)?.execute
      ?.data?.report;
    const finding = report?.findings[index];
    return finding ? { finding, channel: run.channel, sourceId, index, source: 'run' } : undefined;
  }
  const entries = await store.listAudit({ runId: sourceId });
  for (const entry of entries) {
    if (entry.type !== 'reminder.findings') continue;
    const data = entry.data as { channel?: string; offset?: number; findings?: KeyFinding[] };
    const offset = data.offset ?? 0;
    const finding = data.findings?.[index - offset];
    if (index >= offset && finding && typeof data.channel === 'string') {
      return { finding, channel: data.channel, sourceId, index, source: 'reminder' };
    }
  }
  return undefined;
}
