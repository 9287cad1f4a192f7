/**
 * Evidence before containment: after the approval, before the first change, the engine takes the
 * runbook's read-only snapshot (its `evidence`) — read at the same time as the re-check, so it adds no
 * round trip of its own — and once the re-check has matched, serialises it, hashes it (SHA-256), keeps
 * it in the evidence bucket when one is configured, attaches it to the run's thread and records the hash
 * in the audit chain (`evidence.captured`). Any failure is recorded (`evidence.missing`) and said in the
 * thread; it never stops the containment, and a snapshot that takes longer than EVIDENCE_TIMEOUT_MS is
 * abandoned so that it cannot hold the containment up either.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, QuellError } from '../../errors.ts';
import { scrubSecrets } from '../../logger.ts';
import type { Json, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, EvidenceDocument, Plan, RunContext } from '../define-runbook.ts';
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

/** How long the snapshot may take before the containment goes ahead without it. */
export const EVIDENCE_TIMEOUT_MS = 30_000;

/** The runbook's snapshot as read: its document, or the error that stopped it. */
export type EvidenceRead = { document: EvidenceDocument } | { error: unknown };

/**
 * Starts reading the run's evidence, when its runbook declares any and the run is not an undo, with the
 * run's context bounded by EVIDENCE_TIMEOUT_MS. Never rejects.
 */
export function readEvidence(
  run: RunRecord,
  runbook: AnyRunbook,
  ctx: RunContext,
  plan: Plan,
): Promise<EvidenceRead> | undefined {
  const evidence = runbook.evidence;
  if (run.kind !== 'run' || !evidence) return undefined;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(EVIDENCE_TIMEOUT_MS)]);
  const aborted = new Promise<never>((_, reject) => {
    signal.addEventListener(
      'abort',
      () => reject(new EvidenceTimeoutError(`the snapshot took longer than ${EVIDENCE_TIMEOUT_MS / 1000} s`)),
      { once: true },
    );
  });
  aborted.catch(() => undefined);
  return Promise.race([evidence({ ...ctx, signal }, plan), aborted]).then(
    (document) => ({ document }),
    (error: unknown) => ({ error }),
  );
}

/** The snapshot was abandoned because it took too long. */
class EvidenceTimeoutError extends Error {
  override name = 'EvidenceTimeoutError';
}

/**
 * Records the evidence read by `readEvidence`: serialised, hashed, kept in the bucket, attached to the
 * thread, its hash in the audit chain. Resolves with what the run record keeps; never rejects.
 */
export async function captureEvidence(
  d: EngineSettings,
  run: RunRecord,
  reading: Promise<EvidenceRead>,
): Promise<EvidenceSummary> {
  let body: string;
  try {
    const read = await reading;
    if ('error' in read) throw read.error;
    const document = read.document;
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
    const e = describeFailure(error);
    d.log.warn({ err: error, runId: run.id }, 'could not capture the evidence');
    const reason = `${e.code}: ${e.message}`;
    await d.audit.record({
      type: 'evidence.missing',
      runId: run.id,
      data: e,
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
      problems.push(`not written to ${d.evidenceBucket.location} (${describeFailure(error).message})`);
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

/** What the audit entry and the thread say of a failure: a QuellError's words, else only the error's name. */
function describeFailure(error: unknown): { code: string; message: string } {
  if (error instanceof QuellError) return { code: error.code, message: error.message };
  if (error instanceof EvidenceTimeoutError)
    return { code: 'quell_evidence_timeout', message: error.message };
  const name = error instanceof Error ? error.name : 'error';
  return { code: ErrorCode.Unknown, message: `an unexpected ${name} (see the log)` };
}

/** The summary as stored with the run. */
export function evidenceJson(summary: EvidenceSummary): Json {
  return summary as unknown as Json;
}
