/**
 * `npm start` / `./run start` as a process: without tokens it says exactly what to set and where Slack
 * shows it; with an invalid file it lists every problem; with tokens it serves /healthz and stops cleanly;
 * a refused token or an unreachable Slack stops it with one readable line; and an idle bot has loaded no
 * AWS SDK client package until a run needs one.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { randomAccountId } from '../support/aws-fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../support/fake-slack.ts';
import { freePort } from '../support/free-port.ts';
import { postSigned, SIGNING_SECRET, slashCommand } from '../support/slack-requests.ts';
import { BOT_TOKEN } from '../support/test-quell.ts';

const dir = mkdtempSync(join(tmpdir(), 'quell-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startProcess(env: Record<string, string>, nodeArgs: string[] = [], cwd?: string) {
  const child = spawn(process.execPath, [...nodeArgs, resolve('src/main.ts')], {
    ...(cwd ? { cwd } : {}),
    env: { PATH: process.env.PATH ?? '', HOME: dir, QUELL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  exited.finally(() => clearTimeout(timer));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

const config = (mode: 'socket' | 'http', accountId = '111111111111') => `
slack: { mode: ${mode} }
accounts:
  - alias: prod
    id: "${accountId}"
    roles:
      read: arn:aws:iam::${accountId}:role/quell-read
      respond: arn:aws:iam::${accountId}:role/quell-respond
channels:
  C0INCIDENT: { runbooks: ["*"], accounts: ["*"] }
storage: { url: "sqlite:${join(dir, 'quell.db')}" }
`;

/** Polls /healthz until it answers 200 (bounded: 10 s); whether it did. */
async function waitHealthy(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** A start-up failure is one readable line: no stack frame, no secret. */
function expectReadableFailure(output: { stdout: string; stderr: string }) {
  const all = output.stdout + output.stderr;
  expect(output.stderr.trim().split('\n')).toHaveLength(1);
  expect(output.stderr).toMatch(/^quell could not start: /);
  expect(all).not.toMatch(/^\s+at /m);
  expect(all).not.toContain('Error:');
  expect(all).not.toContain(BOT_TOKEN);
  expect(all).not.toContain(SIGNING_SECRET);
}

/** The messages that say which token is missing and where Slack shows it. */
function expectTokenHelp(stderr: string) {
  expect(stderr).toContain('Set SLACK_BOT_TOKEN');
  expect(stderr).toContain('OAuth & Permissions');
  expect(stderr).toContain('Set SLACK_APP_TOKEN');
  expect(stderr).toContain('App-Level Tokens');
}

describe('starting the bot', () => {
  // Without QUELL_CONFIG and tokens, ./run start opens the local console (console-browser.test.ts);
  // a quell.yaml in the directory or NODE_ENV=production keep the bot failing closed instead.
  it('without tokens but with a ./quell.yaml, fails closed as the bot (no console)', async () => {
    const cwd = join(dir, 'with-yaml');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'quell.yaml'), config('socket'));
    const p = startProcess({}, [], cwd);
    expect(await p.exited).toBe(1);
    expectTokenHelp(p.output().stderr);
    expect(p.output().stdout).not.toContain('quell console');
  });

  it('without tokens and without a config but with NODE_ENV=production, fails closed (no console)', async () => {
    const cwd = join(dir, 'production');
    mkdirSync(cwd, { recursive: true });
    const p = startProcess({ NODE_ENV: 'production' }, [], cwd);
    expect(await p.exited).toBe(1);
    expectTokenHelp(p.output().stderr);
    expect(p.output().stdout).not.toContain('quell console');
  });

  let slack: FakeSlack;
  afterAll(() => slack?.close());

  it('without tokens, names each variable and where Slack shows it, and exits 1', async () => {
    const path = join(dir, 'socket.yaml');
    writeFileSync(path, config('socket'));
    const p = startProcess({ QUELL_CONFIG: path });
    expect(await p.exited).toBe(1);
    const { stderr } = p.output();
    expect(stderr).toContain('Set SLACK_BOT_TOKEN');
    expect(stderr).toContain('OAuth & Permissions');
    expect(stderr).toContain('Set SLACK_APP_TOKEN');
    expect(stderr).toContain('App-Level Tokens');
  });

  it('with an invalid file, lists every problem by path and line', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'slack:\n  mode: carrier-pigeon\naccounts: []\n');
    const p = startProcess({
      QUELL_CONFIG: path,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_APP_TOKEN: 'xapp-1-A0-1-abc',
    });
    expect(await p.exited).toBe(1);
    const { stderr } = p.output();
    expect(stderr).toContain('slack.mode (line 2)');
    expect(stderr).toContain('accounts (line 3): configure at least one account');
  });

  it('with tokens (http mode), serves /healthz and stops on SIGTERM without leaking them', async () => {
    slack ??= await startFakeSlack();
    const path = join(dir, 'http.yaml');
    writeFileSync(path, config('http'));
    const port = await freePort();
    const p = startProcess({
      QUELL_CONFIG: path,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      PORT: String(port),
    });
    expect(await waitHealthy(port)).toBe(true);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const { stdout, stderr } = p.output();
    expect(stdout).toContain('quell started');
    expect(stdout + stderr).not.toContain(BOT_TOKEN);
    expect(stdout + stderr).not.toContain(SIGNING_SECRET);
  });

  it('when Slack refuses the bot token (invalid_auth), says to check the token and exits 1', async () => {
    let authTests = 0;
    const refusing = createServer((req, res) => {
      if (req.url?.includes('auth.test')) authTests++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: false, error: 'invalid_auth' }));
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    try {
      const path = join(dir, 'refused.yaml');
      writeFileSync(path, config('http'));
      const p = startProcess({
        QUELL_CONFIG: path,
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_API_URL: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/api/`,
        PORT: String(await freePort()),
      });
      expect(await p.exited).toBe(1);
      const output = p.output();
      expect(output.stderr).toContain('Slack refused SLACK_BOT_TOKEN (invalid_auth)');
      expect(output.stderr).toContain('OAuth & Permissions');
      expect(output.stdout).not.toContain('quell started');
      expectReadableFailure(output);
      expect(authTests).toBe(1);
    } finally {
      await new Promise((resolve) => refusing.close(resolve));
    }
  });

  it('when Slack cannot be reached (closed port), names SLACK_API_URL and exits 1', async () => {
    const path = join(dir, 'unreachable.yaml');
    writeFileSync(path, config('http'));
    const closed = await freePort();
    const p = startProcess({
      QUELL_CONFIG: path,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: `http://127.0.0.1:${closed}/api/`,
      PORT: String(await freePort()),
    });
    expect(await p.exited).toBe(1);
    const output = p.output();
    expect(output.stderr).toContain(
      `Could not reach the Slack Web API at SLACK_API_URL (http://127.0.0.1:${closed}/api/) (ECONNREFUSED)`,
    );
    expect(output.stderr).toContain('check SLACK_API_URL');
    expect(output.stdout).not.toContain('quell started');
    expectReadableFailure(output);
  });

  it('loads no AWS SDK client package until a run needs one, then only that one', async () => {
    slack ??= await startFakeSlack();
    const path = join(dir, 'lazy.yaml');
    writeFileSync(path, config('http', randomAccountId()));
    const record = join(dir, 'packages.txt');
    const port = await freePort();
    const p = startProcess(
      {
        QUELL_CONFIG: path,
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_API_URL: slack.apiUrl,
        PORT: String(port),
        QUELL_RECORD_PACKAGES: record,
        AWS_ENDPOINT_URL: inject('motoUrl'),
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      ['--import', './tests/support/record-packages.ts'],
    );
    const loaded = () => (existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean) : []);
    const sdkClients = () => loaded().filter((name) => name.startsWith('@aws-sdk/client-'));
    try {
      expect(await waitHealthy(port)).toBe(true);
      // The hook saw the start: Bolt and the SQLite store's dependencies are there, no SDK client is.
      expect(loaded()).toContain('@slack/bolt');
      expect(sdkClients()).toEqual([]);

      const ack = await postSigned(
        `http://127.0.0.1:${port}`,
        slashCommand({
          text: 'isolate-vpc vpc-0123456789abcdef0 region=us-east-1',
          user: 'U0LAZY',
          channel: 'C0INCIDENT',
          responseUrl: `${slack.url}/response/U0LAZY`,
        }),
      );
      expect(ack.status).toBe(200);
      // Planning assumes the read role (STS) and describes the VPC (EC2), which moto does not know: the
      // failed plan is posted. Only those two clients were loaded.
      const mentionsVpc = (c: { body: unknown }) => JSON.stringify(c.body).includes('vpc-0123456789abcdef0');
      for (let i = 0; i < 200 && ![...slack.calls, ...slack.responses].some(mentionsVpc); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect([...slack.calls, ...slack.responses].some(mentionsVpc), p.output().stdout).toBe(true);
      expect(sdkClients().sort()).toEqual(['@aws-sdk/client-ec2', '@aws-sdk/client-sts']);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
});
