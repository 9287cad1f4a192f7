/**
 * quell as production builds it (createQuell, HTTP mode, SQLite in a temp directory), wired to moto and
 * to the fake Slack Web API, with helpers that send signed commands and clicks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createQuell, type Quell } from '../../src/app.ts';
import { buildConfigSchema, type Config, ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import type { SchedulerClock } from '../../src/schedule/reminder-scheduler.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { type FakeSlack, startFakeSlack } from './fake-slack.ts';
import { buttonClick, postSigned, SIGNING_SECRET, slashCommand } from './slack-requests.ts';

export const BOT_TOKEN = 'xoxb-000000000000-111111111111-testbottokenvalue00';

export interface TestQuell {
  quell: Quell;
  slack: FakeSlack;
  baseUrl: string;
  dbUrl: string;
  config: Config;
  /** Every log line written (for leak checks). */
  logLines: string[];
  command(text: string, user: string, channel?: string): ReturnType<typeof postSigned>;
  click(actionId: string, runId: string, user: string, channel?: string): ReturnType<typeof postSigned>;
  /**
   * Waits (bounded) until quell has finished reacting to everything sent so far: Bolt acks before the
   * handler's work starts, so "idle" alone can be observed too early; the audit log must also stop growing.
   */
  settle(): Promise<void>;
  /** The most recent run in the store. */
  latestRun(): Promise<RunRecord | undefined>;
  close(): Promise<void>;
}

export const INCIDENT = 'C0INCIDENT';

/** When each user last sent a command through a TestQuell (see waitForRunOf). */
const lastCommandAt = new Map<string, number>();

export async function startTestQuell(
  overrides: Record<string, unknown> & { accounts: unknown[] },
  options: {
    now?: () => number;
    logLevel?: string;
    schedulerClock?: SchedulerClock;
    /** The runbooks offered instead of the registered ones (their config fragments join the schema). */
    runbooks?: readonly AnyRunbook[];
  } = {},
): Promise<TestQuell> {
  const dir = mkdtempSync(join(tmpdir(), 'quell-test-'));
  const dbUrl = `sqlite:${join(dir, 'quell.db')}`;
  const slack = await startFakeSlack();
  const config = (options.runbooks ? buildConfigSchema(options.runbooks) : ConfigSchema).parse({
    slack: { mode: 'http', auditChannel: 'C0AUDIT' },
    approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3', 'S0SECLEADS'], expiresIn: '15m' },
    channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
    storage: { url: dbUrl },
    ...overrides,
  });
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ level: options.logLevel ?? 'debug', destination });
  const quell = await createQuell({
    config,
    secrets: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET },
    log,
    slackApiUrl: slack.apiUrl,
    port: 0,
    host: '127.0.0.1',
    ...(options.now ? { now: options.now } : {}),
    ...(options.schedulerClock ? { schedulerClock: options.schedulerClock } : {}),
    ...(options.runbooks ? { runbooks: options.runbooks } : {}),
  });
  const { port } = await quell.start();
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    quell,
    slack,
    baseUrl,
    dbUrl,
    config,
    logLines,
    // Signed at the app's clock, as Slack signs at the real time the app sees.
    command: (text, user, channel = INCIDENT) => {
      lastCommandAt.set(user, options.now?.() ?? Date.now()); // in quell's clock, like createdAt
      return postSigned(
        baseUrl,
        slashCommand({ text, user, channel, responseUrl: `${slack.url}/response/${user}` }),
        {
          timestamp: Math.floor((options.now?.() ?? Date.now()) / 1000),
        },
      );
    },
    click: (actionId, runId, user, channel = INCIDENT) =>
      postSigned(
        baseUrl,
        buttonClick({ actionId, value: runId, user, channel, responseUrl: `${slack.url}/response/${user}` }),
        { timestamp: Math.floor((options.now?.() ?? Date.now()) / 1000) },
      ),
    async settle() {
      let last = -1;
      for (let i = 0; i < 200; i++) {
        await quell.idle();
        await new Promise((r) => setTimeout(r, 60));
        const count = (await quell.store.listAudit()).length;
        if (count === last) return;
        last = count;
      }
      throw new Error('quell did not settle within the bound');
    },
    async latestRun() {
      return (await quell.store.listRuns({ limit: 1 }))[0];
    },
    async close() {
      await quell.stop();
      await slack.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits (bounded) until the newest run requested by `user` reaches one of `states`. */
export async function waitForRunOf(
  quell: Quell,
  user: string,
  states: string[],
  timeoutMs = 20_000,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  // Runs are planned a few milliseconds after the ack (the engine's start queue): an older run of the
  // same user must not be mistaken for the one the last command asked for.
  const since = lastCommandAt.get(user) ?? 0;
  for (;;) {
    const [run] = await quell.store.listRuns({ requester: user, limit: 1 });
    if (run && run.createdAt >= since && states.includes(run.state)) return run;
    if (Date.now() > deadline)
      throw new Error(`newest run of ${user} is ${run?.state ?? 'missing'}, expected ${states.join('|')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits (bounded) for a run to reach one of `states`. */
export async function waitForRunState(
  quell: Quell,
  runId: string,
  states: string[],
  timeoutMs = 20_000,
): Promise<RunRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await quell.store.getRun(runId);
    if (run && states.includes(run.state)) return run;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} is ${run?.state ?? 'missing'}, expected ${states.join('|')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
