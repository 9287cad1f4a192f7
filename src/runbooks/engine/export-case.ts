/**
 * `case <thread-or-run-id>` (and the card's Case file button): finds the case the requester may see,
 * builds its files, keeps them in the evidence bucket when one is configured, attaches them to the
 * thread of the case's first run, and records the export (who, which runs, the files' hashes).
 */
import type { StoredEvidence } from '../../audit/evidence-bucket.ts';
import { NotAllowedError } from '../../errors.ts';
import type { RunRecord } from '../../store/store.ts';
import { buildCaseFiles, type CaseFiles, collectCase, describeFile } from './case-file.ts';
import type { RunLifecycle } from './lifecycle.ts';
import { listRunbooksAllowedIn } from './prepare-command.ts';
import { guardedByChannel, type Requester } from './run-notifier.ts';

/** What an export produced. */
export interface CaseExportResult {
  root: RunRecord;
  runs: RunRecord[];
  files: CaseFiles;
  /** The objects in the evidence bucket, when configured and written. */
  stored: StoredEvidence[];
  /** Whether the files reached the thread. */
  attached: boolean;
}

/** Exports one case for `requester` (see Engine.exportCase). */
export async function exportCase(
  life: RunLifecycle,
  reference: string,
  requester: Requester,
): Promise<CaseExportResult> {
  const { d } = life;
  const channel = guardedByChannel(requester) ? requester.channel : null;
  const records = await collectCase(d.store, reference, channel);
  if (channel !== null) {
    const allowed = new Set(listRunbooksAllowedIn(d.config, d.runbooks, channel).map((r) => r.id));
    if (!records.runs.some((r) => allowed.has(r.runbook)))
      throw new NotAllowedError(
        `This channel may run none of this case's runbooks, so its case file is not shown here.`,
        'channels',
      );
  }
  const { root, runs } = records;
  const generatedAt = d.now();
  const files = buildCaseFiles(records, { generatedAt, generatedBy: requester.user, reference });
  const stored: StoredEvidence[] = [];
  const problems: string[] = [];
  if (d.evidenceBucket) {
    const stamp = new Date(generatedAt).toISOString().replace(/[:.]/g, '-');
    for (const [file, type] of [
      [files.markdown, 'text/markdown'],
      [files.json, 'application/json'],
    ] as const) {
      try {
        stored.push(
          await d.evidenceBucket.put(
            `${root.accountId ?? 'unknown'}/${root.id}/${stamp}-${file.filename}`,
            file.content,
            type,
          ),
        );
      } catch (error) {
        d.log.warn({ err: error, runId: root.id }, 'could not write the case file to the evidence bucket');
        problems.push(`${file.filename} not written to ${d.evidenceBucket.location}`);
      }
    }
  }
  let attached = false;
  try {
    await d.notifier.upload(root, [files.markdown, files.json]);
    attached = true;
  } catch (error) {
    d.log.warn({ err: error, runId: root.id }, 'could not attach the case file');
    problems.push('not attached to the thread');
  }
  await d.audit.record({
    type: 'case.exported',
    runId: root.id,
    actor: requester.user,
    data: {
      reference,
      source: requester.source,
      channel: requester.channel,
      runs: runs.map((r) => r.id),
      files: [describeFile(files.markdown), describeFile(files.json)],
      stored: stored.map((s) => ({ bucket: s.bucket, key: s.key, versionId: s.versionId })),
      attached,
      problems,
    },
  });
  return { root, runs, files, stored, attached };
}
