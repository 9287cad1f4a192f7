/**
 * `npm run proof`: quell's reliability figures against their goals, in one table. Each part runs with a
 * soft deadline (no new trials after it) and a hard one (the runner stops waiting and prints what the part
 * reached). Exit code 1 if any goal is missed. See docs/reliability.md for what each row means.
 *
 *   npm run proof                         every part, counts that meet the goals (about 10 minutes)
 *   npm run proof -- --write-docs         the same, then the table goes into docs/reliability.md
 *   npm run proof -- --only signatures,tampering --scale 0.1
 *   npm run proof -- --budget races=300   seconds for one part
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SIGNING_SECRET } from '../tests/support/slack-requests.ts';
import { BOT_TOKEN } from '../tests/support/test-quell.ts';
import { canaryPart } from './parts/canaries.ts';
import { crashPart } from './parts/crash.ts';
import { faultsPart } from './parts/faults.ts';
import { hostilePart } from './parts/hostile.ts';
import { racesPart } from './parts/races.ts';
import { signaturesPart } from './parts/signatures.ts';
import { tamperingPart } from './parts/tampering.ts';
import { createCanaryScanner } from './support/canaries.ts';
import type { Part, PartContext, Row } from './support/part.ts';
import { startProofServers } from './support/servers.ts';

const GRACE_SECONDS = 45;
const DOCS = new URL('../docs/reliability.md', import.meta.url);
const START = '<!-- reliability-figures:start (written by npm run proof -- --write-docs) -->';
const END = '<!-- reliability-figures:end -->';

const { values } = parseArgs({
  options: {
    'write-docs': { type: 'boolean', default: false },
    only: { type: 'string' },
    scale: { type: 'string', default: '1' },
    budget: { type: 'string', multiple: true, default: [] },
  },
});
const scale = Number(values.scale);
if (!(scale > 0)) throw new Error('--scale must be a positive number');

const canaries = createCanaryScanner();
// Planted before anything reads them: every AWS client here and in the replicas signs with this key.
const AWS_SECRET_CANARY = 'proofCanaryAwsSecretKey7Qz9XrVb2NwLm4Tk8Hs';
process.env.AWS_ACCESS_KEY_ID = 'AKIAPROOFCANARY00001';
process.env.AWS_SECRET_ACCESS_KEY = AWS_SECRET_CANARY;
process.env.AWS_REGION = 'us-east-1';
process.env.QUELL_LOG_LEVEL ??= 'info';
canaries.plant('AWS secret access key', AWS_SECRET_CANARY);
canaries.plant('bot token', BOT_TOKEN);
canaries.plant('signing secret', SIGNING_SECRET);

// The canary scan goes last: it reads what every other part handed it.
const all: Part[] = [
  signaturesPart(),
  tamperingPart(),
  hostilePart(),
  faultsPart(),
  racesPart(),
  crashPart(),
];
all.push(canaryPart(AWS_SECRET_CANARY));
const only = values.only?.split(',').map((s) => s.trim());
const parts = only ? all.filter((p) => only.includes(p.name) || p.name === 'canaries') : all;
for (const b of values.budget ?? []) {
  const [name, secs] = b.split('=');
  const part = all.find((p) => p.name === name);
  if (!part || !(Number(secs) > 0)) throw new Error(`--budget ${b}: expected <part>=<seconds>`);
  part.budgetSeconds = Number(secs);
}

const started = Date.now();
const log = (message: string) =>
  process.stderr.write(`[proof ${((Date.now() - started) / 1000).toFixed(0)}s] ${message}\n`);
log('starting moto_server and PostgreSQL');
const servers = await startProofServers();
canaries.plant('PostgreSQL password', new URL(servers.postgresUrl).password);

const rows: { part: string; row: Row }[] = [];
try {
  for (const part of parts) {
    const cleanups: (() => Promise<void> | void)[] = [];
    const ctx: PartContext = {
      servers,
      canaries,
      softDeadline: Date.now() + part.budgetSeconds * 1000,
      scale,
      onCleanup: (fn) => cleanups.push(fn),
      log: (m) => log(`${part.name}: ${m}`),
    };
    log(`${part.name}: start (budget ${part.budgetSeconds} s)`);
    let cutOff = false;
    let hard: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      part.run(ctx).then(
        () => 'done' as const,
        (error: unknown) => {
          log(
            `${part.name}: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
          );
          return 'error' as const;
        },
      ),
      new Promise<'deadline'>((r) => {
        hard = setTimeout(() => r('deadline'), (part.budgetSeconds + GRACE_SECONDS) * 1000);
      }),
    ]);
    clearTimeout(hard);
    if (outcome === 'deadline') {
      cutOff = true;
      log(`${part.name}: hard deadline reached; reporting what it reached`);
    }
    for (const fn of cleanups.reverse()) {
      await Promise.resolve()
        .then(fn)
        .catch((e: unknown) => log(`${part.name}: cleanup failed: ${String(e)}`));
    }
    for (const row of part.report(cutOff)) {
      // A part that threw has not shown its goal met, whatever its counters say.
      rows.push({
        part: part.name,
        row:
          outcome === 'error'
            ? { ...row, pass: false, result: `${row.result} (part failed: see stderr)` }
            : row,
      });
    }
    log(`${part.name}: done`);
  }
} finally {
  await servers.stop();
}

const seconds = Math.round((Date.now() - started) / 1000);
const table = renderTable(
  rows.map((r) => r.row),
  seconds,
);
process.stdout.write(`${table}\n`);
if (values['write-docs']) {
  const text = readFileSync(DOCS, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`docs/reliability.md has no ${START} … ${END} markers`);
  writeFileSync(DOCS, `${text.slice(0, from + START.length)}\n\n${table}\n\n${text.slice(to)}`);
  log('wrote the table into docs/reliability.md');
}
const missed = rows.filter((r) => !r.row.pass).length;
log(missed === 0 ? 'every goal met' : `${missed} goal(s) missed`);
process.exit(missed === 0 ? 0 : 1);

function renderTable(list: Row[], totalSeconds: number): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const lines = [
    '| goal | tried | result | pass |',
    '|---|---|---|---|',
    ...list.map(
      (r) => `| ${cell(r.goal)} | ${cell(r.tried)} | ${cell(r.result)} | ${r.pass ? 'pass' : 'FAIL'} |`,
    ),
  ];
  const stamp = `${new Date().toISOString().slice(0, 16)}Z, node ${process.versions.node}, ${totalSeconds} s, scale ${scale}`;
  return `${lines.join('\n')}\n\n_Last run: ${stamp}; ${list.filter((r) => r.pass).length} of ${list.length} goals met._`;
}
