/**
 * The composition root: store, audit log, AWS sessions and clients, the engine, and the Bolt app with
 * its handlers, over Socket Mode (default) or HTTP. Tests build it exactly as production does.
 */

import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver } from '@slack/bolt';
import type { ApproverDirectory } from './approvals/approval-policy.ts';
import type { AuditLog } from './audit/audit-log.ts';
import type { RateLimit } from './aws/rate-limits.ts';
import type { AwsSessions } from './aws/sessions.ts';
import { composeCore } from './compose-core.ts';
import type { Config } from './config.ts';
import { FindingPoller } from './findings/finding-poller.ts';
import { createSqsFindingsQueue, type FindingsQueue } from './findings/sqs-findings-queue.ts';
import type { Logger } from './logger.ts';
import { redactDatabaseUrl } from './open-store.ts';
import type { AnyRunbook } from './runbooks/define-runbook.ts';
import { Engine } from './runbooks/engine/engine.ts';
import { newReplicaId } from './runbooks/engine/recovery.ts';
import { RUNBOOKS } from './runbooks/registry.ts';
import { ReminderScheduler, type SchedulerClock, SYSTEM_CLOCK } from './schedule/reminder-scheduler.ts';
import { createActionRouter } from './slack/action-router.ts';
import { createAuditChannelSink } from './slack/audit-channel-sink.ts';
import { createBoltLogger } from './slack/bolt-logger.ts';
import { createHttpServer } from './slack/http-server.ts';
import { createKeyAgeResultView } from './slack/key-age-result-view.ts';
import { createReminderRunner } from './slack/post-reminder.ts';
import { createFindingCardPoster } from './slack/post-security-finding.ts';
import { registerAppHome } from './slack/register-app-home.ts';
import { registerFindingHandlers } from './slack/register-finding-handlers.ts';
import { registerHandlers } from './slack/register-handlers.ts';
import { registerSecurityFindingHandlers } from './slack/register-security-finding-handlers.ts';
import { indexResultViews, withResultViews } from './slack/result-views.ts';
import { createSlackDirectory } from './slack/slack-directory.ts';
import { createSlackNotifier } from './slack/slack-notifier.ts';
import { verifyBotToken } from './slack/verify-bot-token.ts';
import type { Store } from './store/store.ts';

/** The Slack secrets the chosen mode needs. */
export interface SlackSecrets {
  botToken: string;
  appToken?: string | undefined;
  signingSecret?: string | undefined;
}

/** Everything needed to build quell. */
export interface QuellOptions {
  config: Config;
  secrets: SlackSecrets;
  log: Logger;
  /** Slack Web API base URL override (SLACK_API_URL), e.g. a local fake in tests. */
  slackApiUrl?: string | undefined;
  /** Port of the HTTP server (events in http mode, /healthz in both). 0 picks a free port. */
  port?: number | undefined;
  host?: string;
  now?: () => number;
  /** The runbooks offered (default: the registered ones); their declared rate limits pace AWS calls. */
  runbooks?: readonly AnyRunbook[];
  /** The whole limiter table, replacing the defaults and the runbooks' declarations (benchmarks, tests). */
  rateLimits?: Record<string, RateLimit>;
  /** Overrides the Slack user-group lookup (tests of the policy only). */
  directory?: ApproverDirectory;
  /** How often to expire overdue approval requests. */
  sweepIntervalMs?: number;
  /** The reminders' clock and timers (tests move time by hand). */
  schedulerClock?: SchedulerClock;
  /** The findings queue (default: the SQS queue of `findings`, when configured). */
  findingsQueue?: FindingsQueue;
}

/** A built quell: start it, stop it, and reach its parts. */
export interface Quell {
  app: App;
  engine: Engine;
  store: Store;
  audit: AuditLog;
  sessions: AwsSessions;
  start(): Promise<{ port: number }>;
  stop(): Promise<void>;
  /** Resolves when runs in flight and audit-channel lines have settled. */
  idle(): Promise<void>;
  counters: { rejectedTimestamps: number };
  /** The credential-age reminder scheduler. */
  reminders: ReminderScheduler;
  /** The findings poller, when `findings` is configured. */
  findings: FindingPoller | undefined;
}

/** Builds quell from validated config and secrets. */
export async function createQuell(options: QuellOptions): Promise<Quell> {
  const { config, secrets, log } = options;
  const now = options.now ?? Date.now;
  const boltLogger = createBoltLogger(log);
  const clientOptions = {
    slackApiUrl: options.slackApiUrl,
    retryConfig: { retries: 3, factor: 2, minTimeout: 500 },
  };
  // Checked first, once, so that a bad token or an unreachable Slack stops the start with a readable
  // message before anything is opened; Bolt, given the ids, makes no auth.test call of its own (whose
  // rejection it would leave unhandled, crashing the process after "quell started").
  const identity = await verifyBotToken(secrets.botToken, { ...clientOptions, logger: boltLogger });
  const { store, audit, sessions, limiters, aws, checkpoints } = await composeCore(config, log, {
    now,
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    ...(options.runbooks ? { runbooks: options.runbooks } : {}),
  });

  let receiver: HTTPReceiver | undefined;
  let app: App;
  if (config.slack.mode === 'http') {
    if (!secrets.signingSecret) throw new Error('http mode needs the signing secret');
    receiver = new HTTPReceiver({
      signingSecret: secrets.signingSecret,
      endpoints: '/slack/events',
      processBeforeResponse: false,
      logger: boltLogger,
    });
    app = new App({ token: secrets.botToken, ...identity, receiver, logger: boltLogger, clientOptions });
  } else {
    if (!secrets.appToken) throw new Error('socket mode needs the app-level token');
    app = new App({
      token: secrets.botToken,
      ...identity,
      appToken: secrets.appToken,
      socketMode: true,
      logger: boltLogger,
      clientOptions,
    });
  }

  const directory = options.directory ?? createSlackDirectory(app.client, { now });
  const runbooks = options.runbooks ?? RUNBOOKS;
  // What runbooks show of a finished run beyond its card, by runbook id (see result-views.ts).
  const keyAgeView = createKeyAgeResultView(app.client, { config, runbooks, store, log, now });
  const notifier = withResultViews(createSlackNotifier(app.client, log), indexResultViews([keyAgeView]), log);
  const replicaId = newReplicaId();
  const engine = new Engine({
    config,
    store,
    audit,
    aws,
    directory,
    notifier,
    log,
    now,
    replica: { id: replicaId, orphanAfterMs: config.replicas.orphanAfter },
    runbooks,
  });
  const mirror = config.slack.auditChannel
    ? createAuditChannelSink(app.client, config.slack.auditChannel, log)
    : undefined;
  if (mirror) audit.addSink(mirror.sink);
  if (mirror && checkpoints) checkpoints.addListener(mirror.checkpoint);
  const actions = createActionRouter(app);
  registerHandlers(app, actions, { engine, audit, log });
  registerFindingHandlers(app, actions, { engine, store, audit, directory, log, now });
  registerAppHome(app, actions, { engine, store, directory, log });
  registerSecurityFindingHandlers(actions, { engine, store, audit, client: app.client, log });
  const findings = config.findings
    ? new FindingPoller({
        config: config.findings,
        queue: options.findingsQueue ?? createSqsFindingsQueue(config.findings),
        store,
        audit,
        log,
        post: createFindingCardPoster(app.client, { config, runbooks }),
        owner: replicaId,
        now,
      })
    : undefined;
  const reminders = new ReminderScheduler({
    config,
    store,
    log,
    owner: replicaId,
    clock: options.schedulerClock ?? { ...SYSTEM_CLOCK, now },
    run: createReminderRunner({ config, engine, audit, view: keyAgeView, log, now }),
  });
  app.error(async (err) => {
    log.error({ err }, 'unhandled error in a Slack handler');
  });

  const { server, counters } = createHttpServer({
    ...(receiver ? { slackListener: receiver.requestListener } : {}),
    // Bounded, so that a probe sees 503 in time when the database does not answer.
    health: () => withTimeout(store.ping(), 2_000),
    log,
    now,
  });
  let sweeper: NodeJS.Timeout | undefined;
  let keeper: NodeJS.Timeout | undefined;
  // Heartbeat for this replica's runs, then take over those of replicas that died (docs/deployment.md).
  const keepRunsAlive = () =>
    engine
      .heartbeat()
      .then(() => engine.recoverOrphans())
      .catch((err: unknown) => log.warn({ err, replica: replicaId }, 'heartbeat or orphan recovery failed'));

  return {
    app,
    engine,
    store,
    audit,
    sessions,
    counters,
    reminders,
    findings,
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 3000, options.host ?? '0.0.0.0', () => resolve());
      });
      if (config.slack.mode === 'socket') await app.start();
      // A slot missed while quell was down runs once now, in the background (idle() waits for it).
      void reminders.start().catch((err: unknown) => log.error({ err }, 'reminders could not start'));
      sweeper = setInterval(() => {
        engine.expireDue().catch((err: unknown) => log.warn({ err }, 'could not expire overdue requests'));
      }, options.sweepIntervalMs ?? 30_000);
      sweeper.unref();
      void keepRunsAlive();
      keeper = setInterval(keepRunsAlive, config.replicas.heartbeat);
      keeper.unref();
      findings?.start();
      const port = (server.address() as AddressInfo).port;
      log.info(
        {
          mode: config.slack.mode,
          port,
          command: config.slack.command,
          accounts: config.accounts.map((a) => a.alias),
          storage: redactDatabaseUrl(config.storage.url),
          replica: replicaId,
        },
        'quell started',
      );
      return { port };
    },
    async idle() {
      await reminders.idle();
      await engine.idle();
      await mirror?.drain();
    },
    async stop() {
      await findings?.stop();
      await reminders.stop();
      if (sweeper) clearInterval(sweeper);
      if (keeper) clearInterval(keeper);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (config.slack.mode === 'socket') await app.stop().catch(() => undefined);
      await engine.idle();
      await audit.close();
      await mirror?.drain();
      await limiters.stop();
      sessions.destroy();
      await store.close();
    },
  };
}

/** Rejects when `work` has not settled within `ms`. */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
