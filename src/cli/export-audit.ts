/**
 * `quell audit export --bucket B [--prefix P] [--from-seq N] [--chunk N] [--region R] [--db URL]`: writes
 * the chain as JSON lines to S3 for a SIEM, in objects of at most `--chunk` entries, each line with its
 * hash and the previous one so the receiver can re-verify it (docs/audit.md).
 */

import { parseArgs } from 'node:util';
import { exportAuditChain } from '../audit/export-audit-chain.ts';
import { createS3ExportWriter } from '../audit/s3-checkpoint-anchor.ts';
import type { Config } from '../config.ts';
import { openExistingStore, redactDatabaseUrl } from '../open-store.ts';

export const AUDIT_EXPORT_USAGE =
  'usage: quell audit export --bucket NAME [--prefix quell/export/] [--from-seq 1] [--chunk 10000] [--region R] [--db URL]\n';

/** Runs `quell audit export`; resolves to the exit code. */
export async function exportAudit(
  args: string[],
  config: Config | undefined,
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        bucket: { type: 'string' },
        prefix: { type: 'string' },
        'from-seq': { type: 'string' },
        chunk: { type: 'string' },
        region: { type: 'string' },
        db: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    err(`${(error as Error).message}\n${AUDIT_EXPORT_USAGE}`);
    return 2;
  }
  const problems: string[] = [];
  const bucket = values.bucket;
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    problems.push('--bucket must be an S3 bucket name');
  const prefix = values.prefix ?? 'quell/export/';
  if (!/^(?:[A-Za-z0-9!_.*'()-]+\/)*$/.test(prefix)) problems.push('--prefix must be empty or end in /');
  const fromSeq = Number(values['from-seq'] ?? '1');
  if (!Number.isSafeInteger(fromSeq) || fromSeq < 1)
    problems.push('--from-seq must be a whole number from 1');
  const chunk = Number(values.chunk ?? '10000');
  if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > 1_000_000)
    problems.push('--chunk must be 1–1000000');
  const url = values.db ?? config?.storage.url;
  if (!url) problems.push('give --db (the configuration could not be read)');
  if (problems.length > 0 || !bucket || !url) {
    err(`${problems.map((p) => `quell: ${p}`).join('\n')}\n${AUDIT_EXPORT_USAGE}`);
    return 2;
  }
  const region =
    values.region ??
    config?.audit.checkpoints?.region ??
    config?.aws.region ??
    process.env.AWS_REGION ??
    'us-east-1';
  const chainId = config?.audit.checkpoints?.chainId ?? 'quell';

  let store: Awaited<ReturnType<typeof openExistingStore>>;
  try {
    store = await openExistingStore(url);
  } catch (error) {
    err(`cannot open the audit log at ${redactDatabaseUrl(url)}: ${(error as Error).message}\n`);
    return 1;
  }
  const writer = createS3ExportWriter(region, bucket);
  let lastWritten: string | undefined;
  const write = async (key: string, body: string) => {
    await writer.put(key, body);
    lastWritten = key;
  };
  try {
    const result = await exportAuditChain(store, write, {
      prefix,
      chainId,
      fromSeq,
      chunkEntries: chunk,
    });
    out(
      result.entries === 0
        ? `nothing to export: no entries from #${fromSeq}\n`
        : `exported ${result.entries} entries (#${result.firstSeq}–#${result.lastSeq}) to s3://${bucket}/${prefix}${chainId}/ in ${result.keys.length} object${result.keys.length === 1 ? '' : 's'}\n`,
    );
    return 0;
  } catch (error) {
    err(
      `quell: the export stopped: ${(error as Error).name}. ${
        lastWritten
          ? `The last object written is ${lastWritten}; rerun with --from-seq after its last entry to go on.`
          : 'No object was written.'
      }\n`,
    );
    return 1;
  } finally {
    writer.destroy();
    await store.close();
  }
}
