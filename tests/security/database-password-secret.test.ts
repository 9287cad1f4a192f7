/**
 * The PostgreSQL password from Secrets Manager (PGPASSWORD_SECRET_ARN) instead of the environment,
 * against moto's Secrets Manager and the run's PostgreSQL cluster (password authentication, SCRAM): the
 * store logs in with the password read from the secret (and cannot without it), picks up a rotated
 * password without a restart, and the bot started with every secret from Secrets Manager serves
 * /healthz from the database and writes none of them to its output.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { databasePasswordFrom } from '../../src/aws/load-secrets.ts';
import { SecretMissingError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { openStore } from '../../src/open-store.ts';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { startFakeSlack } from '../support/fake-slack.ts';
import { freePort } from '../support/free-port.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { SIGNING_SECRET } from '../support/slack-requests.ts';
import { BOT_TOKEN } from '../support/test-quell.ts';

async function asSuperuser(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('postgresUrl'), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('PGPASSWORD_SECRET_ARN: the database password comes from Secrets Manager', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quell-pgsm-'));
  const suffix = randomBytes(4).toString('hex');
  const role = `quell_sm_${suffix}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const sm = new SecretsManagerClient({ region: 'us-east-1' });
  let db: TestDatabase;
  /** The database URL as a config file holds it: this role, no password. */
  let url: string;
  let secretArn: string;

  const createSecret = async (name: string, value: string) => {
    const out = await sm.send(new CreateSecretCommand({ Name: `${name}-${suffix}`, SecretString: value }));
    if (!out.ARN) throw new Error('moto gave no ARN');
    return out.ARN;
  };

  beforeAll(async () => {
    // The worker's own environment must not hand the driver a password.
    delete process.env.PGPASSWORD;
    delete process.env.PGPASSWORD_SECRET_ARN;
    db = await createTestDatabase('pgsm');
    await asSuperuser(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await asSuperuser(`ALTER DATABASE ${db.name} OWNER TO ${role}`);
    const parsed = new URL(db.urlWithoutPassword);
    parsed.username = role;
    url = parsed.toString();
    // The shape RDS keeps and its rotation functions update.
    secretArn = await createSecret(
      'quell/db',
      JSON.stringify({ engine: 'postgres', username: role, password, host: parsed.hostname }),
    );
  });
  afterAll(async () => {
    await db?.drop();
    await asSuperuser(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    sm.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the store logs in with the password read from the secret, and not without it', async () => {
    const store = await openStore(url, { env: { PGPASSWORD_SECRET_ARN: secretArn } });
    try {
      expect(await store.listRuns({ limit: 1 })).toEqual([]);
      await new AuditLog(store, createLogger({ level: 'silent' })).record({ type: 'command.received' });
      expect((await store.listAudit()).map((e) => e.type)).toEqual(['command.received']);
    } finally {
      await store.close();
    }
    // The same URL with a secret holding another password: the server refuses the login.
    const wrong = await createSecret('quell/db-wrong', JSON.stringify({ password: 'not-the-password' }));
    await expect(openStore(url, { env: { PGPASSWORD_SECRET_ARN: wrong } })).rejects.toThrow(
      /database refused/,
    );
    // A plain-text secret (not JSON) works too.
    const plain = await createSecret('quell/db-plain', password);
    const again = await openStore(url, { env: { PGPASSWORD_SECRET_ARN: plain } });
    await again.close();
  });

  it('an unreadable or malformed secret stops the start with the variable named and no value', async () => {
    const missing = secretArn.replace(/quell\/db-[0-9a-f]+/, 'quell/nothing-here');
    const attempts = [
      openStore(url, { env: { PGPASSWORD_SECRET_ARN: missing } }),
      openStore(url, { env: { PGPASSWORD_SECRET_ARN: 'quell/db' } }),
    ];
    const errors = await Promise.all(
      attempts.map((a) =>
        a.then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    for (const error of errors) {
      expect(error).toBeInstanceOf(SecretMissingError);
      expect((error as Error).message).toContain('PGPASSWORD_SECRET_ARN');
      expect((error as Error).message).not.toContain(password);
    }
    expect((errors[0] as Error).message).toContain('secretsmanager:GetSecretValue');
  });

  it('a rotated password is read again once the cached one has aged, without a restart', async () => {
    const rotating = await createSecret('quell/db-rotating', JSON.stringify({ password }));
    let now = 1_000_000;
    const source = databasePasswordFrom(
      { PGPASSWORD_SECRET_ARN: rotating },
      { refreshMs: 60_000, now: () => now },
    );
    if (!source) throw new Error('no password source');
    expect(await source()).toBe(password);

    const rotated = `pw-${randomBytes(12).toString('hex')}`;
    await asSuperuser(`ALTER ROLE ${role} PASSWORD '${rotated}'`);
    await sm.send(
      new PutSecretValueCommand({ SecretId: rotating, SecretString: JSON.stringify({ password: rotated }) }),
    );
    try {
      // Within the cache time the old password is still used: a new connection is refused.
      const early = new PostgresStore(url, { password: source });
      await expect(early.listRuns({ limit: 1 })).rejects.toThrow();
      await early.close();
      now += 60_001;
      const late = new PostgresStore(url, { password: source });
      try {
        expect(await late.listRuns({ limit: 1 })).toEqual([]);
      } finally {
        await late.close();
      }
    } finally {
      await asSuperuser(`ALTER ROLE ${role} PASSWORD '${password}'`);
    }
  });

  it('the bot starts with every secret from Secrets Manager, serves /healthz from the database, and logs none', async () => {
    const bot = await createSecret('quell/slack-bot', JSON.stringify({ SLACK_BOT_TOKEN: BOT_TOKEN }));
    const signing = await createSecret('quell/slack-signing', SIGNING_SECRET);
    const config = join(dir, 'quell.yaml');
    writeFileSync(
      config,
      [
        'slack: { mode: http }',
        'accounts:',
        '  - alias: prod',
        '    id: "111111111111"',
        '    roles:',
        '      read: arn:aws:iam::111111111111:role/quell-read',
        '      respond: arn:aws:iam::111111111111:role/quell-respond',
        `storage: { url: "${url}" }`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    // The bot checks its token with Slack's auth.test before it starts.
    const slack = await startFakeSlack();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      QUELL_CONFIG: config,
      SLACK_API_URL: slack.apiUrl,
      QUELL_LOG_LEVEL: 'debug',
      PORT: String(port),
      AWS_ENDPOINT_URL: inject('motoUrl'),
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      SLACK_BOT_TOKEN_SECRET_ARN: bot,
      SLACK_SIGNING_SECRET_SECRET_ARN: signing,
      PGPASSWORD_SECRET_ARN: secretArn,
    };
    const child = spawn(process.execPath, ['src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      let status = 0;
      for (let i = 0; i < 150 && status !== 200; i++) {
        try {
          status = (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
      await slack.close();
    }
    expect(output).toContain('quell started');
    for (const secret of [password, BOT_TOKEN, SIGNING_SECRET]) expect(output).not.toContain(secret);

    // The CLI reads it the same way: audit verify against the bot's database.
    const verify = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['bin/quell.js', 'audit', 'verify', '--db', url], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      p.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      p.on('exit', (code) => resolve({ code, out }));
    });
    expect(verify.out).toMatch(/audit chain ok: \d+ entries/);
    expect(verify.code).toBe(0);
    expect(verify.out).not.toContain(password);
  });
});
