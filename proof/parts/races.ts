/**
 * Approve/deny/expire races over 3 real replica processes (`node src/main.ts`, HTTP mode) on one
 * PostgreSQL database. Each schedule is one disable-key run needing 2 approvals and a random burst of
 * clicks (approve or deny by eligible approvers, self-approval by the requester, a non-approver, double
 * clicks), each sent to a random replica at a random small offset; "expire" schedules get at most one
 * approval, then a late click after the request expired. Each history is checked against a model of the
 * state machine, replayed over the decisions in the order the store committed them (etcd-robustness
 * style): only eligible, distinct, non-requester decisions are recorded, none after the run left
 * awaiting_approval; a deny first means 0 executions; a quorum first means exactly 1 execution (counted
 * both as UpdateAccessKey requests that reached moto and as execute.started audit entries); no quorum
 * means 0 executions.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { IAMClient } from '@aws-sdk/client-iam';
import { openStore } from '../../src/open-store.ts';
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

const GOAL = 1_000;
const INCIDENT = 'C0INCIDENT';
const APPROVERS = ['U0LEAD1', 'U0LEAD2', 'U0LEAD3'];
const REQUIRED = 2;
const EXPIRES_MS = 60_000; // the shortest expiry the config allows
const ENDED = ['succeeded', 'failed', 'denied', 'expired', 'partial', 'needs_operator', 'plan_failed'];

interface Click {
  user: string;
  decision: 'approve' | 'deny';
  replica: number;
  delayMs: number;
}

export function racesPart(): Part {
  const t = {
    schedules: 0,
    checked: 0,
    violations: 0,
    samples: [] as string[],
    denied: 0,
    quorum: 0,
    expired: 0,
    open: 0,
    execAfterDeny: 0,
    execAfterQuorum: [0, 0, 0] as number[],
    clicks: 0,
    errors: 0,
    awsRequests: 0,
  };
  const violation = (what: string) => {
    t.violations++;
    if (t.samples.length < 4) t.samples.push(what);
  };
  return {
    name: 'races',
    budgetSeconds: 240,
    async run(ctx) {
      const goal = Math.ceil(GOAL * ctx.scale);
      const db = await createTestDatabase('races');
      const slack = await startFakeSlack();
      const proxy = await startFaultProxy(ctx.servers.motoUrl);
      const accounts = Array.from({ length: 12 }, (_, i) => ({ alias: `acct${i}`, id: randomAccountId() }));
      const admins: IAMClient[] = [];
      for (const a of accounts)
        admins.push(
          new IAMClient({
            region: 'us-east-1',
            endpoint: ctx.servers.motoUrl,
            credentials: await adminCredentials(a.id),
          }),
        );
      const setup = {
        config: {
          slack: { mode: 'http' },
          accounts: accounts.map((a) => accountConfig(a.alias, a.id)),
          approvals: {
            approvers: APPROVERS,
            expiresIn: '1m',
            runbooks: { 'disable-key': { required: REQUIRED } },
          },
          channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
          storage: { url: db.urlWithoutPassword },
          replicas: { count: 3, heartbeat: '2s', orphanAfter: '10s' },
        },
        env: {
          PGPASSWORD: db.password,
          SLACK_API_URL: slack.apiUrl,
          AWS_ENDPOINT_URL: proxy.url,
          AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
          AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
        },
      };
      const replicas: ReplicaProcess[] = await Promise.all(
        [0, 1, 2].map((i) => startReplicaProcess(`race${i}`, setup)),
      );
      const store: Store = await openStore(db.url);
      ctx.onCleanup(async () => {
        for (const r of replicas) ctx.canaries.scan('logs', r.output());
        ctx.canaries.scan('slack', JSON.stringify(slack.calls));
        await Promise.all(replicas.map((r) => r.stop()));
        await store.close();
        for (const a of admins) a.destroy();
        await proxy.close();
        await slack.close();
        await db.drop();
      });
      const replicaUrl = (i: number) => (replicas[i] as ReplicaProcess).baseUrl;

      // One execution = one execute.started entry and one UpdateAccessKey call (its intent: the SDK may
      // send a call more than once on a dropped connection; those are attempts, not executions).
      const executionsOf = async (run: RunRecord, userName: string) => {
        const entries = await store.listAudit({ runId: run.id });
        t.awsRequests += proxy.requests.filter(
          (r) => r.action === 'UpdateAccessKey' && r.params.UserName === userName,
        ).length;
        return {
          aws: entries.filter(
            (e) =>
              e.type === 'aws.intent' && (e.data as { operation?: string }).operation === 'UpdateAccessKey',
          ).length,
          audit: entries.filter((e) => e.type === 'execute.started').length,
        };
      };

      /**
       * The decisions' timestamps are taken at click time, before the row lock: their order is not the
       * commit order. As in etcd's robustness tests, the history passes when some order of the recorded
       * decisions replays through the model, and the model's end state is the store's.
       */
      const check = async (run: RunRecord, userName: string, label: string) => {
        const decisions = await store.listDecisions(run.id);
        const stored = (await store.getRun(run.id)) as RunRecord;
        const storedKind = [
          'approved',
          'running',
          'succeeded',
          'failed',
          'partial',
          'needs_operator',
        ].includes(stored.state)
          ? 'approved'
          : stored.state === 'denied'
            ? 'denied'
            : 'awaiting';
        const replay = (order: typeof decisions): 'awaiting' | 'approved' | 'denied' | 'invalid' => {
          let state: 'awaiting' | 'approved' | 'denied' = 'awaiting';
          const approvals = new Set<string>();
          for (const d of order) {
            if (state !== 'awaiting') return 'invalid';
            if (d.userId === run.requester || !APPROVERS.includes(d.userId)) return 'invalid';
            if (d.decision === 'deny') state = 'denied';
            else {
              if (approvals.has(d.userId)) return 'invalid';
              approvals.add(d.userId);
              if (approvals.size >= REQUIRED) state = 'approved';
            }
          }
          return state;
        };
        const orders = permutations(decisions);
        const state = orders.some((o) => replay(o) === storedKind) ? storedKind : undefined;
        if (!state) {
          violation(
            `${label}: no order of ${decisions.map((d) => `${d.decision} ${d.userId}`).join(', ')} ends ${stored.state}`,
          );
          t.checked++;
          return;
        }
        const final =
          state === 'approved'
            ? await waitUntil(
                'execution to end',
                async () => {
                  const r = await store.getRun(run.id);
                  return r && ENDED.includes(r.state) ? r : undefined;
                },
                60_000,
              )
            : ((await store.getRun(run.id)) as RunRecord);
        const ex = await executionsOf(run, userName);
        t.checked++;
        if (state === 'denied') {
          t.denied++;
          if (ex.aws + ex.audit > 0) t.execAfterDeny++;
          if (final.state !== 'denied') violation(`${label}: model denied, run ${final.state}`);
        } else if (state === 'approved') {
          t.quorum++;
          const k = Math.min(ex.aws, 2);
          t.execAfterQuorum[k] = (t.execAfterQuorum[k] ?? 0) + 1;
          if (ex.aws !== 1 || ex.audit !== 1)
            violation(
              `${label}: quorum, executions: ${ex.aws} UpdateAccessKey calls, ${ex.audit} execute.started`,
            );
          if (final.state !== 'succeeded') violation(`${label}: quorum, run ${final.state}`);
        } else {
          if (final.state === 'expired') t.expired++;
          else t.open++;
          if (ex.aws + ex.audit > 0)
            violation(
              `${label}: no quorum, executions: ${ex.aws} UpdateAccessKey calls, ${ex.audit} execute.started`,
            );
          if (!['awaiting_approval', 'expired'].includes(final.state))
            violation(`${label}: no quorum, run ${final.state}`);
        }
      };

      const schedule = async (idx: number, expire: boolean) => {
        const account = idx % accounts.length;
        const userName = `race-${idx}-${randomBytes(3).toString('hex')}`;
        const keyId = await createUserWithKey(admins[account] as IAMClient, userName);
        const requester = `U0REQ${idx.toString(36).toUpperCase()}`;
        await postSigned(
          replicaUrl(randomInt(0, 3)),
          slashCommand({
            text: `disable-key ${keyId} account=acct${account} reason="race ${idx}"`,
            user: requester,
            channel: INCIDENT,
          }),
        );
        const run = await waitUntil(
          'the run to await approval',
          async () => {
            const [r] = await store.listRuns({ requester, limit: 1 });
            return r && r.state !== 'planning' ? r : undefined;
          },
          60_000,
        );
        t.schedules++;
        if (run.state !== 'awaiting_approval') {
          violation(`schedule ${idx}: planned to ${run.state}`);
          return;
        }
        const clicks: Click[] = [];
        const pick = () => APPROVERS[randomInt(0, APPROVERS.length)] as string;
        if (expire) {
          if (randomInt(0, 2))
            clicks.push({ user: pick(), decision: 'approve', replica: randomInt(0, 3), delayMs: 0 });
        } else {
          for (let i = randomInt(2, 7); i > 0; i--) {
            const roll = randomInt(0, 10);
            const user = roll === 0 ? requester : roll === 1 ? 'U0RANDO' : pick();
            clicks.push({
              user,
              decision: randomInt(0, 4) === 0 ? 'deny' : 'approve',
              replica: randomInt(0, 3),
              delayMs: randomInt(0, 40),
            });
          }
        }
        const send = (c: Click) =>
          postSigned(
            replicaUrl(c.replica),
            buttonClick({
              actionId: c.decision === 'approve' ? 'quell_approve' : 'quell_deny',
              value: run.id,
              user: c.user,
              channel: INCIDENT,
            }),
          ).catch(() => {
            t.errors++;
          });
        t.clicks += clicks.length;
        await Promise.all(
          clicks.map(async (c) => {
            await sleep(c.delayMs);
            await send(c);
          }),
        );
        if (expire) return { run, userName, idx };
        await sleep(300); // the last click's decision commits after the ack
        await check(run, userName, `schedule ${idx}`);
        return undefined;
      };

      // Expire schedules first (they need a minute to expire), then races until the goal or the deadline.
      const expiring: Promise<{ run: RunRecord; userName: string; idx: number } | undefined>[] = [];
      const expireCount = Math.max(3, Math.round(goal * 0.03));
      for (let i = 0; i < expireCount; i++) expiring.push(schedule(1_000_000 + i, true));
      const expireStarted = Date.now();
      let next = 0;
      const stop = () => t.schedules >= goal || Date.now() > ctx.softDeadline;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (!stop()) {
            const idx = next++;
            await schedule(idx, false).catch((e: unknown) => {
              t.errors++;
              violation(`schedule ${idx}: ${String(e).slice(0, 100)}`);
            });
          }
        }),
      );
      const settled = await Promise.all(expiring.map((p) => p.catch(() => undefined)));
      const wait = expireStarted + EXPIRES_MS + 2_000 - Date.now();
      if (wait > 0) await sleep(wait);
      for (const s of settled) {
        if (!s) continue;
        // A late approval after the expiry must not count (and must not execute).
        await postSigned(
          replicaUrl(randomInt(0, 3)),
          buttonClick({ actionId: 'quell_approve', value: s.run.id, user: 'U0LEAD3', channel: INCIDENT }),
        );
        t.clicks++;
        await sleep(300);
        const decisions = await store.listDecisions(s.run.id);
        if (decisions.some((d) => d.at > (s.run.expiresAt ?? Number.POSITIVE_INFINITY)))
          violation(`expire ${s.idx}: a decision after the expiry was recorded`);
        await check(s.run, s.userName, `expire ${s.idx}`);
      }
      ctx.canaries.scan('audit', JSON.stringify(await store.listAudit()));
    },
    report(cutOff) {
      return [
        {
          goal: 'approve/deny/expire races: ≥ 1,000 random schedules over 3 replica processes on PostgreSQL, each history checked against the state-machine model',
          tried: `${n(t.schedules)} schedules (${n(t.clicks)} clicks), ${n(t.checked)} histories checked${cutOff ? ' (cut off)' : ''}`,
          result: `${t.violations} model violations${t.samples.length ? ` (${t.samples.join('; ')})` : ''}; outcomes: ${t.quorum} quorum, ${t.denied} denied, ${t.expired} expired, ${t.open} no quorum`,
          pass: t.schedules >= GOAL && t.violations === 0,
        },
        {
          goal: 'races: 0 executions after a deny, exactly one execution after a quorum',
          tried: `${t.denied} denied, ${t.quorum} with a quorum (${t.awsRequests} UpdateAccessKey requests reached moto)`,
          result: `${t.execAfterDeny} executions after a deny; after a quorum: ${t.execAfterQuorum[1]} exactly once, ${t.execAfterQuorum[0]} never, ${t.execAfterQuorum[2]} twice or more`,
          pass: t.quorum > 0 && t.denied > 0 && t.execAfterDeny === 0 && t.execAfterQuorum[1] === t.quorum,
        },
      ];
    },
  };
}

/** Every order of `items` (at most 6 decisions per run: 720 orders). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  const out: T[][] = [];
  items.forEach((item, i) => {
    for (const rest of permutations([...items.slice(0, i), ...items.slice(i + 1)])) out.push([item, ...rest]);
  });
  return out;
}
