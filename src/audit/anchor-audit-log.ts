/**
 * Turns on audit checkpoints for an audit log when the configuration asks for them: builds the S3 store
 * and the signer, adds the checkpoint writer as a sink (its last checkpoint is written at `audit.close()`)
 * and starts its timer.
 */

import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { AuditLog } from './audit-log.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';

/** The writer, or undefined when `audit.checkpoints` is not configured. */
export async function anchorAuditLog(
  config: Config,
  audit: AuditLog,
  log: Logger,
  now: () => number = Date.now,
): Promise<CheckpointWriter | undefined> {
  const settings = config.audit.checkpoints;
  if (!settings) return undefined;
  // The S3, KMS and STS SDKs load only when checkpoints are configured (docs/benchmarks.md, memory).
  const { createAuditAnchor } = await import('./s3-checkpoint-anchor.ts');
  const anchor = await createAuditAnchor(settings, config.aws.region);
  const writer = new CheckpointWriter({
    chainId: settings.chainId,
    signer: anchor.signer,
    store: anchor.store,
    everyEntries: settings.every.entries,
    everyMs: settings.every.time,
    log,
    now,
  });
  audit.addSink(writer.sink, async () => {
    await writer.stop();
    anchor.destroy();
  });
  writer.start();
  log.info(
    {
      checkpoints: {
        location: anchor.store.location,
        signer: anchor.signer.label,
        everyEntries: settings.every.entries ?? null,
        everyMs: settings.every.time ?? null,
      },
    },
    'audit checkpoints on',
  );
  return writer;
}
