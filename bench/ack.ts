/**
 * The ack benchmark (issue 2, "Performance"). Run it with `node bench/ack.ts [--n 200] [--rounds 3]`.
 *
 * 1. Ack latency: quell, built by createQuell exactly as production builds it (HTTP mode, SQLite in a
 *    temporary directory, one moto account reached through assumed roles, a channel guardrail, an audit
 *    channel, silent logs), and a bare Bolt app (same HTTPReceiver, signing secret and Slack URL) whose
 *    command handler only acks, both in this process. A worker thread sends N concurrent signed
 *    `/quell disable-key …` commands (one user each) to one target and then the other, alternating the
 *    order each round, and times each request until its ack arrives. quell's post-ack work (planning
 *    against moto, posting cards) runs in the background as it would in production; it is allowed to
 *    settle (quell.idle(), and the pre-assumed respond sessions) before the next burst.
 * 2. The approving click: a fresh key, a command, the approval card, the respond session assumed while
 *    the card waits; then an approver clicks and we count, from the audit log and from the HTTP requests
 *    the process makes, which AWS calls and round trips stand between the click and the key being
 *    disabled, next to the latency of one bare IAM call against the same moto.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { type IAMClient, ListAccessKeysCommand } from '@aws-sdk/client-iam';
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import { createQuell, type Quell } from '../src/app.ts';
import { DEFAULT_RATE_LIMITS } from '../src/aws/rate-limits.ts';
import { ConfigSchema } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { ACTION } from '../src/slack/build-run-card.ts';
import type { AuditRecord, RunRecord } from '../src/store/store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  randomAccountId,
} from '../tests/support/aws-fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../tests/support/fake-slack.ts';
import { buttonClick, postSigned, SIGNING_SECRET, slashCommand } from '../tests/support/slack-requests.ts';
import type { BurstRequest, BurstResult } from './load-client.ts';
import { type Moto, startMoto } from './start-moto.ts';
import { roundTrips, watchOutgoingRequests } from './watch-outgoing-requests.ts';

const USAGE = `usage: node bench/ack.ts [--n 200] [--rounds 3] [--warmup N] [--iam-rate 500]
  --n         concurrent slash commands per burst (default 200)
  --rounds    measured rounds; the order of quell and bare Bolt alternates (default 3)
  --warmup    commands per target in the warm-up burst (default: the same as --n)
  --iam-rate  IAM/STS requests per second quell's limiter allows against moto; 0 keeps the production
              default of 10/s, which makes the background work of 200 runs take about a minute a round`;

const BOT_TOKEN = 'xoxb-000000000000-111111111111-benchbottokenvalue0';
const CHANNEL = 'C0INCIDENT';
const AUDIT_CHANNEL = 'C0AUDIT';
const APPROVER = 'U0LEAD1';
const SETTLE_TIMEOUT_MS = 120_000;

interface Options {
  n: number;
  rounds: number;
  warmup: number;
  iamRate: number;
}

function readOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string' },
      'iam-rate': { type: 'string', default: '500' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = (name: string, text: string, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min)
      throw new Error(`--${name} must be an integer ≥ ${min}\n${USAGE}`);
    return value;
  };
  return {
    n: int('n', values.n, 1),
    rounds: int('rounds', values.rounds, 1),
    warmup: values.warmup === undefined ? int('n', values.n, 1) : int('warmup', values.warmup, 0),
    iamRate: int('iam-rate', values['iam-rate'], 0),
  };
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN };
}

const ms = (value: number) => value.toFixed(1).padStart(8);

/** Resolves with `work`, or rejects after `timeoutMs` saying what did not finish. */
async function bounded<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls (bounded) until `check` returns a value. */
async function waitUntil<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Sends bursts through the worker thread. */
function createLoadClient() {
  const worker = new Worker(new URL('./load-client.ts', import.meta.url));
  const pending = new Map<number, (result: BurstResult | { id: number; error: string }) => void>();
  worker.on('message', (message: BurstResult | { id: number; error: string }) => {
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  let nextId = 1;
  return {
    async burst(baseUrl: string, bodies: string[]): Promise<BurstResult> {
      const id = nextId++;
      const answer = new Promise<BurstResult | { id: number; error: string }>((resolve) =>
        pending.set(id, resolve),
      );
      worker.postMessage({ id, baseUrl, bodies } satisfies BurstRequest);
      const result = await bounded(answer, 60_000, `burst ${id} to ${baseUrl}`);
      if ('error' in result) throw new Error(`load client: ${result.error}`);
      return result;
    },
    terminate: () => worker.terminate(),
  };
}

interface Target {
  name: 'quell' | 'bare Bolt';
  baseUrl: string;
  samples: number[];
  rounds: {
    p50: number;
    p99: number;
    max: number;
    burstMs: number;
    settleMs: number;
    newConnections: number;
  }[];
  /** Waits until the target's post-ack work has finished. */
  settle(): Promise<void>;
  /** Whether the ack text is the one this target gives. */
  acceptsAck(text: string): boolean;
}

async function main(): Promise<void> {
  const options = readOptions();
  if (!options) {
    console.log(USAGE);
    return;
  }
  const cleanups: { name: string; run: () => unknown }[] = [];
  const cleanUp = async () => {
    for (const { name, run } of cleanups.reverse()) {
      await bounded(Promise.resolve().then(run), 10_000, `stopping ${name}`).catch((err: unknown) =>
        console.error(String(err)),
      );
    }
  };
  try {
    await measure(options, (name, run) => cleanups.push({ name, run }));
  } finally {
    await cleanUp();
  }
}

async function measure(
  options: Options,
  onCleanup: (name: string, run: () => unknown) => void,
): Promise<void> {
  const started = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  console.log(
    `quell ack benchmark: ${options.n} concurrent commands × ${options.rounds} rounds, warm-up ${options.warmup}, node ${process.version}`,
  );

  // --- moto, its account, the fake Slack -----------------------------------------------------------
  const moto: Moto = await startMoto();
  onCleanup('moto_server', () => moto.stop());
  console.log(`  moto_server pid ${moto.pid} on ${moto.url} (stopped at the end)`);
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: moto.url,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const slack: FakeSlack = await startFakeSlack();
  onCleanup('fake Slack', () => slack.close());
  slack.groups.set('S0SECLEADS', ['U0LEAD3']);

  const accountId = randomAccountId();
  const iam: IAMClient = await adminIam(accountId, moto.url);
  onCleanup('admin IAM client', () => iam.destroy());
  const keyId = await createUserWithKey(iam, 'bench-target');

  // --- quell, as production builds it ------------------------------------------------------------
  const dir = mkdtempSync(join(tmpdir(), 'quell-bench-'));
  onCleanup('temporary directory', () => rmSync(dir, { recursive: true, force: true }));
  const config = ConfigSchema.parse({
    slack: { mode: 'http', command: '/quell', auditChannel: AUDIT_CHANNEL },
    aws: { region: 'us-east-1', sessionSeconds: 900 },
    accounts: [accountConfig('prod', accountId)],
    approvals: {
      approvers: [APPROVER, 'U0LEAD2', 'S0SECLEADS'],
      expiresIn: '15m',
      runbooks: { 'disable-key': { required: 1 } },
    },
    channels: { [CHANNEL]: { runbooks: ['disable-key'], accounts: ['prod'] } },
    storage: { url: `sqlite:${join(dir, 'quell.db')}` },
  });
  // 200 plans are 600 IAM calls: at the production 10/s a round's background work takes a minute.
  const rateLimits =
    options.iamRate === 0
      ? DEFAULT_RATE_LIMITS
      : {
          ...DEFAULT_RATE_LIMITS,
          iam: { perSecond: options.iamRate, maxConcurrent: 16 },
          sts: { perSecond: options.iamRate, maxConcurrent: 16 },
        };
  const quell: Quell = await createQuell({
    config,
    secrets: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET },
    log: createLogger({ level: 'silent' }),
    slackApiUrl: slack.apiUrl,
    port: 0,
    host: '127.0.0.1',
    rateLimits,
  });
  const { port: quellPort } = await quell.start();
  onCleanup('quell', () => quell.stop());

  // An observer of the audit chain: completed AssumeRole calls (to know when the sessions assumed ahead
  // of approval have settled) and the moment the key is disabled.
  const observed = {
    lastSeq: 0,
    assumesDone: 0,
    keyDisabled: undefined as { at: number; record: AuditRecord } | undefined,
    watchRun: '',
    /** Entries of the watched run, with the moment each was committed. */
    events: [] as { at: number; record: AuditRecord }[],
  };
  quell.audit.addSink((record) => {
    observed.lastSeq = Math.max(observed.lastSeq, record.seq);
    if (record.runId !== null && record.runId === observed.watchRun)
      observed.events.push({ at: performance.now(), record });
    const data = record.data as { operation?: string; outcome?: string };
    if (record.type !== 'aws.call') return;
    if (data.operation === 'AssumeRole') observed.assumesDone++;
    if (
      data.operation === 'UpdateAccessKey' &&
      record.runId === observed.watchRun &&
      observed.keyDisabled === undefined
    )
      observed.keyDisabled = observed.events.at(-1);
  });
  const sessionsSettled = () =>
    waitUntil(
      async () => (observed.assumesDone >= quell.sessions.assumeCount ? true : undefined),
      SETTLE_TIMEOUT_MS,
      'the sessions assumed ahead of approval',
    );

  // --- the bare Bolt app: same receiver, secret and Slack URL; the handler only acks ----------------
  const bareReceiver = new HTTPReceiver({
    signingSecret: SIGNING_SECRET,
    endpoints: '/slack/events',
    processBeforeResponse: false,
    logLevel: LogLevel.ERROR,
  });
  const bare = new App({
    token: BOT_TOKEN,
    receiver: bareReceiver,
    logLevel: LogLevel.ERROR,
    clientOptions: { slackApiUrl: slack.apiUrl },
  });
  bare.command('/quell', async ({ ack }) => {
    await ack();
  });
  const bareServer = await bare.start({ port: 0, host: '127.0.0.1' });
  onCleanup('bare Bolt', async () => {
    bareServer.closeAllConnections();
    await bare.stop();
  });

  const client = createLoadClient();
  onCleanup('load client worker', () => client.terminate());

  const targets: Target[] = [
    {
      name: 'quell',
      baseUrl: `http://127.0.0.1:${quellPort}`,
      samples: [],
      rounds: [],
      async settle() {
        await bounded(quell.idle(), SETTLE_TIMEOUT_MS, 'quell.idle()');
        await sessionsSettled();
        await bounded(quell.idle(), SETTLE_TIMEOUT_MS, 'quell.idle()');
      },
      acceptsAck: (text) => text.includes('Planning `disable-key`'),
    },
    {
      name: 'bare Bolt',
      baseUrl: `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}`,
      samples: [],
      rounds: [],
      async settle() {},
      acceptsAck: (text) => text === '',
    },
  ];
  const [quellTarget, bareTarget] = targets as [Target, Target];

  const bodiesFor = (tag: string, count: number) =>
    Array.from({ length: count }, (_, i) => {
      const user = `UB${tag}${String(i).padStart(5, '0')}`;
      return slashCommand({
        text: `disable-key ${keyId} reason="bench"`,
        user,
        channel: CHANNEL,
        responseUrl: `${slack.url}/response/${user}`,
      });
    });

  const runBurst = async (target: Target, bodies: string[]) => {
    // Both targets start from a collected heap; quell's own garbage still counts against it.
    gc();
    await sleep(50);
    const result = await client.burst(target.baseUrl, bodies);
    const bad = result.statuses.filter((s) => s !== 200).length;
    if (bad > 0)
      throw new Error(`${target.name}: ${bad} of ${bodies.length} commands were not acked with 200`);
    if (!target.acceptsAck(result.sample))
      throw new Error(`${target.name}: unexpected ack ${JSON.stringify(result.sample.slice(0, 200))}`);
    const settleStarted = performance.now();
    await target.settle();
    return { result, settleMs: performance.now() - settleStarted };
  };

  // --- warm-up --------------------------------------------------------------------------------------
  if (options.warmup > 0) {
    for (const target of targets) await runBurst(target, bodiesFor('W', options.warmup));
  }

  // --- measured rounds, alternating the order -------------------------------------------------------
  for (let round = 0; round < options.rounds; round++) {
    const bodies = bodiesFor(`R${round}`, options.n);
    const order = round % 2 === 0 ? [quellTarget, bareTarget] : [bareTarget, quellTarget];
    for (const target of order) {
      const { result, settleMs } = await runBurst(target, bodies);
      target.samples.push(...result.latencies);
      target.rounds.push({
        ...summarize(result.latencies),
        burstMs: result.endedAt - result.startedAt,
        settleMs,
        newConnections: result.newConnections,
      });
      // Let sockets, timers and the garbage collector calm down before the other target goes.
      await sleep(200);
    }
  }

  const loadAfterRounds = loadavg()[0] ?? 0;

  // --- the approving click ----------------------------------------------------------------------------
  const click = await measureClick({ quell, slack, iam, moto, baseUrl: quellTarget.baseUrl, observed });

  // --- report ---------------------------------------------------------------------------------------
  const q = summarize(quellTarget.samples);
  const b = summarize(bareTarget.samples);
  console.log('');
  console.log(
    `ACK LATENCY — ${options.n} concurrent signed slash commands per burst, ${options.rounds} rounds (${quellTarget.samples.length} samples per target)`,
  );
  console.log(
    `  quell's IAM/STS limiter: ${options.iamRate === 0 ? 'production default (10/s)' : `${options.iamRate}/s (raised so that a round's background work settles in seconds)`}`,
  );
  console.log(
    `  ${'target'.padEnd(12)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}${'max ms'.padStart(8)}`,
  );
  for (const [name, s] of [
    ['quell', q],
    ['bare Bolt', b],
  ] as const)
    console.log(`  ${name.padEnd(12)}${ms(s.p50)}${ms(s.p99)}${ms(s.max)}`);
  const ratio50 = q.p50 / b.p50;
  const ratio99 = q.p99 / b.p99;
  console.log(
    `  ratio quell/bare: p50 ${ratio50.toFixed(2)}, p99 ${ratio99.toFixed(2)} (goal ≤ 1.20: ${ratio50 <= 1.2 && ratio99 <= 1.2 ? 'met' : 'NOT met'})`,
  );
  console.log(`  quell p99 < 3000 ms (Slack's limit): ${q.p99 < 3000 ? 'yes' : 'NO'}`);
  console.log(
    '  per round (p50 / p99 / max ms; whole burst ms; post-ack work settled ms; new connections in the burst):',
  );
  const roundRatios: { p50: number; p99: number }[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const first = round % 2 === 0 ? 'quell first' : 'bare first';
    for (const target of targets) {
      const r = target.rounds[round];
      if (!r) continue;
      console.log(
        `    round ${round + 1} (${first}) ${target.name.padEnd(10)} ${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} / ${r.max.toFixed(1)}; burst ${r.burstMs.toFixed(0)}; settle ${r.settleMs.toFixed(0)}; connects ${r.newConnections}`,
      );
    }
    const [qr, br] = [quellTarget.rounds[round], bareTarget.rounds[round]];
    if (qr && br) roundRatios.push({ p50: qr.p50 / br.p50, p99: qr.p99 / br.p99 });
  }
  // Each round pairs two bursts a few seconds apart, so its ratio is less exposed to other load on the
  // machine than the pooled figures above.
  const median = (values: number[]) => summarize(values).p50;
  console.log(
    `  median of the per-round ratios: p50 ${median(roundRatios.map((r) => r.p50)).toFixed(2)}, p99 ${median(roundRatios.map((r) => r.p99)).toFixed(2)}`,
  );
  console.log(
    `  machine load average (1 min) at start ${loadAtStart.toFixed(2)}, after the rounds ${loadAfterRounds.toFixed(2)} on ${availableParallelism()} cores`,
  );

  console.log('');
  console.log(
    'AFTER THE APPROVING CLICK — disable-key on a fresh key, respond session assumed while the card waited',
  );
  console.log(
    `  AWS calls completed before UpdateAccessKey completed: ${click.callsBefore.length} (${click.callsBefore.join(', ') || 'none'})`,
  );
  console.log(`  of which STS AssumeRole: ${click.assumesBefore} (goal 0)`);
  console.log(
    `  sequential AWS round trips up to the key being disabled: ${click.trips.length} (${click.trips.map((t) => `[${t.join(' ‖ ')}]`).join(' → ')}) (goal: recheck reads ‖, then UpdateAccessKey ‖ PutUserPolicy = 2)`,
  );
  console.log(
    `  AWS requests on the critical path that opened a new connection: ${click.newConnections} of ${click.motoRequests} (moto answers every request with Connection: close, so here every request does)`,
  );
  console.log(
    `  Slack Web API calls between the click and the first AWS request: ${click.slackBeforeAws.length} (${click.slackBeforeAws.join(', ') || 'none'})`,
  );
  console.log(`  click → ack: ${click.ackMs.toFixed(1)} ms`);
  console.log(`  click → first AWS request sent: ${click.firstAwsMs.toFixed(1)} ms`);
  console.log(
    `  click → key disabled (UpdateAccessKey answered and audited): ${click.disabledMs.toFixed(1)} ms`,
  );
  console.log(
    `  baseline: one bare IAM ListAccessKeys against the same moto (same SDK, a long-lived client, median of 7): ${click.bareIamMs.toFixed(1)} ms; 2 round trips ≈ ${(2 * click.bareIamMs).toFixed(1)} ms`,
  );
  console.log('  timeline after the click (ms from the click; moto = AWS, slack = Web API):');
  for (const line of click.timeline) console.log(`    ${line}`);
  console.log('');
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function measureClick(deps: {
  quell: Quell;
  slack: FakeSlack;
  iam: IAMClient;
  moto: Moto;
  baseUrl: string;
  observed: {
    lastSeq: number;
    watchRun: string;
    keyDisabled: { at: number; record: AuditRecord } | undefined;
    events: { at: number; record: AuditRecord }[];
  };
}) {
  const { quell, slack, iam, moto, baseUrl, observed } = deps;
  const requester = 'U0BENCHREQ';
  const userName = `bench-click-${Date.now()}`;
  const freshKey = await createUserWithKey(iam, userName);
  const watcher = watchOutgoingRequests({ moto: moto.port, slack: Number(new URL(slack.url).port) });

  const ack = await postSigned(
    baseUrl,
    slashCommand({
      text: `disable-key ${freshKey} reason="bench click"`,
      user: requester,
      channel: CHANNEL,
      responseUrl: `${slack.url}/response/${requester}`,
    }),
  );
  if (ack.status !== 200) throw new Error(`the click command was not acked: ${ack.status} ${ack.text}`);
  const run = await waitUntil(
    async () => {
      const [latest] = await quell.store.listRuns({ requester, limit: 1 });
      if (latest && ['plan_failed', 'failed'].includes(latest.state))
        throw new Error(`the click run ended ${latest.state}: ${JSON.stringify(latest.error)}`);
      return latest?.state === 'awaiting_approval' && latest.messageTs ? latest : undefined;
    },
    20_000,
    'the approval card',
  );
  const respondRole = `arn:aws:iam::${run.accountId}:role/quell-respond`;
  await waitUntil(
    async () => {
      const entries = await quell.store.listAudit({ runId: run.id });
      return entries.some((e) => {
        const d = e.data as { operation?: string; role?: string; outcome?: string };
        return (
          e.type === 'aws.call' &&
          d.operation === 'AssumeRole' &&
          d.role === respondRole &&
          d.outcome === 'ok'
        );
      })
        ? true
        : undefined;
    },
    20_000,
    'the respond session assumed ahead of approval',
  );
  await quell.idle();
  await sleep(100);

  // The baseline: one bare IAM call against the same moto, on a warm keep-alive connection.
  const bareTimes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    await iam.send(new ListAccessKeysCommand({ UserName: userName }));
    if (i > 0) bareTimes.push(performance.now() - t0);
  }
  const bareIamMs = summarize(bareTimes).p50;

  const markSeq = observed.lastSeq;
  observed.watchRun = run.id;
  watcher.start();
  const t0 = performance.now();
  const clicked = await postSigned(
    baseUrl,
    buttonClick({
      actionId: ACTION.approve,
      value: run.id,
      user: APPROVER,
      channel: CHANNEL,
      messageTs: run.messageTs ?? '1.0',
      responseUrl: `${slack.url}/response/${APPROVER}`,
    }),
  );
  const ackMs = performance.now() - t0;
  if (clicked.status !== 200) throw new Error(`the click was not acked: ${clicked.status}`);
  const done: RunRecord = await waitUntil(
    async () => {
      const r = await quell.store.getRun(run.id);
      return r && ['succeeded', 'failed', 'superseded'].includes(r.state) ? r : undefined;
    },
    20_000,
    'the approved run to finish',
  );
  await quell.idle();
  const requests = watcher.stop();
  if (done.state !== 'succeeded')
    throw new Error(`the approved run ended ${done.state}: ${JSON.stringify(done.error)}`);
  const disabled = observed.keyDisabled;
  if (!disabled) throw new Error('no UpdateAccessKey call was audited');

  const entries = await quell.store.listAudit({ runId: run.id, afterSeq: markSeq });
  const before = entries.filter((e) => e.type === 'aws.call' && e.seq < disabled.record.seq);
  const operationOf = (e: AuditRecord) => String((e.data as { operation?: string }).operation);
  const critical = requests.filter((r) => r.target === 'moto' && r.start < disabled.at);
  const trips = roundTrips(critical).map((trip) => trip.map((r) => r.label));
  const firstAws = critical[0]?.start ?? Number.NaN;
  const finished =
    observed.events.find((e) => e.record.type === 'run.finished')?.at ?? Number.POSITIVE_INFINITY;
  const at = (t: number) => (t - t0).toFixed(1).padStart(7);
  const timeline = [
    ...requests
      .filter((r) => r.target !== 'other' && r.start <= finished)
      .map((r) => ({
        t: r.start,
        line: `${at(r.start)} → ${r.end === undefined ? '      …' : at(r.end)}  ${r.target.padEnd(5)} ${r.label}${r.target === 'moto' && !r.reusedSocket ? ' (new connection)' : ''}`,
      })),
    ...observed.events
      .filter((e) => e.at <= finished)
      .map((e) => {
        const operation = (e.record.data as { operation?: string }).operation;
        return {
          t: e.at,
          line: `${at(e.at)}            audit ${e.record.type}${operation ? ` ${operation}` : ''}${e === disabled ? '  ← key disabled' : ''}`,
        };
      }),
  ]
    .sort((a, b) => a.t - b.t)
    .map((e) => e.line);
  return {
    callsBefore: before.map(operationOf),
    assumesBefore: before.filter((e) => operationOf(e) === 'AssumeRole').length,
    trips,
    motoRequests: critical.length,
    newConnections: critical.filter((r) => !r.reusedSocket).length,
    slackBeforeAws: requests
      .filter((r) => r.target === 'slack' && r.end !== undefined && r.end <= firstAws)
      .map((r) => r.label),
    ackMs,
    firstAwsMs: firstAws - t0,
    disabledMs: disabled.at - t0,
    bareIamMs,
    timeline,
  };
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
