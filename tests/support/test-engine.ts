/**
 * The engine without Slack, wired as createQuell wires it (SQLite in a temp directory, the audit log,
 * STS sessions, rate limiters and the audited client factory), with a notifier that records what people
 * would be shown. For integration tests of runbooks against moto; the Slack side is tested end to end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { createAuditCallRecorder } from '../../src/audit/record-aws-calls.ts';
import { AwsClientFactory } from '../../src/aws/client-factory.ts';
import {
  DEFAULT_RATE_LIMITS,
  mergeRateLimits,
  type RateLimit,
  RateLimiters,
} from '../../src/aws/rate-limits.ts';
import { AwsSessions } from '../../src/aws/sessions.ts';
import { type Config, ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import { Engine } from '../../src/runbooks/engine/engine.ts';
import type { Requester, RunNotifier, RunView } from '../../src/runbooks/engine/run-notifier.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

export interface TestEngine {
  engine: Engine;
  store: SqliteStore;
  audit: AuditLog;
  config: Config;
  /** The AWS limiters the engine's clients pace at. */
  limiters: RateLimiters;
  /** Every card state shown, every thread reply, every private message. */
  shown: RunView[];
  replies: { runId: string; text: string }[];
  told: { requester: Requester; text: string }[];
  logLines: string[];
  close(): Promise<void>;
}

export const CHANNEL = 'C0INCIDENT';

export async function startTestEngine(options: {
  accounts: unknown[];
  runbooks?: readonly AnyRunbook[];
  rateLimits?: Record<string, RateLimit>;
  approvals?: Record<string, unknown>;
  /** The channel guardrails (default: CHANNEL may run everything on every account). */
  channels?: Record<string, unknown>;
}): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'quell-engine-'));
  const store = new SqliteStore(`sqlite:${join(dir, 'q.db')}`);
  await store.migrate();
  const config = ConfigSchema.parse({
    accounts: options.accounts,
    approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3'], ...options.approvals },
    channels: options.channels ?? { [CHANNEL]: { runbooks: ['*'], accounts: ['*'] } },
    storage: { url: 'sqlite::memory:' },
  });
  const logLines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: {
      write(line: string) {
        logLines.push(line);
      },
    },
  });
  const audit = new AuditLog(store, log);
  const recorder = createAuditCallRecorder(audit);
  const sessions = new AwsSessions({ region: 'us-east-1', sessionSeconds: 900 }, log, { recorder });
  // As composeCore builds it: the defaults and the runbooks' declared limits, unless a test sets its own.
  const limiters = new RateLimiters(
    options.rateLimits ?? mergeRateLimits(DEFAULT_RATE_LIMITS, options.runbooks ?? RUNBOOKS),
  );
  const shown: RunView[] = [];
  const replies: { runId: string; text: string }[] = [];
  const told: { requester: Requester; text: string }[] = [];
  const notifier: RunNotifier = {
    async showRun(view) {
      shown.push(view);
      return view.run.messageTs ?? `${1_700_000_000 + shown.length}.000100`;
    },
    async reply(run, text) {
      replies.push({ runId: run.id, text });
    },
    async tell(requester, text) {
      told.push({ requester, text });
    },
    async upload() {},
  };
  const engine = new Engine({
    config,
    store,
    audit,
    aws: new AwsClientFactory({ sessions, limiters, recorder }),
    directory: { groupMembers: async () => new Set() },
    notifier,
    log,
    ...(options.runbooks ? { runbooks: options.runbooks } : {}),
  });
  return {
    engine,
    store,
    audit,
    config,
    limiters,
    shown,
    replies,
    told,
    logLines,
    async close() {
      await engine.idle();
      await limiters.stop();
      sessions.destroy();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
