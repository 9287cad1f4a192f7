/**
 * kill -9 at every write point of a run, on SQLite and on PostgreSQL. A replica process (`node
 * src/main.ts` with crash-hooks.ts loaded) numbers its store writes; a first run without a kill enumerates
 * the write points of a whole disable-key run (command, plan, card, approval, execution, result). Each
 * trial starts a fresh replica, kills it with SIGKILL just before or just after one write point (cycling
 * through all of them), and a surviving quell on the same database (in this process, heartbeat 1 s,
 * orphans after 2 s) takes over. A run whose approval was never committed gets its approval clicked
 * again, as the approver would. Checked per trial: an approval committed before the kill is never lost
 * (the run goes on to execute, or to an operator if execution had begun); at most one execution (one
 * execute.started, one UpdateAccessKey intent); the whole audit chain verifies. At the end of each store,
 * `quell audit verify` runs as a process too.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { IAMClient } from '@aws-sdk/client-iam';
import { verifyAuditChain } from '../../src/audit/chain.ts';
import { openStore } from '../../src/open-store.ts';
import type { RunRecord } from '../../src/store/store.ts';
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
import { startProofQuell } from '../support/proof-quell.ts';

const GOAL = 500;
const INCIDENT = 'C0INCIDENT';
const HOOKS = new URL('../support/crash-hooks.ts', import.meta.url).pathname;
const REPO = new URL('../..', import.meta.url).pathname;
const execFileAsync = promisify(execFile);
const AFTER_EXECUTION = ['succeeded', 'failed', 'partial', 'needs_operator'];
const ENDED = [...AFTER_EXECUTION, 'denied', 'expired', 'plan_failed', 'superseded'];

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
    cli: [] as string[],
    outcomes: {} as Record<string, number>,
    samples: [] as string[],
  };
  const note = (what: string) => {
    if (t.samples.length < 4) t.samples.push(what);
  };
  return {
    name: 'crash',
    budgetSeconds: 170,
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
      const endpointBefore = process.env.AWS_ENDPOINT_URL;
      const passwordBefore = process.env.PGPASSWORD;
      process.env.AWS_ENDPOINT_URL = proxy.url;
      ctx.onCleanup(async () => {
        process.env.AWS_ENDPOINT_URL = endpointBefore;
        if (passwordBefore === undefined) delete process.env.PGPASSWORD;
        else process.env.PGPASSWORD = passwordBefore;
        ctx.canaries.scan('slack', JSON.stringify(slack.calls));
        iam.destroy();
        await proxy.close();
        await slack.close();
      });
      const stores = ['sqlite', 'postgres'] as const;
      for (const [si, kind] of stores.entries()) {
        // Half the budget per store.
        const storeDeadline = si === 0 ? Date.now() + (ctx.softDeadline - Date.now()) / 2 : ctx.softDeadline;
        let configUrl: string;
        let fullUrl: string;
        let env: Record<string, string> = {};
        let drop: () => Promise<void>;
        if (kind === 'sqlite') {
          const dir = mkdtempSync(join(tmpdir(), 'quell-proof-crash-'));
          configUrl = `sqlite:${join(dir, 'quell.db')}`;
          fullUrl = configUrl;
          drop = async () => rmSync(dir, { recursive: true, force: true });
        } else {
          const db = await createTestDatabase('crash');
          configUrl = db.urlWithoutPassword;
          fullUrl = db.url;
          env = { PGPASSWORD: db.password };
          process.env.PGPASSWORD = db.password;
          drop = () => db.drop();
        }
        const common = {
          accounts: [accountConfig(account.alias, account.id)],
          storage: { url: configUrl },
          replicas: { count: kind === 'postgres' ? 2 : 1, heartbeat: '1s', orphanAfter: '2s' },
        };
        // PostgreSQL: another replica (in this process) takes over. SQLite is one process: the killed one
        // is restarted on the same file, as its supervisor would, and the restart takes over.
        const survivor = kind === 'postgres' ? await startProofQuell(common, slack.apiUrl) : undefined;
        const store = await openStore(fullUrl);
        const setup = (killAt: number, phase: string) => ({
          config: {
            slack: { mode: 'http', auditChannel: 'C0AUDIT' },
            approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3'], expiresIn: '15m' },
            channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
            ...common,
          },
          env: {
            ...env,
            SLACK_API_URL: slack.apiUrl,
            AWS_ENDPOINT_URL: proxy.url,
            AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
            AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
            NODE_OPTIONS: `--import ${HOOKS}`,
            QUELL_PROOF_KILL_AT: String(killAt),
            QUELL_PROOF_KILL_PHASE: phase,
          },
        });
        const writesOf = (replica: ReplicaProcess) =>
          [...replica.output().matchAll(/QUELL-PROOF-WRITE (\d+) (\w+)/g)].map((m) => ({
            n: Number(m[1]),
            method: String(m[2]),
          }));

        /** One disable-key run through `replica`; returns the run once it has ended or the replica died. */
        const drive = async (
          replica: ReplicaProcess,
          exited: () => boolean,
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
          const approveVia = async (url: string, runId: string) =>
            postSigned(
              url,
              buttonClick({ actionId: 'quell_approve', value: runId, user: 'U0LEAD1', channel: INCIDENT }),
            ).catch(() => undefined);
          // Until the run waits for approval (or the replica is gone and the survivor re-planned it).
          let clicked = false;
          let diedAt = 0;
          const run = await waitUntil(
            `run of ${label}`,
            async () => {
              const [r] = await store.listRuns({ requester, limit: 1 });
              if (!r) {
                // Killed before the run was stored: nothing exists to recover (the responder asks again).
                if (!exited()) return undefined;
                diedAt ||= Date.now();
                if (Date.now() - diedAt > 8_000) return 'never stored' as const;
                return undefined;
              }
              if (r.state === 'awaiting_approval' && !clicked) {
                clicked = true;
                await approveVia(exited() ? await takeover() : replica.baseUrl, r.id);
              }
              return ENDED.includes(r.state) ? r : undefined;
            },
            40_000,
          ).catch(async () => {
            // The approval click may have died with the replica before it was committed: the approver
            // clicks again, on the survivor.
            const [r] = await store.listRuns({ requester, limit: 1 });
            if (!r) return undefined;
            if (r.state === 'awaiting_approval') {
              await approveVia(await takeover(), r.id);
              return waitUntil(
                `run ${r.id} to end`,
                async () => {
                  const x = await store.getRun(r.id);
                  return x && ENDED.includes(x.state) ? x : undefined;
                },
                30_000,
              );
            }
            return undefined;
          });
          return { run, userName, requester };
        };

        // The write points of a whole run, from a run without a kill.
        const probe = await startReplicaProcess(`${kind}-probe`, setup(0, 'before'));
        const probeRun = await drive(
          probe,
          () => false,
          async () => probe.baseUrl,
          'probe',
        );
        await sleep(500);
        const points = writesOf(probe).length;
        await probe.stop();
        if (!probeRun.run || probeRun.run === 'never stored' || probeRun.run.state !== 'succeeded')
          throw new Error(`${kind}: the probe run did not succeed`);
        t.points[kind] = points;
        ctx.log(
          `${kind}: ${points} write points in a run: ${writesOf(probe)
            .map((w) => w.method)
            .join(' ')}`,
        );

        let next = 0;
        const killed = new Set<string>();
        const trial = async () => {
          const index = next++;
          // A stride coprime to the number of (point, phase) pairs: however few trials fit in the budget,
          // they spread over the whole run (start, planning, approval, execution, result) and both phases.
          const pairs = 2 * points;
          let stride = 13;
          while (gcd(stride, pairs) !== 1) stride++;
          const pair = (index * stride) % pairs;
          const point = (pair % points) + 1;
          const phase = pair < points ? 'before' : 'after';
          killed.add(`${point}${phase[0]}`);
          const replica = await startReplicaProcess(`${kind}-${index}`, setup(point, phase));
          let dead = false;
          let restarted: ReplicaProcess | undefined;
          let restarting: Promise<ReplicaProcess> | undefined;
          const takeover = async () => {
            if (survivor) return survivor.baseUrl;
            restarting ??= replica
              .kill9()
              .then(() => startReplicaProcess(`${kind}-${index}-restart`, setup(0, 'before')));
            restarted = await restarting;
            return restarted.baseUrl;
          };
          // On SQLite the restart must come as soon as the kill, whatever the run's state.
          const watcher = survivor
            ? undefined
            : setInterval(() => {
                if (dead) void takeover().catch(() => undefined);
              }, 100);
          const deadCheck = setInterval(() => {
            try {
              process.kill(replica.pid, 0);
            } catch {
              dead = true;
            }
          }, 50);
          try {
            const { run: ended, userName } = await drive(replica, () => dead, takeover, `${kind}-${index}`);
            await sleep(100);
            const killed = dead;
            if (!killed) {
              t.notReached++;
              await replica.stop();
              return;
            }
            await replica.kill9(); // reaps it and removes its directory
            t.trials[kind] = (t.trials[kind] ?? 0) + 1;
            if (ended === 'never stored') {
              t.outcomes['never stored'] = (t.outcomes['never stored'] ?? 0) + 1;
              return;
            }
            const run = ended;
            if (!run) {
              note(`${kind} write ${point} ${phase}: the run never ended`);
              t.stuck++;
              return;
            }
            const final = (await store.getRun(run.id)) as RunRecord;
            t.outcomes[final.state] = (t.outcomes[final.state] ?? 0) + 1;
            const decisions = await store.listDecisions(run.id);
            if (decisions.some((d) => d.decision === 'approve') && !AFTER_EXECUTION.includes(final.state)) {
              t.lostApprovals++;
              note(`${kind} write ${point} ${phase}: approved, ended ${final.state}`);
            }
            const entries = await store.listAudit({ runId: run.id });
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
            clearInterval(deadCheck);
            if (watcher) clearInterval(watcher);
            if (!dead) await replica.stop().catch(() => undefined);
            ctx.canaries.scan('logs', replica.output());
            if (restarting) {
              const r = await restarting.catch(() => undefined);
              if (r) {
                ctx.canaries.scan('logs', r.output());
                await r.stop();
              }
            }
          }
          t.chainChecks++;
          if (!verifyAuditChain(await store.listAudit()).ok) t.brokenChains++;
        };
        const perStoreGoal = Math.ceil(goal / 2);
        const countPoints = () => {
          t.pointsHit[kind] = killed.size;
        };
        await Promise.all(
          Array.from({ length: kind === 'postgres' ? 3 : 1 }, async () => {
            while ((t.trials[kind] ?? 0) < perStoreGoal && Date.now() < storeDeadline) {
              await trial().catch((e: unknown) => note(`${kind}: ${String(e).slice(0, 120)}`));
            }
          }),
        );
        if (survivor) ctx.canaries.scan('logs', survivor.logLines.join('\n'));
        countPoints();
        ctx.canaries.scan('audit', JSON.stringify(await store.listAudit()));
        await survivor?.close();
        await store.close();
        // The CLI, as a process, over everything this store went through.
        try {
          const { stdout } = await execFileAsync(
            process.execPath,
            ['bin/quell.js', 'audit', 'verify', '--db', fullUrl],
            {
              cwd: REPO,
              env: { ...process.env, QUELL_LOG_LEVEL: 'silent' },
            },
          );
          t.cli.push(`${kind}: ${stdout.match(/audit chain ok: \d+ entries/)?.[0] ?? 'NOT OK'}`);
          if (!stdout.includes('audit chain ok')) t.brokenChains++;
        } catch (error) {
          t.brokenChains++;
          t.cli.push(
            `${kind}: failed (${String((error as { stdout?: string }).stdout ?? error).slice(0, 80)})`,
          );
        }
        await drop();
      }
    },
    report(cutOff) {
      const trials = (t.trials.sqlite ?? 0) + (t.trials.postgres ?? 0);
      const outcomes = Object.entries(t.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return [
        {
          goal: 'kill -9 at every write point of a run, ≥ 500 trials over SQLite and PostgreSQL: 0 lost approvals, 0 double executions, every chain verifies',
          tried: `${n(trials)} kills (SQLite ${t.trials.sqlite ?? 0}, at ${t.pointsHit.sqlite} of ${2 * (t.points.sqlite ?? 0)} write points × before/after; PostgreSQL ${t.trials.postgres ?? 0}, at ${t.pointsHit.postgres} of ${2 * (t.points.postgres ?? 0)}); ${t.notReached} runs ended before their kill point${cutOff ? ' (cut off)' : ''}`,
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
