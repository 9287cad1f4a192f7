/**
 * The containment-lane benchmark (issue 9.7). Run it with `node bench/containment-lane.ts [--reps 20]`.
 *
 * A disable-key's time to card (the signed slash command sent → the approval card's chat.postMessage
 * received by the fake Slack) with no other work in flight, against the same with 20 heavy read-only runs
 * in flight: 6 `key-age` runs whose credential-report request never comes back until the end (held by a
 * proxy in front of moto: they hold every IAM request slot read-only work may take) and 14
 * `trail limit=10000` runs against a fake CloudTrail holding 10,000 matching events per region, paced at
 * CloudTrail's 2 requests per second (200 pages each: they run for the whole benchmark). quell is built
 * by createQuell exactly as production builds it (HTTP mode, SQLite, the default AWS limits, one moto
 * account through assumed roles). Each repetition uses a new access key. Prints median and p95 of both
 * and their ratio. Before the lanes, the eight start slots were all taken by read-only runs and the
 * disable-key waited for one of them to finish (minutes here; `tests/security/containment-lanes.test.ts`
 * shows it never starts while they are held).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createQuell } from '../src/app.ts';
import { ConfigSchema } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  randomAccountId,
} from '../tests/support/aws-fixtures.ts';
import { generateEvents, startFakeCloudTrail } from '../tests/support/fake-cloudtrail.ts';
import { startFakeSlack } from '../tests/support/fake-slack.ts';
import { type HeldRequest, startHoldProxy } from '../tests/support/hold-proxy.ts';
import { postSigned, SIGNING_SECRET, slashCommand } from '../tests/support/slack-requests.ts';
import { startMoto } from './start-moto.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '20' } } });
const REPS = Number(values.reps);
if (!Number.isInteger(REPS) || REPS < 1) throw new Error('--reps must be a positive integer');

const BOT_TOKEN = 'xoxb-000000000000-111111111111-benchbottokenvalue0';
const CHANNEL = 'C0INCIDENT';
const RESPONDER = 'U0RESP';
const ANALYST = 'U0ANALYST';
const KEY_AGE_RUNS = 6;
const TRAIL_RUNS = 14;
const TRAIL_KEY = 'AKIAIOSFODNN7EXAMPLE';
const TRAIL_EVENTS = 10_000;

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** Resolves once `check` returns a value (checked every 10 ms), or rejects after `timeoutMs`. */
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
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => unknown)[] = [];
try {
  const moto = await startMoto();
  cleanups.push(() => moto.stop());
  const cloudTrail = await startFakeCloudTrail();
  cleanups.push(() => cloudTrail.close());
  const iamProxy = await startHoldProxy(moto.url);
  cleanups.push(() => iamProxy.close());
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: moto.url,
    AWS_ENDPOINT_URL_IAM: iamProxy.url,
    AWS_ENDPOINT_URL_CLOUDTRAIL: cloudTrail.url,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  for (const region of ['us-east-1', 'eu-west-1'])
    cloudTrail.events.set(
      region,
      generateEvents(region, TRAIL_EVENTS, { spacingMs: 2_000, accessKeyId: TRAIL_KEY }),
    );
  const slack = await startFakeSlack();
  cleanups.push(() => slack.close());
  const accountId = randomAccountId();
  const iam = await adminIam(accountId, moto.url);
  cleanups.push(() => iam.destroy());

  const dir = mkdtempSync(join(tmpdir(), 'quell-bench-lanes-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const quell = await createQuell({
    config: ConfigSchema.parse({
      slack: { mode: 'http', command: '/quell' },
      aws: { region: 'us-east-1', sessionSeconds: 900 },
      accounts: [accountConfig('prod', accountId)],
      approvals: { approvers: ['U0LEAD1', 'U0LEAD2'], expiresIn: '15m' },
      channels: { [CHANNEL]: { runbooks: ['*'], accounts: ['*'] } },
      storage: { url: `sqlite:${join(dir, 'quell.db')}` },
    }),
    secrets: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET },
    log: createLogger({ level: 'silent' }),
    slackApiUrl: slack.apiUrl,
    port: 0,
    host: '127.0.0.1',
  });
  const { port } = await quell.start();
  cleanups.push(() => quell.stop());
  const baseUrl = `http://127.0.0.1:${port}`;
  const command = async (text: string, user: string) => {
    const res = await postSigned(baseUrl, slashCommand({ text, user, channel: CHANNEL }));
    if (res.status !== 200) throw new Error(`"${text}" was not acknowledged: ${res.status}`);
  };

  let serial = 0;
  /** One disable-key of a new key: milliseconds from the command to its approval card. */
  const timeToCard = async (): Promise<number> => {
    const keyId = await createUserWithKey(iam, `bench-lanes-${++serial}`);
    const sent = Date.now();
    await command(`disable-key ${keyId}`, RESPONDER);
    const card = await waitUntil(
      () =>
        slack
          .callsOf('chat.postMessage')
          .find((c) => c.at >= sent && JSON.stringify(c.body).includes(keyId) && c.body.channel === CHANNEL),
      60_000,
      `the card of disable-key ${keyId}`,
    );
    const run = await waitUntil(
      async () =>
        (await quell.store.listRuns({ requester: RESPONDER, limit: 200 })).find((r) =>
          JSON.stringify(r.input).includes(keyId),
        ),
      10_000,
      'the run record',
    );
    if (run.state !== 'awaiting_approval')
      throw new Error(`disable-key ended ${run.state}, not awaiting approval`);
    return card.at - sent;
  };
  const series = async (label: string): Promise<number[]> => {
    await timeToCard(); // warm-up, not counted
    const samples: number[] = [];
    for (let i = 0; i < REPS; i++) samples.push(await timeToCard());
    const sorted = [...samples].sort((a, b) => a - b);
    console.log(
      `  ${label.padEnd(34)} median ${percentile(sorted, 0.5).toFixed(0).padStart(5)} ms   p95 ${percentile(sorted, 0.95).toFixed(0).padStart(5)} ms   (${samples.map((s) => s.toFixed(0)).join(' ')})`,
    );
    return sorted;
  };

  console.log(
    `containment-lane benchmark: disable-key time to card, ${REPS} repetitions each, node ${process.version}`,
  );
  const idle = await series('no read-only work in flight');

  // 20 heavy read-only runs: the key-age runs first (each holds an IAM request slot), then the trails.
  const held: Promise<HeldRequest>[] = Array.from({ length: KEY_AGE_RUNS }, () =>
    iamProxy.hold('GetCredentialReport', 'request', { timeoutMs: 600_000 }),
  );
  for (let i = 0; i < KEY_AGE_RUNS; i++) await command('key-age', ANALYST);
  for (let i = 0; i < TRAIL_RUNS; i++) await command(`trail key=${TRAIL_KEY} limit=${TRAIL_EVENTS}`, ANALYST);
  await Promise.all(held);
  await waitUntil(
    () =>
      cloudTrail.counters('us-east-1').served + cloudTrail.counters('eu-west-1').served > 0
        ? true
        : undefined,
    60_000,
    'the first trail page',
  );
  const inFlight = (await quell.store.listRuns({ requester: ANALYST, limit: 100 })).filter(
    (r) => !['succeeded', 'failed', 'partial'].includes(r.state),
  );
  const loaded = await series(`${KEY_AGE_RUNS + TRAIL_RUNS} heavy read-only runs in flight`);
  const stillInFlight = (await quell.store.listRuns({ requester: ANALYST, limit: 100 })).filter(
    (r) => !['succeeded', 'failed', 'partial'].includes(r.state),
  ).length;
  const ratio = (q: number) => (percentile(loaded, q) / percentile(idle, q)).toFixed(2);
  console.log(
    `  ratio loaded / idle                median ${ratio(0.5)}x   p95 ${ratio(0.95)}x\n` +
      `  read-only runs while measuring: ${inFlight.length} executing (every read-only start slot), ${KEY_AGE_RUNS + TRAIL_RUNS - inFlight.length} queued behind them; ${stillInFlight} still executing at the end`,
  );

  // Let the read-only runs end: the held reports answer, CloudTrail refuses the remaining pages.
  cloudTrail.failWith({ status: 400, type: 'AccessDeniedException', message: 'benchmark over' });
  for (const request of held) (await request).release();
  await quell.idle();
} finally {
  for (const cleanup of cleanups.reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch((err: unknown) => console.error(err));
}
process.exit(0);
