/**
 * Forged, stale, future-dated and replayed signatures against Bolt's real HTTP receiver of a running quell
 * (createQuell, HTTP mode). Every attack comes from U0ATTACKER; accepted means an HTTP 200, or anything of
 * U0ATTACKER's reaching the command handler (a run) or the audit log. Validly signed `help` commands from
 * another user are mixed in as controls: the receiver must accept every one, or a 0 would prove nothing.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { accountConfig, randomAccountId } from '../../tests/support/aws-fixtures.ts';
import { buttonClick, SIGNING_SECRET, sign, slashCommand } from '../../tests/support/slack-requests.ts';
import { INCIDENT, startTestQuell } from '../../tests/support/test-quell.ts';
import { n, type Part, pool } from '../support/part.ts';

const GOAL = 10_000;
const ATTACKER = 'U0ATTACKER';

type Kind = 'forged' | 'stale' | 'future-dated' | 'replayed';

export function signaturesPart(): Part {
  const tried: Record<Kind, number> = { forged: 0, stale: 0, 'future-dated': 0, replayed: 0 };
  const acceptedStatus: Record<Kind, number> = { forged: 0, stale: 0, 'future-dated': 0, replayed: 0 };
  let reached = 0; // runs or audit entries of the attacker
  let controls = 0;
  let controlsAccepted = 0;
  let target = GOAL;
  return {
    name: 'signatures',
    budgetSeconds: 60,
    async run(ctx) {
      target = Math.ceil(GOAL * ctx.scale);
      const t = await startTestQuell(
        { accounts: [accountConfig('prod', randomAccountId())] },
        { logLevel: 'info' },
      );
      ctx.onCleanup(async () => {
        ctx.canaries.scan('logs', t.logLines.join('\n'));
        ctx.canaries.scan('slack', JSON.stringify(t.slack.calls));
        ctx.canaries.scan('audit', JSON.stringify(await t.quell.store.listAudit()));
        await t.close();
      });
      const url = `${t.baseUrl}/slack/events`;
      const nowSec = () => Math.floor(Date.now() / 1000);
      const attackBody = (i: number) =>
        i % 4 === 0
          ? buttonClick({
              actionId: 'quell_approve',
              value: `r${randomBytes(8).toString('hex')}`,
              user: ATTACKER,
              channel: INCIDENT,
            })
          : slashCommand({
              text: `disable-key AKIAIOSFODNN7EXAMPLE reason="attempt ${i}"`,
              user: ATTACKER,
              channel: INCIDENT,
            });
      const post = async (body: string, headers: Record<string, string>) => {
        const res = await fetch(url, { method: 'POST', headers, body });
        await res.arrayBuffer();
        return res.status;
      };
      const forged = (i: number, body: string): Record<string, string> => {
        const good = sign(body);
        switch (i % 10) {
          case 0:
            return sign(body, { secret: randomBytes(16).toString('hex') });
          case 1:
            return { ...good, 'x-slack-signature': `v0=${randomBytes(32).toString('hex')}` };
          case 2:
            return sign(body.replace(ATTACKER, 'U0LEAD1')); // signed another body
          case 3: {
            const { 'x-slack-signature': _s, ...rest } = good;
            return rest;
          }
          case 4: {
            const { 'x-slack-request-timestamp': _t, ...rest } = good;
            return rest;
          }
          case 5:
            return { ...good, 'x-slack-signature': good['x-slack-signature']?.replace('v0=', 'v1=') ?? '' };
          case 6:
            return { ...good, 'x-slack-signature': good['x-slack-signature']?.slice(0, -2) ?? '' };
          case 7:
            return { ...good, 'x-slack-signature': good['x-slack-signature']?.toUpperCase() ?? '' };
          case 8:
            return { ...good, 'x-slack-request-timestamp': String(nowSec() - 1) }; // signed for another time
          default:
            return sign(body, { secret: SIGNING_SECRET.slice(0, -1) });
        }
      };
      const attack = async (i: number) => {
        const kind: Kind = (['forged', 'stale', 'future-dated', 'replayed'] as const)[i % 4] ?? 'forged';
        const body = attackBody(Math.floor(i / 4));
        let headers: Record<string, string>;
        let sendBody = body;
        if (kind === 'forged') headers = forged(Math.floor(i / 4), body);
        else if (kind === 'stale')
          headers = sign(body, { timestamp: nowSec() - 301 - randomInt(0, 86_400 * 365) });
        // Dated ahead: 310 s past the next whole second is out of the window after any delay on the way.
        else if (kind === 'future-dated')
          headers = sign(body, {
            timestamp: Math.ceil(Date.now() / 1000) + 310 + randomInt(0, 86_400 * 365),
          });
        else {
          // A request captured more than 5 minutes ago, replayed as captured, re-dated to now with its old
          // signature, or with its body swapped under the captured headers.
          const captured = sign(body, { timestamp: nowSec() - 301 - randomInt(0, 86_400) });
          const variant = Math.floor(i / 4) % 3;
          if (variant === 0) headers = captured;
          else if (variant === 1) headers = { ...captured, 'x-slack-request-timestamp': String(nowSec()) };
          else {
            headers = sign(body);
            sendBody = attackBody(Math.floor(i / 4) + 1);
          }
        }
        tried[kind]++;
        if ((await post(sendBody, headers)) === 200) acceptedStatus[kind]++;
      };
      const control = async () => {
        controls++;
        const body = slashCommand({ text: 'help', user: 'U0CONTROL', channel: INCIDENT });
        const res = await fetch(url, { method: 'POST', headers: sign(body), body });
        const text = await res.text();
        if (res.status === 200 && text.includes('What you can run here')) controlsAccepted++;
      };
      let i = 0;
      const jobs = (function* () {
        for (;;) {
          const k = i++;
          yield k;
        }
      })();
      const total = () => Object.values(tried).reduce((a, b) => a + b, 0);
      await pool(
        jobs,
        16,
        async (k) => {
          if (k % 100 === 50) await control();
          else await attack(k);
        },
        () => total() >= target || Date.now() > ctx.softDeadline,
      );
      await t.settle();
      const runs = await t.quell.store.listRuns({ requester: ATTACKER, limit: 100 });
      const audited = (await t.quell.store.listAudit()).filter((e) => e.actor === ATTACKER);
      reached = runs.length + audited.length;
      ctx.log(
        `${n(total())} attacks, ${controls} controls, ${t.quell.counters.rejectedTimestamps} refused on the timestamp`,
      );
    },
    report(cutOff) {
      const total = Object.values(tried).reduce((a, b) => a + b, 0);
      const accepted = Object.values(acceptedStatus).reduce((a, b) => a + b, 0) + reached;
      const split = (Object.keys(tried) as Kind[]).map((k) => `${k} ${n(tried[k])}`).join(', ');
      return [
        {
          goal: 'forged, stale, future-dated and replayed signatures: ≥ 10,000 tried against the HTTP receiver, 0 accepted',
          tried: `${n(total)} (${split})${cutOff ? ' — cut off at the deadline' : ''}`,
          result: `${accepted} accepted (HTTP 200 ${accepted - reached}, reached the handler or audit log ${reached}); controls ${controlsAccepted}/${controls} validly signed accepted`,
          pass: total >= GOAL && accepted === 0 && controls > 0 && controlsAccepted === controls,
        },
      ];
    },
  };
}
