/**
 * kill -9 at every write point of a run, on SQLite and on PostgreSQL. A replica process (`node
 * src/main.ts` with crash-hooks.ts loaded) numbers its store writes; a first run without a kill enumerates
 * the write points of a whole disable-key run (command, plan, card, approval, execution, result). Each
 * trial starts a fresh replica, kills it with SIGKILL just before or just after one write point (cycling
 * through all of them), and another quell takes over:
 *   - PostgreSQL: one database for every lane, and a survivor replica in this process (heartbeat 1 s,
 *     orphans after 2 s) that takes over whatever a killed replica left;
 *   - SQLite: one process per database file, so each lane has its own file, and the killed replica is
 *     restarted on it as its supervisor would (the restart takes over).
 * Trials run in LANES lanes per store at once (a lane is sequential: a trial ends before its next begins).
 * An approver whose click died with the replica before their approval was committed clicks again, on the
 * survivor; an approval that was committed is never clicked again, so a lost one shows as a run that never
 * executes. Checked per trial: an approval committed before the kill is never lost (the run goes on to
 * execute, or to an operator if execution had begun); at most one execution (one execute.started, one
 * UpdateAccessKey intent); the audit chain verifies (each lane's new entries against the head verified
 * before). At the end of each store, `quell audit verify` runs as a process over every database.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IAMClient } from '@aws-sdk/client-iam';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import { openStore } from '../../src/open-store.ts';
import { GENESIS_HASH } from '../../src/store/run-rows.ts';
import type { RunRecord, Store } from '../../src/store/store.ts';
import {
  accountConfig,
  adminCredentials,
  createUserWithKey,
  randomAccountId,
} from '../../tests/support/aws-fixtures.ts';
import { startFakeSlack } from '../../tests/support/fake-slack.ts';
import { startFaultProxy } from '../../tests/support/fault-proxy.ts';
import { createTestDatabase } from '../../tests/support/postgres.ts';
import { type ReplicaProcess, startReplicaProcess } from '../../tests/support/replica-process.ts';
import { buttonClick, postSigned, slashCommand } from '../../tests/support/slack-requests.ts';
import { n, type Part, sleep, waitUntil } from '../support/part.ts';
import { type ProofQuell, startProofQuell } from '../support/proof-quell.ts';

const GOAL = 500;
const LANES = 4;
const RUN_TIMEOUT_MS = 40_000;
const INCIDENT = 'C0INCIDENT';
const HOOKS = new URL('../support/crash-hooks.ts', import.meta.url).pathname;
const REPO = new URL('../..', import.meta.url).pathname;
const execFileAsync = promisify(execFile);
const AFTER_EXECUTION = ['succeeded', 'failed', 'partial', 'needs_operator'];
const ENDED = [...AFTER_EXECUTION, 'denied', 'expired', 'plan_failed', 'superseded'];

/** One database the trials of a lane (SQLite) or of every lane (PostgreSQL) run on. */
interface World {
  configUrl: string;
  fullUrl: string;
  env: Record<string, string>;
  store: Store;
  survivor?: ProofQuell;
  /** SQLite: the file that arms an idle replica again (crash-hooks.ts), and that idle replica. */
  control?: string;
  warm?: ReplicaProcess;
  /** Verifies the chain entries appended since the last call (serialised per world). */
  verifyNew(): Promise<boolean>;
  drop(): Promise<void>;
}

export function crashPart(): Part {
  const t = {
    points: {} as Record<string, number>,
    trials: { sqlite: 0, postgres: 0 } as Record<string, number>,
    notReached: 0,
    stuck: 0,
    pointsHit: { sqlite: 0, postgres: 0 } as Record<string, number>,
    lostApprovals: 0,
    doubleExecutions: 0,
    brokenChains: 0,
    chainChecks: 0,
    reclicks: 0,
    rearmed: 0,
    cli: [] as string[],
    outcomes: {} as Record<string, number>,
    trialSeconds: [] as number[],
    samples: [] as string[],
  };
  const note = (what: string) => {
    if (t.samples.length < 4) t.samples.push(what);
  };
  return {
    name: 'crash',
    budgetSeconds: 660,
    async run(ctx) {
      const goal = Math.ceil(GOAL * ctx.scale);
      const slack = await startFakeSlack();
      const proxy = await startFaultProxy(ctx.servers.motoUrl);
      const account = { alias: 'prod', id: randomAccountId() };
      const iam = new IAMClient({
        region: 'us-east-1',
        endpoint: ctx.servers.motoUrl,
        credentials: await adminCredentials(account.id),
      });
      // Every replica compiles the same sources: V8's code cache makes each start cheaper.
      const compileCache = mkdtempSync(join(tmpdir(), 'quell-proof-compile-cache-'));
      const endpointBefore = process.env.AWS_ENDPOINT_URL;
      const passwordBefore = process.env.PGPASSWORD;
      process.env.AWS_ENDPOINT_URL = proxy.url;
      ctx.onCleanup(async () => {
        process.env.AWS_ENDPOINT_URL = endpointBefore;
        if (passwordBefore === undefined) delete process.env.PGPASSWORD;
        else process.env.PGPASSWORD = passwordBefore;
        ctx.canaries.scan('slack', JSON.stringify(slack.calls));
        iam.destroy();
        rmSync(compileCache, { recursive: true, force: true });
        await proxy.close();
        await slack.close();
      });

      const stores = ['sqlite', 'postgres'] as const;
      for (const [si, kind] of stores.entries()) {
        // SQLite gets at most 45% of the budget (its trials are the cheaper ones); PostgreSQL the rest.
        const storeDeadline =
          si === 0 ? Date.now() + (ctx.softDeadline - Date.now()) * 0.45 : ctx.softDeadline;
        const replicaSettings = { count: kind === 'postgres' ? 2 : 1, heartbeat: '1s', orphanAfter: '2s' };
        const common = (configUrl: string) => ({
          accounts: [accountConfig(account.alias, account.id)],
          storage: { url: configUrl },
          replicas: replicaSettings,
        });
        const openWorld = async (survivor: boolean): Promise<World> => {
          let configUrl: string;
          let fullUrl: string;
          let env: Record<string, string> = {};
          let drop: () => Promise<void>;
          let control: string | undefined;
          if (kind === 'sqlite') {
            const dir = mkdtempSync(join(tmpdir(), 'quell-proof-crash-'));
            configUrl = `sqlite:${join(dir, 'quell.db')}`;
            fullUrl = configUrl;
            control = join(dir, 'arm.json');
            env = { QUELL_PROOF_CONTROL: control };
            drop = async () => rmSync(dir, { recursive: true, force: true });
          } else {
            const db = await createTestDatabase('crash');
            configUrl = db.urlWithoutPassword;
            fullUrl = db.url;
            env = { PGPASSWORD: db.password };
            process.env.PGPASSWORD = db.password;
            drop = () => db.drop();
          }
          const store = await openStore(fullUrl);
          let head = { prevHash: GENESIS_HASH, seq: 1 };
          let verifying = Promise.resolve(true);
          const verifyNew = () => {
            verifying = verifying.then(async () => {
              const entries = await store.listAudit({ afterSeq: head.seq - 1 });
              const verdict = verifyAuditChain(entries, head);
              if (!verdict.ok) {
                note(`${kind}: chain broken at entry ${verdict.badSeq}: ${verdict.reason}`);
                return false;
              }
              head = { prevHash: verdict.head, seq: head.seq + verdict.entries };
              return true;
            });
            return verifying;
          };
          return {
            configUrl,
            fullUrl,
            env,
            store,
            verifyNew,
            drop,
            control,
            survivor: survivor ? await startProofQuell(common(configUrl), slack.apiUrl) : undefined,
          };
        };
        // PostgreSQL: one database and one survivor for every lane. SQLite: a database file per lane.
        const shared = kind === 'postgres' ? await openWorld(true) : undefined;
        const worlds: World[] = [];
        for (let lane = 0; lane < LANES; lane++) worlds.push(shared ?? (await openWorld(false)));

        const setup = (world: World, killAt: number, phase: string) => ({
          config: {
            slack: { mode: 'http', auditChannel: 'C0AUDIT' },
            approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3'], expiresIn: '15m' },
            channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
            ...common(world.configUrl),
          },
          env: {
            ...world.env,
            SLACK_API_URL: slack.apiUrl,
            AWS_ENDPOINT_URL: proxy.url,
            AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
            AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
            NODE_OPTIONS: `--import ${HOOKS}`,
            NODE_COMPILE_CACHE: compileCache,
            QUELL_PROOF_KILL_AT: String(killAt),
            QUELL_PROOF_KILL_PHASE: phase,
          },
        });
        const writesOf = (replica: ReplicaProcess) =>
          [...replica.output().matchAll(/QUELL-PROOF-WRITE (\d+) (\w+)/g)].map((m) => String(m[2]));

        /**
         * One disable-key run, commanded through `replica`; `takeover` gives the URL of the quell that
         * carries on once the replica is gone. Returns the run once it has ended, 'never stored' when the
         * replica died before the run was committed, or undefined when it did not end in time.
         */
        const drive = async (
          world: World,
          replica: ReplicaProcess,
          takeover: () => Promise<string>,
          label: string,
        ) => {
          const userName = `crash-${label}-${randomBytes(3).toString('hex')}`;
          const keyId = await createUserWithKey(iam, userName);
          const requester = `U0C${randomBytes(4).toString('hex').toUpperCase()}`;
          await postSigned(
            replica.baseUrl,
            slashCommand({
              text: `disable-key ${keyId} reason="crash ${label}"`,
              user: requester,
              channel: INCIDENT,
            }),
          ).catch(() => undefined);
          let clickedOn: string | undefined;
          let reclicked = false;
          const deadline = Date.now() + RUN_TIMEOUT_MS;
          let run: RunRecord | 'never stored' | undefined;
          while (Date.now() < deadline) {
            const dead = replica.exited();
            const [r] = await world.store.listRuns({ requester, limit: 1 });
            if (!r) {
              // A committed run is visible at once: once the replica is gone, nothing will store this one
              // (the responder would ask again).
              if (dead) {
                run = 'never stored';
                break;
              }
            } else if (ENDED.includes(r.state)) {
              run = r;
              break;
            } else if (r.state === 'awaiting_approval') {
              const target = dead ? await takeover() : replica.baseUrl;
              const approved = (await world.store.listDecisions(r.id)).some((d) => d.decision === 'approve');
              if (clickedOn !== target && !approved) {
                // The approver clicks; again, on the survivor, if the replica died before committing it.
                if (clickedOn) reclicked = true;
                clickedOn = target;
                await postSigned(
                  target,
                  buttonClick({ actionId: 'quell_approve', value: r.id, user: 'U0LEAD1', channel: INCIDENT }),
                ).catch(() => undefined);
              }
            }
            await sleep(100);
          }
          if (reclicked) t.reclicks++;
          return { run, userName };
        };

        // The write points of a whole run, from a run without a kill.
        const probe = await startReplicaProcess(`${kind}-probe`, setup(worlds[0] as World, 0, 'before'));
        const probeRun = await drive(worlds[0] as World, probe, async () => probe.baseUrl, 'probe');
        await sleep(500);
        const points = writesOf(probe).length;
        await probe.stop();
        if (!probeRun.run || probeRun.run === 'never stored' || probeRun.run.state !== 'succeeded')
          throw new Error(
            `${kind}: the probe run did not succeed: ${probeRun.run === undefined ? 'it did not end' : probeRun.run === 'never stored' ? 'never stored' : `${probeRun.run.state} ${JSON.stringify(probeRun.run.error)}`}; its output: ${probe.output().slice(-1500)}`,
          );
        t.points[kind] = points;
        ctx.log(`${kind}: ${points} write points in a run: ${writesOf(probe).join(' ')}`);
        // A stride coprime to the number of (point, phase) pairs: however few trials fit in the budget,
        // they spread over the whole run (start, planning, approval, execution, result) and both phases.
        const pairs = 2 * points;
        let stride = 13;
        while (gcd(stride, pairs) !== 1) stride++;

        /**
         * The replica to kill: on SQLite, the lane's idle replica (restarted after the previous kill) armed
         * again; otherwise a new process.
         */
        const victim = async (world: World, index: number, point: number, phase: string) => {
          const warm = world.warm;
          world.warm = undefined;
          if (warm && world.control && !warm.exited()) {
            // Armed once idle: the writes that finish the previous run (its last audit entries) come first.
            for (let i = 0, writes = -1; i < 20; i++) {
              const now = writesOf(warm).length;
              if (now === writes) break;
              writes = now;
              await sleep(150);
            }
            const nonce = randomBytes(6).toString('hex');
            writeFileSync(world.control, JSON.stringify({ killAt: point, phase, nonce }));
            process.kill(warm.pid, 'SIGUSR2');
            const armed = await waitUntil(
              `replica ${warm.name} armed`,
              async () => (warm.output().includes(`QUELL-PROOF-ARMED ${nonce}`) ? true : undefined),
              10_000,
            ).catch(() => false);
            if (armed) {
              t.rearmed++;
              return warm;
            }
            await warm.stop();
          }
          return startReplicaProcess(`${kind}-${index}`, setup(world, point, phase));
        };

        let next = 0;
        const killed = new Set<string>();
        const trial = async (world: World) => {
          const began = Date.now();
          const index = next++;
          const pair = (index * stride) % pairs;
          const point = (pair % points) + 1;
          const phase = pair < points ? 'before' : 'after';
          const replica = await victim(world, index, point, phase);
          let restarting: Promise<ReplicaProcess> | undefined;
          const takeover = async () => {
            if (world.survivor) return world.survivor.baseUrl;
            restarting ??= replica
              .kill9()
              .then(() => startReplicaProcess(`${kind}-${index}-restart`, setup(world, 0, 'before')));
            return (await restarting).baseUrl;
          };
          // On SQLite the restart comes as soon as the kill, whatever the run's state.
          const watcher = world.survivor
            ? undefined
            : setInterval(() => {
                if (replica.exited()) void takeover().catch(() => undefined);
              }, 50);
          try {
            const { run, userName } = await drive(world, replica, takeover, `${kind}-${index}`);
            await sleep(100);
            if (!replica.exited()) {
              t.notReached++;
              return;
            }
            killed.add(`${point}${phase[0]}`);
            t.trials[kind] = (t.trials[kind] ?? 0) + 1;
            if (run === 'never stored') {
              t.outcomes['never stored'] = (t.outcomes['never stored'] ?? 0) + 1;
              return;
            }
            if (!run) {
              note(`${kind} write ${point} ${phase}: the run never ended`);
              t.stuck++;
              return;
            }
            const final = (await world.store.getRun(run.id)) as RunRecord;
            t.outcomes[final.state] = (t.outcomes[final.state] ?? 0) + 1;
            const decisions = await world.store.listDecisions(run.id);
            if (decisions.some((d) => d.decision === 'approve') && !AFTER_EXECUTION.includes(final.state)) {
              t.lostApprovals++;
              note(`${kind} write ${point} ${phase}: approved, ended ${final.state}`);
            }
            const entries = await world.store.listAudit({ runId: run.id });
            const started = entries.filter((e) => e.type === 'execute.started').length;
            const intents = entries.filter(
              (e) =>
                e.type === 'aws.intent' && (e.data as { operation?: string }).operation === 'UpdateAccessKey',
            ).length;
            const sent = proxy.requests.filter(
              (r) => r.action === 'UpdateAccessKey' && r.params.UserName === userName,
            ).length;
            if (started > 1 || intents > 1 || sent > 2) {
              t.doubleExecutions++;
              note(
                `${kind} write ${point} ${phase}: ${started} executions, ${intents} intents, ${sent} requests`,
              );
            }
          } finally {
            if (watcher) clearInterval(watcher);
            if (replica.exited()) await replica.kill9();
            else await replica.stop().catch(() => undefined);
            ctx.canaries.scan('logs', replica.output());
            if (restarting) {
              const r = await restarting.catch(() => undefined);
              if (r) {
                ctx.canaries.scan('logs', r.output());
                // It serves the lane's next trial, armed again.
                if (!r.exited()) world.warm = r;
                else await r.stop();
              }
            }
            t.trialSeconds.push((Date.now() - began) / 1000);
          }
          t.chainChecks++;
          if (!(await world.verifyNew())) t.brokenChains++;
        };
        const perStoreGoal = Math.ceil(goal / 2);
        await Promise.all(
          worlds.map(async (world) => {
            while ((t.trials[kind] ?? 0) < perStoreGoal && Date.now() < storeDeadline) {
              await trial(world).catch((e: unknown) => note(`${kind}: ${String(e).slice(0, 120)}`));
            }
          }),
        );
        for (const world of worlds) await world.warm?.stop();
        t.pointsHit[kind] = killed.size;
        ctx.log(`${kind}: ${t.trials[kind]} trials, ${killed.size} of ${pairs} (write point, phase) pairs`);
        const distinct = [...new Set(worlds)];
        for (const world of distinct) {
          if (world.survivor) {
            ctx.canaries.scan('logs', world.survivor.logLines.join('\n'));
            await world.survivor.close();
          }
          ctx.canaries.scan('audit', JSON.stringify(await world.store.listAudit()));
          await world.store.close();
        }
        // The CLI, as a process, over everything each database went through.
        let verified = 0;
        let entries = 0;
        for (const world of distinct) {
          try {
            const { stdout } = await execFileAsync(
              process.execPath,
              ['bin/quell.js', 'audit', 'verify', '--db', world.fullUrl],
              { cwd: REPO, env: { ...process.env, QUELL_LOG_LEVEL: 'silent' } },
            );
            const ok = stdout.match(/audit chain ok: (\d+) entries/);
            if (ok) {
              verified++;
              entries += Number(ok[1]);
            } else t.brokenChains++;
          } catch (error) {
            t.brokenChains++;
            note(`${kind} CLI: ${String((error as { stdout?: string }).stdout ?? error).slice(0, 80)}`);
          }
          await world.drop();
        }
        t.cli.push(
          `${kind}: ${verified} of ${distinct.length} database${distinct.length === 1 ? '' : 's'} ok, ${n(entries)} entries`,
        );
      }
    },
    report(cutOff) {
      const trials = (t.trials.sqlite ?? 0) + (t.trials.postgres ?? 0);
      const outcomes = Object.entries(t.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      const sorted = [...t.trialSeconds].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
      return [
        {
          goal: 'kill -9 at every write point of a run, ≥ 500 trials over SQLite and PostgreSQL: 0 lost approvals, 0 double executions, every chain verifies',
          tried: `${n(trials)} kills (SQLite ${t.trials.sqlite ?? 0}, at ${t.pointsHit.sqlite} of ${2 * (t.points.sqlite ?? 0)} write points × before/after; PostgreSQL ${t.trials.postgres ?? 0}, at ${t.pointsHit.postgres} of ${2 * (t.points.postgres ?? 0)}); ${LANES} lanes per store, median trial ${median.toFixed(1)} s, ${t.rearmed} SQLite replicas restarted after a kill armed again instead of a new process; ${t.reclicks} approvals clicked again after the replica died before committing them; ${t.notReached} runs ended before their kill point${cutOff ? ' (cut off)' : ''}`,
          result: `${t.lostApprovals} lost approvals, ${t.doubleExecutions} double executions, ${t.stuck} runs left unfinished, ${t.brokenChains} broken chains in ${t.chainChecks} checks + CLI (${t.cli.join('; ')}); ends: ${outcomes}${t.samples.length ? `; notes: ${t.samples.join('; ')}` : ''}`,
          pass:
            trials >= GOAL &&
            t.lostApprovals === 0 &&
            t.stuck === 0 &&
            t.doubleExecutions === 0 &&
            t.brokenChains === 0 &&
            t.cli.length === 2,
        },
      ];
    },
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
