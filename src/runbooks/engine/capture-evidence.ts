/**
 * Evidence before containment: after the approval and the re-check, before the first change, the engine
 * takes the runbook's read-only snapshot (its `evidence`), serialises it, hashes it (SHA-256), keeps it in
 * the evidence bucket when one is configured, attaches it to the run's thread and records the hash in the
 * audit chain (`evidence.captured`). Any failure is recorded (`evidence.missing`) and said in the thread;
 * it never stops the containment.
 */
import { createHash } from 'node:crypto';
import { asQuellError } from '../../errors.ts';
import { scrubSecrets } from '../../logger.ts';
import type { Json, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, Plan, RunContext } from '../define-runbook.ts';
import type { EngineSettings } from './lifecycle.ts';

/** What the run record (and the card) keeps of the evidence: where it is and its hash, or why it is missing. */
export type EvidenceSummary =
  | {
      status: 'captured';
      filename: string;
      sha256: string;
      bytes: number;
      /** Whether the file reached the run's thread. */
      attached: boolean;
      /** The S3 object, when the evidence bucket is configured and the write succeeded. */
      bucket: string | null;
      key: string | null;
      versionId: string | null;
      retainUntil: string | null;
      /** What did not work besides (the bucket write, the upload), in words. */
      problems: string[];
    }
  | { status: 'missing'; reason: string };

// Field names whose values are never kept, whatever AWS returns (CloudTrail quotes session credentials).
const SECRET_KEY = /secret|password|passphrase|token|credential|private.?key/i;
const NOT_SECRET = new Set(['NextToken', 'ClientRequestToken']);

/** Deep copy with secret-named fields dropped and token-shaped text scrubbed from every string. */
export function scrubEvidence(value: Json): Json {
  if (typeof value === 'string') return scrubSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(scrubEvidence);
  const out: Record<string, Json> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && !NOT_SECRET.has(key) ? '[redacted]' : scrubEvidence(inner);
  }
  return out;
}

/** The SHA-256 of text, hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Captures the run's evidence, when its runbook declares any and the run is not an undo. Resolves with
 * what the run record keeps; never rejects.
 */
export async function captureEvidence(
  d: EngineSettings,
  run: RunRecord,
  runbook: AnyRunbook,
  ctx: RunContext,
  plan: Plan,
): Promise<EvidenceSummary | undefined> {
  if (run.kind !== 'run' || !runbook.evidence) return undefined;
  let body: string;
  try {
    const document = await runbook.evidence(ctx, plan);
    body = `${JSON.stringify(
      {
        quellEvidence: 1,
        runId: run.id,
        runbook: run.runbook,
        account: { alias: run.accountAlias, id: run.accountId },
        region: run.region,
        requester: run.requester,
        approvedAt: run.approvedAt === null ? null : new Date(run.approvedAt).toISOString(),
        capturedAt: new Date(d.now()).toISOString(),
        evidence: scrubEvidence(document),
      },
      null,
      2,
    )}\n`;
  } catch (error) {
    const e = asQuellError(error);
    d.log.warn({ err: error, runId: run.id }, 'could not capture the evidence');
    const reason = `${e.code}: ${e.message}`;
    await d.audit.record({
      type: 'evidence.missing',
      runId: run.id,
      data: { code: e.code, message: e.message },
    });
    await d.notifier
      .reply(run, `Evidence NOT captured (${reason}). The containment goes ahead without it.`)
      .catch(() => undefined);
    return { status: 'missing', reason };
  }

  const sha256 = sha256Hex(body);
  const bytes = Buffer.byteLength(body);
  const filename = `evidence-${run.runbook}-${run.id}.json`;
  const problems: string[] = [];
  let stored: Awaited<ReturnType<NonNullable<EngineSettings['evidenceBucket']>['put']>> | undefined;
  if (d.evidenceBucket) {
    try {
      stored = await d.evidenceBucket.put(
        `${run.accountId ?? 'unknown'}/${run.id}/${filename}`,
        body,
        'application/json',
      );
    } catch (error) {
      d.log.warn({ err: error, runId: run.id }, 'could not write the evidence to the evidence bucket');
      problems.push(`not written to ${d.evidenceBucket.location} (${asQuellError(error).message})`);
    }
  }
  let attached = false;
  try {
    await d.notifier.upload(run, [
      { filename, title: `Evidence before containment (${run.runbook}, ${run.id})`, content: body },
    ]);
    attached = true;
  } catch (error) {
    d.log.warn({ err: error, runId: run.id }, 'could not attach the evidence to the thread');
    problems.push('not attached to the thread');
  }
  const summary: EvidenceSummary = {
    status: 'captured',
    filename,
    sha256,
    bytes,
    attached,
    bucket: stored?.bucket ?? null,
    key: stored?.key ?? null,
    versionId: stored?.versionId ?? null,
    retainUntil: stored?.retainUntil ?? null,
    problems,
  };
  // Intent before action: the hash is in the chain before the first change is sent.
  await d.audit.record({ type: 'evidence.captured', runId: run.id, data: summary });
  await d.notifier
    .reply(
      run,
      `Evidence captured before any change: ${filename}, ${bytes} bytes, SHA-256 ${sha256}${stored ? `, kept in s3://${stored.bucket}/${stored.key} until ${stored.retainUntil}` : ''}.${problems.length ? ` Not everything worked: ${problems.join('; ')}.` : ''}`,
    )
    .catch(() => undefined);
  return summary;
}

/** The summary as stored with the run. */
export function evidenceJson(summary: EvidenceSummary): Json {
  return summary as unknown as Json;
}
