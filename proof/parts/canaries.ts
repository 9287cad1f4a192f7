/**
 * Secret canaries. Planted: the bot token and signing secret the in-process quells use; a second bot
 * token and signing secret loaded by a replica process from Secrets Manager (`*_SECRET_ARN`, in moto); the
 * AWS secret access key every client signs with; the PostgreSQL password; and the value of a Secrets
 * Manager secret that `rotate-secret` plans on. Everything quell wrote in every part — log lines (in
 * process and replica output), every Slack call, every audit entry, CLI output — was handed to the scanner
 * as it went; here one more replica runs disable-key and rotate-secret with the Secrets Manager canaries,
 * and its files (the SQLite database, the config directory) are scanned byte for byte.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IAMClient } from '@aws-sdk/client-iam';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { openStore } from '../../src/open-store.ts';
import {
  accountConfig,
  adminCredentials,
  createUserWithKey,
  randomAccountId,
} from '../../tests/support/aws-fixtures.ts';
import { startFakeSlack } from '../../tests/support/fake-slack.ts';
import { startReplicaProcess } from '../../tests/support/replica-process.ts';
import { buttonClick, postSigned, slashCommand } from '../../tests/support/slack-requests.ts';
import { n, type Part, sleep, waitUntil } from '../support/part.ts';

const INCIDENT = 'C0INCIDENT';

export function canaryPart(awsSecretCanary: string): Part {
  let tally: ReturnType<import('../support/canaries.ts').CanaryScanner['tally']> | undefined;
  let flows = 0;
  return {
    name: 'canaries',
    budgetSeconds: 60,
    async run(ctx) {
      const botToken = `xoxb-${randomBytes(12).toString('hex')}-proofcanary`;
      const signing = randomBytes(16).toString('hex');
      const secretValue = `proof-canary-secret-value-${randomBytes(12).toString('hex')}`;
      ctx.canaries.plant('bot token (Secrets Manager)', botToken);
      ctx.canaries.plant('signing secret (Secrets Manager)', signing);
      const accountId = randomAccountId();
      const creds = await adminCredentials(accountId);
      const sm = new SecretsManagerClient({
        region: 'us-east-1',
        endpoint: ctx.servers.motoUrl,
        credentials: creds,
      });
      const iam = new IAMClient({ region: 'us-east-1', endpoint: ctx.servers.motoUrl, credentials: creds });
      // quell's own secrets live where its base credentials reach (moto's default account); the secret
      // it rotates lives in the account it assumes a role in.
      const smBase = new SecretsManagerClient({ region: 'us-east-1', endpoint: ctx.servers.motoUrl });
      const mk = async (client: SecretsManagerClient, name: string, value: string) =>
        (
          await client.send(
            new CreateSecretCommand({
              Name: `${name}-${randomBytes(3).toString('hex')}`,
              SecretString: value,
            }),
          )
        ).ARN ?? '';
      const tokenArn = await mk(smBase, 'quell-bot-token', botToken);
      const signingArn = await mk(smBase, 'quell-signing', signing);
      smBase.destroy();
      const target = await mk(sm, 'app-db-password', secretValue);
      ctx.canaries.plant('Secrets Manager secret value', secretValue);
      const slack = await startFakeSlack();
      const dir = join(tmpdir(), `quell-proof-canary-${randomBytes(4).toString('hex')}`);
      const replica = await startReplicaProcess('canary', {
        config: {
          slack: { mode: 'http', auditChannel: 'C0AUDIT' },
          accounts: [accountConfig('prod', accountId)],
          approvals: { approvers: ['U0LEAD1', 'U0LEAD2'], expiresIn: '15m' },
          channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
          storage: { url: `sqlite:${dir}.db` },
        },
        env: {
          SLACK_BOT_TOKEN: '',
          SLACK_SIGNING_SECRET: '',
          SLACK_BOT_TOKEN_SECRET_ARN: tokenArn,
          SLACK_SIGNING_SECRET_SECRET_ARN: signingArn,
          SLACK_API_URL: slack.apiUrl,
          AWS_ENDPOINT_URL: ctx.servers.motoUrl,
          AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
          AWS_SECRET_ACCESS_KEY: awsSecretCanary,
          QUELL_LOG_LEVEL: 'debug',
        },
      });
      const store = await openStore(`sqlite:${dir}.db`);
      ctx.onCleanup(async () => {
        await replica.stop();
        await store.close();
        await slack.close();
        sm.destroy();
        iam.destroy();
      });
      const send = (body: string) => postSigned(replica.baseUrl, body, { secret: signing });
      for (const [i, text] of [
        `disable-key ${await createUserWithKey(iam, 'canary-user')} reason="canary"`,
        `rotate-secret ${target}`,
      ].entries()) {
        const user = `U0CAN${i}`;
        await send(slashCommand({ text, user, channel: INCIDENT }));
        const run = await waitUntil(
          'a run or a refusal',
          async () => {
            const [r] = await store.listRuns({ requester: user, limit: 1 });
            if (r && r.state !== 'planning') return r;
            await sleep(200);
            return undefined;
          },
          20_000,
        ).catch(() => undefined);
        if (run?.state === 'awaiting_approval')
          await send(
            buttonClick({ actionId: 'quell_approve', value: run.id, user: 'U0LEAD1', channel: INCIDENT }),
          );
        flows++;
      }
      await sleep(3_000);
      ctx.canaries.scan('logs', replica.output());
      ctx.canaries.scan('slack', JSON.stringify(slack.calls) + JSON.stringify(slack.responses));
      ctx.canaries.scan('audit', JSON.stringify(await store.listAudit()));
      for (const f of readdirSync(tmpdir()).filter((name) => `${tmpdir()}/${name}`.startsWith(dir))) {
        ctx.canaries.scan('files', readFileSync(join(tmpdir(), f)).toString('latin1'));
      }
      tally = ctx.canaries.tally();
    },
    report() {
      const scanned = tally
        ? Object.entries(tally.scanned)
            .map(([k, v]) => `${k} ${n(Math.round(v / 1024))} kB`)
            .join(', ')
        : 'nothing';
      const leaks = tally?.leaks ?? [];
      return [
        {
          goal: 'secret canaries (tokens, signing secret, credentials, secret values) in logs, Slack, audit, files: 0',
          tried: `${tally?.canaries.length ?? 0} canaries over every part (${scanned}); ${flows} extra commands with secrets from Secrets Manager`,
          result: `${leaks.length} found${leaks.length ? ` (${[...new Set(leaks.map((l) => `${l.canary} in ${l.where}`))].join('; ')})` : ''}`,
          pass: tally !== undefined && leaks.length === 0 && (tally.scanned.files ?? 0) > 0,
        },
      ];
    },
  };
}
