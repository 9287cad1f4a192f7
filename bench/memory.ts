/**
 * The memory benchmark (issue 11.4). Run it with `node bench/memory.ts [--n 200] [--idle-ms 10000]`.
 *
 * Starts the bot as a user does (`./run start` runs `node src/main.ts`): a child process in HTTP mode
 * with SQLite in a temporary directory, one moto account reached through assumed roles, a channel that
 * allows disable-key, and a local fake Slack Web API on 127.0.0.1 (SLACK_API_URL). For each variant it
 * prints the resident set (VmRSS) once startup has settled (`--idle-ms` after /healthz first answers),
 * then sends `--n` concurrent signed `/quell disable-key …` commands (one user each, from a worker
 * thread) and waits until every run has left `planning` in the bot's SQLite file and every run awaiting
 * approval has its card (or nothing has changed for 15 s); it prints the peak resident set of the whole
 * life of the process (VmHWM, kept by the kernel) and the RSS once the runs settled, and what became of
 * every command: cards posted (counted from the fake Slack, per run id), plans failed (with their
 * reasons, and whether the requester was told), runs still planning, and commands that left no run.
 * Goals: idle under 150 MB, peak under 250 MB.
 *
 * Variants, in the same run on the same machine:
 *   before  the bot with every AWS SDK client package imported at start (bench/preload-sdk-clients.ts),
 *           as it was while runbooks imported their clients statically;
 *   after   the bot as it is: each SDK client package is loaded by the first run that needs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  randomAccountId,
} from '../tests/support/aws-fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../tests/support/fake-slack.ts';
import { freePort } from '../tests/support/free-port.ts';
import { SIGNING_SECRET, slashCommand } from '../tests/support/slack-requests.ts';
import type { BurstRequest, BurstResult } from './load-client.ts';
import { type Moto, startMoto } from './start-moto.ts';

const USAGE = `usage: node bench/memory.ts [--n 200] [--idle-ms 10000]
  --n        concurrent slash commands in the burst (default 200)
  --idle-ms  how long after /healthz first answers the idle RSS is read (default 10000)`;

const BOT_TOKEN = 'xoxb-000000000000-111111111111-benchbottokenvalue0';
const CHANNEL = 'C0INCIDENT';
const GOAL_IDLE_MB = 150;
const GOAL_PEAK_MB = 250;
const SETTLE_TIMEOUT_MS = 300_000;
const QUIET_MS = 15_000;

interface Variant {
  name: 'before' | 'after';
  what: string;
  nodeArgs: string[];
}

const VARIANTS: Variant[] = [
  {
    name: 'before',
    what: 'every SDK client imported at start',
    nodeArgs: ['--import', './bench/preload-sdk-clients.ts'],
  },
  // As `./run start` and the image start it: V8's young generation kept small (semi-space 1 MB), so a
  // burst of commands does not grow the heap for garbage that a scavenge would have freed.
  {
    name: 'after',
    what: 'SDK clients loaded on first use, --max-semi-space-size=1',
    nodeArgs: ['--max-semi-space-size=1'],
  },
];

interface Figures {
  idleMb: number;
  peakMb: number;
  settledMb: number;
  outcome: BurstOutcome;
  burstMs: number;
  settleMs: number;
}

/** A run of the burst as the bot's store has it. */
interface RunRow {
  id: string;
  state: string;
  requester: string;
  message_ts: string | null;
  error: string | null;
}

/** What became of each command of a burst, from the bot's store and what the fake Slack recorded. */
interface BurstOutcome {
  commands: number;
  /** Runs with an approval card in the channel (a top-level chat.postMessage naming the run). */
  cards: number;
  /** Runs in each state. */
  states: Record<string, number>;
  /** Failed plans by reason (the run's recorded error message). */
  planFailures: Map<string, number>;
  /** Failed plans whose requester got a private message (response_url or chat.postEphemeral). */
  planFailuresTold: number;
  stillPlanning: number;
  /** Commands acknowledged that left no run in the store. */
  noRun: number;
  /** Runs awaiting approval whose card was never posted. */
  awaitingWithoutCard: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS and VmHWM of a process, in MB. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Polls until `check` returns a value, or rejects after `timeoutMs`. */
async function waitUntil<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '200' },
      'idle-ms': { type: 'string', default: '10000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const n = Number(values.n);
  const idleMs = Number(values['idle-ms']);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer\n${USAGE}`);
  if (!Number.isInteger(idleMs) || idleMs < 0) throw new Error(`--idle-ms must be an integer ≥ 0\n${USAGE}`);
  return { n, idleMs };
}

/** Sends one burst of signed commands from a worker thread (bench/load-client.ts). */
async function sendBurst(baseUrl: string, bodies: string[]): Promise<BurstResult> {
  const worker = new Worker(new URL('./load-client.ts', import.meta.url));
  try {
    return await new Promise<BurstResult>((resolve, reject) => {
      worker.once('message', (message: BurstResult | { error: string }) =>
        'error' in message ? reject(new Error(`load client: ${message.error}`)) : resolve(message),
      );
      worker.once('error', reject);
      worker.postMessage({ id: 1, baseUrl, bodies } satisfies BurstRequest);
    });
  } finally {
    await worker.terminate();
  }
}

/** The burst's runs in the bot's SQLite file (read-only; the bot keeps writing it in WAL mode). */
function readRuns(dbPath: string, users: ReadonlySet<string>): RunRow[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const rows = db.prepare('SELECT id, state, requester, message_ts, error FROM runs').all() as unknown;
    return (rows as RunRow[]).filter((r) => users.has(r.requester));
  } finally {
    db.close();
  }
}

/** Tallies the burst's commands from the store's runs and the fake Slack's calls. */
function tallyOutcome(runs: RunRow[], slack: FakeSlack, users: string[]): BurstOutcome {
  const cardRuns = new Set<string>();
  const posted = slack
    .callsOf('chat.postMessage')
    .filter((c) => c.body.thread_ts === undefined)
    .map((c) => JSON.stringify(c.body));
  for (const run of runs) if (posted.some((text) => text.includes(run.id))) cardRuns.add(run.id);
  const told = new Set<string>([
    ...slack.responses.map((r) => r.method.slice('/response/'.length)),
    ...slack.callsOf('chat.postEphemeral').map((c) => String(c.body.user)),
  ]);
  const states: Record<string, number> = {};
  const planFailures = new Map<string, number>();
  let planFailuresTold = 0;
  for (const run of runs) {
    states[run.state] = (states[run.state] ?? 0) + 1;
    if (run.state !== 'plan_failed') continue;
    const reason = (JSON.parse(run.error ?? '{}') as { message?: string }).message ?? 'unknown';
    planFailures.set(reason, (planFailures.get(reason) ?? 0) + 1);
    if (told.has(run.requester)) planFailuresTold++;
  }
  const withRun = new Set(runs.map((r) => r.requester));
  return {
    commands: users.length,
    cards: cardRuns.size,
    states,
    planFailures,
    planFailuresTold,
    stillPlanning: states.planning ?? 0,
    noRun: users.filter((u) => !withRun.has(u)).length,
    awaitingWithoutCard: runs.filter((r) => r.state === 'awaiting_approval' && !cardRuns.has(r.id)).length,
  };
}

/** `cards 200 of 200; plans failed 0; still planning 0`, with the reasons and the rest when there are any. */
function describeOutcome(o: BurstOutcome): string {
  const reasons = [...o.planFailures].map(([reason, count]) => `${count}× ${reason}`).join('; ');
  const planFailed = [...o.planFailures.values()].reduce((a, b) => a + b, 0);
  const parts = [
    `cards ${o.cards} of ${o.commands}`,
    `plans failed ${planFailed}${planFailed > 0 ? ` (${reasons}; requester told privately: ${o.planFailuresTold} of ${planFailed})` : ''}`,
    `still planning ${o.stillPlanning}`,
  ];
  if (o.noRun > 0) parts.push(`commands with no run ${o.noRun}`);
  if (o.awaitingWithoutCard > 0) parts.push(`awaiting approval without a card ${o.awaitingWithoutCard}`);
  const other = Object.entries(o.states).filter(
    ([state]) => !['awaiting_approval', 'plan_failed', 'planning'].includes(state),
  );
  if (other.length > 0) parts.push(`other states ${other.map(([s, n]) => `${s} ${n}`).join(', ')}`);
  return parts.join('; ');
}

async function measureVariant(
  variant: Variant,
  deps: { moto: Moto; slack: FakeSlack; accountId: string; keyId: string; n: number; idleMs: number },
): Promise<Figures> {
  const { slack, n, idleMs } = deps;
  const dir = mkdtempSync(join(tmpdir(), 'quell-bench-memory-'));
  const configPath = join(dir, 'quell.yaml');
  const dbPath = join(dir, 'quell.db');
  const account = accountConfig('prod', deps.accountId);
  writeFileSync(
    configPath,
    JSON.stringify({
      slack: { mode: 'http', command: '/quell' },
      aws: { region: 'us-east-1' },
      accounts: [account],
      approvals: { approvers: ['U0LEAD1', 'U0LEAD2'], runbooks: { 'disable-key': { required: 1 } } },
      channels: { [CHANNEL]: { runbooks: ['disable-key'], accounts: ['prod'] } },
      storage: { url: `sqlite:${dbPath}` },
    }),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...variant.nodeArgs, 'src/main.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      QUELL_CONFIG: configPath,
      QUELL_LOG_LEVEL: 'warn',
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      PORT: String(port),
      AWS_ENDPOINT_URL: deps.moto.url,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${variant.name}: the bot did not start`);
  try {
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`${variant.name}: the bot exited: ${stderr}`);
        try {
          return (await fetch(`${baseUrl}/healthz`)).status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      30_000,
      `${variant.name}: /healthz`,
    );
    await sleep(idleMs);
    const idle = memoryOf(pid);

    const users = Array.from(
      { length: n },
      (_, i) => `UM${variant.name.toUpperCase()}${String(i).padStart(5, '0')}`,
    );
    const bodies = users.map((user) => {
      return slashCommand({
        text: `disable-key ${deps.keyId} reason="memory bench"`,
        user,
        channel: CHANNEL,
        responseUrl: `${slack.url}/response/${user}`,
      });
    });
    const burst = await sendBurst(baseUrl, bodies);
    const bad = burst.statuses.filter((s) => s !== 200).length;
    if (bad > 0) throw new Error(`${variant.name}: ${bad} of ${n} commands were not acked with 200`);
    const settleStarted = performance.now();
    // Settled, by the store: every command has its run, none is still planning, and every run awaiting
    // approval has its card posted. Or nothing changed (in the store or at Slack) for QUIET_MS: what is
    // still open then is reported, not waited for.
    const userSet = new Set(users);
    let lastSeen = '';
    let lastChange = performance.now();
    await waitUntil(
      async () => {
        await sleep(200);
        const runs = readRuns(dbPath, userSet);
        const seen = `${runs.map((r) => `${r.state}:${r.message_ts}`).join()}|${slack.calls.length}|${slack.responses.length}`;
        if (seen !== lastSeen) {
          lastSeen = seen;
          lastChange = performance.now();
        }
        const open = runs.filter(
          (r) => r.state === 'planning' || (r.state === 'awaiting_approval' && r.message_ts === null),
        );
        const done = runs.length === n && open.length === 0;
        return done || performance.now() - lastChange > QUIET_MS ? true : undefined;
      },
      SETTLE_TIMEOUT_MS,
      `${variant.name}: the runs settling`,
    );
    const settleMs = performance.now() - settleStarted;
    await sleep(1_000);
    const settled = memoryOf(pid);
    return {
      idleMb: idle.rssMb,
      peakMb: settled.peakMb,
      settledMb: settled.rssMb,
      outcome: tallyOutcome(readRuns(dbPath, userSet), slack, users),
      burstMs: burst.endedAt - burst.startedAt,
      settleMs,
    };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = readOptions();
  if (!options) {
    console.log(USAGE);
    return;
  }
  const started = performance.now();
  console.log(
    `quell memory benchmark: node src/main.ts (what ./run start runs), HTTP mode, SQLite; idle RSS ${options.idleMs / 1000} s after /healthz, then ${options.n} concurrent commands; node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`,
  );
  const cleanups: (() => unknown)[] = [];
  try {
    const moto = await startMoto();
    cleanups.push(() => moto.stop());
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.url,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const slack = await startFakeSlack();
    cleanups.push(() => slack.close());
    const accountId = randomAccountId();
    const iam = await adminIam(accountId, moto.url);
    cleanups.push(() => iam.destroy());
    const keyId = await createUserWithKey(iam, 'bench-memory-target');

    const results = new Map<string, Figures>();
    for (const variant of VARIANTS) {
      const figures = await measureVariant(variant, { moto, slack, accountId, keyId, ...options });
      results.set(variant.name, figures);
      console.log(
        `  ${variant.name.padEnd(6)} (${variant.what}): idle ${figures.idleMb.toFixed(1)} MB, peak ${figures.peakMb.toFixed(1)} MB, after the runs ${figures.settledMb.toFixed(1)} MB; burst ${figures.burstMs.toFixed(0)} ms, settled in ${(figures.settleMs / 1000).toFixed(1)} s`,
      );
      console.log(`         ${describeOutcome(figures.outcome)}`);
    }
    const before = results.get('before');
    const after = results.get('after');
    if (before && after) {
      console.log('');
      console.log('| | before | after | goal |');
      console.log('|---|---|---|---|');
      console.log(
        `| idle RSS | ${before.idleMb.toFixed(1)} MB | ${after.idleMb.toFixed(1)} MB | < ${GOAL_IDLE_MB} MB: ${after.idleMb < GOAL_IDLE_MB ? 'met' : 'NOT met'} |`,
      );
      console.log(
        `| peak RSS, ${options.n} concurrent commands | ${before.peakMb.toFixed(1)} MB | ${after.peakMb.toFixed(1)} MB | < ${GOAL_PEAK_MB} MB: ${after.peakMb < GOAL_PEAK_MB ? 'met' : 'NOT met'} |`,
      );
    }
    console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    for (const cleanup of cleanups.reverse())
      await Promise.resolve()
        .then(cleanup)
        .catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
