/**
 * Faults on both sides of quell, through full disable-key flows (command, approval click, execution):
 *  - AWS: moto behind the fault proxy, which answers 50% of all AWS requests with Throttling and 10% with
 *    a 5xx. A final state is correct when the run ended (no run left in flight) and what it reports matches
 *    moto: succeeded ⇒ key Inactive and the deny policy on the user; otherwise the key's status and the
 *    policy are exactly what the run's audit entries say was done.
 *  - Slack: a proxy in front of the fake Slack answers 25% of chat.postMessage / chat.update attempts with
 *    `ratelimited` (429, Retry-After: 1) and 10% with a 5xx. A message is lost when no attempt of it reached
 *    the fake; every run's card and every audit entry the audit channel mirrors must have arrived.
 */
import { randomBytes } from 'node:crypto';
import { IAMClient, ListUserPoliciesCommand } from '@aws-sdk/client-iam';
import { MIRRORED } from '../../src/slack/audit-channel-sink.ts';
import type { RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminCredentials,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../../tests/support/aws-fixtures.ts';
import { startFakeSlack } from '../../tests/support/fake-slack.ts';
import { queryError, startFaultProxy } from '../../tests/support/fault-proxy.ts';
import { n, type Part, pool, waitUntil } from '../support/part.ts';
import { type ProofQuell, startProofQuell } from '../support/proof-quell.ts';
import { startSlackFaultProxy } from '../support/slack-fault-proxy.ts';

const ENDED = [
  'succeeded',
  'failed',
  'denied',
  'expired',
  'superseded',
  'plan_failed',
  'partial',
  'needs_operator',
];

export function faultsPart(): Part {
  const aws = {
    runs: 0,
    ended: 0,
    correct: 0,
    succeeded: 0,
    attempts: 0,
    throttled: 0,
    failed5xx: 0,
    wrong: [] as string[],
  };
  const slack = {
    runs: 0,
    succeeded: 0,
    messages: 0,
    lost: 0,
    lostKinds: {} as Record<string, number>,
    attempts: 0,
    ratelimited: 0,
    failed5xx: 0,
    cards: 0,
    cardsMissing: 0,
    mirrored: 0,
    mirroredMissing: 0,
    drained: false,
    drainSeconds: 0,
  };
  return {
    name: 'faults',
    budgetSeconds: 150,
    async run(ctx) {
      const motoUrl = ctx.servers.motoUrl;
      const accounts = Array.from({ length: 4 }, (_, i) => ({ alias: `acct${i}`, id: randomAccountId() }));
      const admins = new Map<string, IAMClient>();
      for (const a of accounts) {
        admins.set(
          a.alias,
          new IAMClient({
            region: 'us-east-1',
            endpoint: motoUrl,
            credentials: await adminCredentials(a.id),
          }),
        );
      }
      ctx.onCleanup(() => {
        for (const c of admins.values()) c.destroy();
      });
      const flow = async (
        q: ProofQuell,
        idx: number,
      ): Promise<{ run: RunRecord; userName: string; keyId: string; alias: string }> => {
        const account = accounts[idx % accounts.length] as { alias: string; id: string };
        const iam = admins.get(account.alias) as IAMClient;
        const userName = `proof-${idx}-${randomBytes(3).toString('hex')}`;
        const keyId = await createUserWithKey(iam, userName);
        const requester = `U0REQ${idx}`;
        await q.command(`disable-key ${keyId} account=${account.alias} reason="proof faults"`, requester);
        const first = await waitUntil(
          'the run to be planned',
          async () => {
            const [run] = await q.quell.store.listRuns({ requester, limit: 1 });
            return run && (run.state === 'awaiting_approval' || ENDED.includes(run.state)) ? run : undefined;
          },
          90_000,
        );
        if (first.state === 'awaiting_approval') {
          for (let i = 0; i < Math.max(1, first.requiredApprovals); i++)
            await q.click('quell_approve', first.id, `U0LEAD${i + 1}`);
        }
        const run = await waitUntil(
          'the run to end',
          async () => {
            const r = await q.quell.store.getRun(first.id);
            return r && ENDED.includes(r.state) ? r : undefined;
          },
          90_000,
        );
        return { run, userName, keyId, alias: account.alias };
      };
      const accountsConfig = accounts.map((a) => accountConfig(a.alias, a.id));

      // 1. AWS faults.
      {
        const fake = await startFakeSlack();
        const proxy = await startFaultProxy(motoUrl);
        proxy.intercept = (req) => {
          if (req.action === '') return undefined;
          const roll = Math.random();
          if (roll < 0.5) return queryError('Throttling', 'Rate exceeded', 400);
          if (roll < 0.6) return queryError('InternalFailure', 'injected', 500);
          return undefined;
        };
        const before = process.env.AWS_ENDPOINT_URL;
        process.env.AWS_ENDPOINT_URL = proxy.url;
        const q = await startProofQuell({ accounts: accountsConfig }, fake.apiUrl);
        const target = Math.max(4, Math.round(24 * ctx.scale));
        const awsDeadline = Date.now() + (ctx.softDeadline - Date.now()) * 0.4;
        let idx = 0;
        try {
          await pool(
            Array.from({ length: target }, () => idx++),
            4,
            async (i) => {
              aws.runs++;
              try {
                const { run, userName, keyId, alias } = await flow(q, i);
                aws.ended++;
                if (run.state === 'succeeded') aws.succeeded++;
                const iam = admins.get(alias) as IAMClient;
                const status = await keyStatus(iam, userName, keyId);
                const policies =
                  (await iam.send(new ListUserPoliciesCommand({ UserName: userName }))).PolicyNames ?? [];
                const audit = await q.quell.store.listAudit({ runId: run.id });
                const done = (op: string) =>
                  audit.some(
                    (e) =>
                      e.type === 'aws.call' &&
                      (e.data as { operation?: string; outcome?: string }).operation === op &&
                      (e.data as { outcome?: string }).outcome === 'ok',
                  );
                const tried = (op: string) =>
                  audit.some(
                    (e) => e.type === 'aws.intent' && (e.data as { operation?: string }).operation === op,
                  );
                const keyOk = done('UpdateAccessKey')
                  ? status === 'Inactive'
                  : tried('UpdateAccessKey')
                    ? true
                    : status === 'Active';
                const policyOk = done('PutUserPolicy')
                  ? policies.length > 0
                  : tried('PutUserPolicy')
                    ? true
                    : policies.length === 0;
                const ok =
                  run.state === 'succeeded'
                    ? status === 'Inactive' && policies.length > 0
                    : keyOk && policyOk;
                if (ok) aws.correct++;
                else aws.wrong.push(`${run.state}: key ${status}, ${policies.length} policies`);
              } catch (error) {
                aws.wrong.push(String(error).slice(0, 120));
              }
            },
            () => Date.now() > awsDeadline,
          );
        } finally {
          process.env.AWS_ENDPOINT_URL = before;
          aws.attempts = proxy.requests.length;
          aws.throttled = proxy.requests.filter((r) => r.injected && r.status === 400).length;
          aws.failed5xx = proxy.requests.filter((r) => r.injected && r.status === 500).length;
          ctx.canaries.scan('logs', q.logLines.join('\n'));
          ctx.canaries.scan('slack', JSON.stringify(fake.calls));
          ctx.canaries.scan('audit', JSON.stringify(await q.quell.store.listAudit()));
          await q.close();
          await proxy.close();
          await fake.close();
        }
      }

      // 2. Slack faults.
      {
        const fake = await startFakeSlack();
        const proxy = await startSlackFaultProxy(fake.url, {
          ratelimited: 0.25,
          serverError: 0.1,
          retryAfterSeconds: 1,
        });
        const q = await startProofQuell({ accounts: accountsConfig }, proxy.apiUrl);
        const target = Math.max(3, Math.round(12 * ctx.scale));
        let idx = 1000;
        const runs: RunRecord[] = [];
        try {
          await pool(
            Array.from({ length: target }, () => idx++),
            4,
            async (i) => {
              slack.runs++;
              const { run } = await flow(q, i);
              runs.push(run);
              if (run.state === 'succeeded') slack.succeeded++;
            },
            () => Date.now() > ctx.softDeadline,
          );
          // The audit channel is mirrored one line after another, each waiting out its rate limits: the
          // queue drains well after the runs end. Checked once drained (bounded; a queue still draining
          // is reported as such, and its undelivered lines count as lost).
          const waitFrom = Date.now();
          slack.drained = await Promise.race([
            q.quell.idle().then(() => true),
            new Promise<boolean>((r) => setTimeout(() => r(false), 100_000)),
          ]);
          slack.drainSeconds = Math.round((Date.now() - waitFrom) / 1000);
          ctx.log(
            `slack: ${slack.drained ? 'drained' : 'NOT drained'} ${slack.drainSeconds} s after the runs`,
          );
        } finally {
          // Attempts grouped by message: a retry sends the same body again.
          const byMessage = new Map<string, { method: string; body: string; delivered: boolean }>();
          for (const a of proxy.attempts) {
            if (a.method !== 'chat.postMessage' && a.method !== 'chat.update') continue;
            slack.attempts++;
            if (a.fault === 'ratelimited') slack.ratelimited++;
            if (a.fault === '5xx') slack.failed5xx++;
            const key = `${a.method}\n${a.body}`;
            const m = byMessage.get(key) ?? { method: a.method, body: a.body, delivered: false };
            if (!a.fault) m.delivered = true;
            byMessage.set(key, m);
          }
          slack.messages = byMessage.size;
          for (const m of byMessage.values()) {
            if (m.delivered) continue;
            slack.lost++;
            const kind =
              m.method === 'chat.update'
                ? 'card update'
                : m.body.includes('C0AUDIT')
                  ? 'audit channel'
                  : m.body.includes('thread_ts')
                    ? 'thread'
                    : 'card';
            slack.lostKinds[kind] = (slack.lostKinds[kind] ?? 0) + 1;
          }
          const delivered = fake.callsOf('chat.postMessage');
          for (const run of runs) {
            slack.cards++;
            if (!delivered.some((c) => JSON.stringify(c.body.blocks ?? '').includes(run.id)))
              slack.cardsMissing++;
          }
          const auditLines = delivered
            .filter((c) => c.body.channel === 'C0AUDIT')
            .map((c) => String(c.body.text));
          for (const e of await q.quell.store.listAudit()) {
            if (!MIRRORED.has(e.type)) continue;
            slack.mirrored++;
            if (!auditLines.some((t) => t.startsWith(`\`#${e.seq}\``))) slack.mirroredMissing++;
          }
          ctx.canaries.scan('logs', q.logLines.join('\n'));
          ctx.canaries.scan('slack', JSON.stringify(fake.calls));
          await q.close();
          await proxy.close();
          await fake.close();
        }
      }
    },
    report(cutOff) {
      const lostKinds = Object.entries(slack.lostKinds)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return [
        {
          goal: 'AWS faults (Throttling on 50% of requests, 5xx on 10%): 100% correct final states',
          tried: `${aws.runs} disable-key runs, ${n(aws.attempts)} AWS requests (${n(aws.throttled)} throttled, ${n(aws.failed5xx)} 5xx)${cutOff ? ' (cut off)' : ''}`,
          result: `${aws.correct}/${aws.runs} correct (${aws.succeeded} succeeded, ${aws.ended - aws.succeeded} ended reporting the failure)${aws.wrong.length ? `; wrong: ${aws.wrong.slice(0, 3).join('; ')}` : ''}`,
          pass: aws.runs >= 4 && aws.correct === aws.runs,
        },
        {
          goal: 'Slack faults (ratelimited + Retry-After on 25%, 5xx on 10% of chat.postMessage/chat.update): no card, thread message or audit-channel entry lost',
          tried: `${slack.runs} runs, ${n(slack.messages)} messages in ${n(slack.attempts)} attempts (${n(slack.ratelimited)} ratelimited, ${n(slack.failed5xx)} 5xx)${cutOff ? ' (cut off)' : ''}`,
          result: `${slack.lost} lost${lostKinds ? ` (${lostKinds})` : ''}; audit-channel queue ${slack.drained ? `drained ${slack.drainSeconds} s after the runs` : `NOT drained after ${slack.drainSeconds} s`}; cards ${slack.cards - slack.cardsMissing}/${slack.cards}; audit-channel entries ${slack.mirrored - slack.mirroredMissing}/${slack.mirrored}; ${slack.succeeded}/${slack.runs} runs succeeded`,
          pass:
            slack.runs >= 3 &&
            slack.drained &&
            slack.lost === 0 &&
            slack.cardsMissing === 0 &&
            slack.mirroredMissing === 0,
        },
      ];
    },
  };
}
