/**
 * The parts every entry point (the bot, the break-glass CLI) builds the same way: the store, the audit
 * log, the AWS sessions with every call audited, the per-service pacing (at this process's share of each
 * AWS limit) and the client factory.
 */
import { anchorAuditLog } from './audit/anchor-audit-log.ts';
import { AuditLog } from './audit/audit-log.ts';
import type { CheckpointWriter } from './audit/checkpoint-writer.ts';
import { createAuditCallRecorder } from './audit/record-aws-calls.ts';
import { AwsClientFactory } from './aws/client-factory.ts';
import { DEFAULT_RATE_LIMITS, mergeRateLimits, type RateLimit, RateLimiters } from './aws/rate-limits.ts';
import { AwsSessions } from './aws/sessions.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { openStore } from './open-store.ts';
import type { AnyRunbook } from './runbooks/define-runbook.ts';
import { RUNBOOKS } from './runbooks/registry.ts';
import type { Store } from './store/store.ts';

/** What composeCore builds. */
export interface Core {
  store: Store;
  audit: AuditLog;
  sessions: AwsSessions;
  limiters: RateLimiters;
  aws: AwsClientFactory;
  /** Writes signed audit checkpoints outside the database, when `audit.checkpoints` is configured. */
  checkpoints: CheckpointWriter | undefined;
}

/**
 * Opens the store at `storageUrl` (default: the config's) and builds the audited AWS access over it,
 * paced by the default limits and those the runbooks declare (or by `rateLimits`, the whole table).
 */
export async function composeCore(
  config: Config,
  log: Logger,
  options: {
    now?: () => number;
    rateLimits?: Record<string, RateLimit>;
    runbooks?: readonly AnyRunbook[];
    storageUrl?: string;
  } = {},
): Promise<Core> {
  const now = options.now ?? Date.now;
  const store = await openStore(options.storageUrl ?? config.storage.url);
  const audit = new AuditLog(store, log, now);
  const checkpoints = await anchorAuditLog(config, audit, log, now).catch(async (error: unknown) => {
    await store.close().catch(() => undefined);
    throw error;
  });
  const recorder = createAuditCallRecorder(audit);
  const sessions = new AwsSessions(
    {
      region: config.aws.region,
      sessionSeconds: config.aws.sessionSeconds,
      externalId: config.aws.externalId,
    },
    log,
    { now, recorder },
  );
  // Each process paces at its share of every AWS limit (config replicas.count).
  const limits = options.rateLimits ?? mergeRateLimits(DEFAULT_RATE_LIMITS, options.runbooks ?? RUNBOOKS);
  const limiters = new RateLimiters(limits, { replicas: config.replicas.count });
  const aws = new AwsClientFactory({ sessions, limiters, recorder });
  return { store, audit, sessions, limiters, aws, checkpoints };
}
