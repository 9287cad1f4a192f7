/**
 * `npm start` / `./run start` as a process: without tokens it says exactly what to set and where Slack
 * shows it; with an invalid file it lists every problem; with tokens it serves /healthz and stops cleanly.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.ts';
import { SIGNING_SECRET } from '../support/slack-requests.ts';
import { BOT_TOKEN } from '../support/test-quell.ts';

const dir = mkdtempSync(join(tmpdir(), 'quell-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startProcess(env: Record<string, string>, cwd?: string) {
  const child = spawn(process.execPath, [resolve('src/main.ts')], {
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

const config = (mode: 'socket' | 'http') => `
slack: { mode: ${mode} }
accounts:
  - alias: prod
    id: "111111111111"
    roles:
      read: arn:aws:iam::111111111111:role/quell-read
      respond: arn:aws:iam::111111111111:role/quell-respond
channels:
  C0INCIDENT: { runbooks: ["*"], accounts: ["*"] }
storage: { url: "sqlite:${join(dir, 'quell.db')}" }
`;

/** The messages that say which token is missing and where Slack shows it. */
function expectTokenHelp(stderr: string) {
  expect(stderr).toContain('Set SLACK_BOT_TOKEN');
  expect(stderr).toContain('OAuth & Permissions');
  expect(stderr).toContain('Set SLACK_APP_TOKEN');
  expect(stderr).toContain('App-Level Tokens');
}

describe('starting the bot', () => {
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
    expect(p.output().stdout).not.toContain('quell console');
  });

  // Without QUELL_CONFIG and tokens, ./run start opens the local console (console-browser.test.ts);
  // a quell.yaml in the directory or NODE_ENV=production keep the bot failing closed instead.
  it('without tokens but with a ./quell.yaml, fails closed as the bot (no console)', async () => {
    const cwd = join(dir, 'with-yaml');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'quell.yaml'), config('socket'));
    const p = startProcess({}, cwd);
    expect(await p.exited).toBe(1);
    expectTokenHelp(p.output().stderr);
    expect(p.output().stdout).not.toContain('quell console');
  });

  it('without tokens and without a config but with NODE_ENV=production, fails closed (no console)', async () => {
    const cwd = join(dir, 'production');
    mkdirSync(cwd, { recursive: true });
    const p = startProcess({ NODE_ENV: 'production' }, cwd);
    expect(await p.exited).toBe(1);
    expectTokenHelp(p.output().stderr);
    expect(p.output().stdout).not.toContain('quell console');
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
    const path = join(dir, 'http.yaml');
    writeFileSync(path, config('http'));
    const port = await freePort();
    const p = startProcess({
      QUELL_CONFIG: path,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      PORT: String(port),
    });
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      try {
        healthy = (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(healthy).toBe(true);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const { stdout, stderr } = p.output();
    expect(stdout).toContain('quell started');
    expect(stdout + stderr).not.toContain(BOT_TOKEN);
    expect(stdout + stderr).not.toContain(SIGNING_SECRET);
  });
});
