/**
 * The local console as a new user meets it: `node src/main.ts` with no Slack tokens and no quell.yaml,
 * as a process, starts the console and its rehearsal world (its own moto_server). Headless Chromium
 * (Debian's `chromium`, driven by playwright-core; no browser is downloaded) types a command as the
 * responder, sees the approval card, approves as a lead, and the seeded key is Inactive in the console's
 * moto. The console refuses requests without its login token or cookie and with a foreign Host header,
 * and listens on 127.0.0.1 only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IAMClient, ListAccessKeysCommand, ListUsersCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts');
const MAIN = resolve('src/main.ts');

interface Started {
  child: ChildProcess;
  loginUrl: string;
  baseUrl: string;
  port: number;
  motoUrl: string;
  keyId: string;
  output: () => string;
}

/** Starts `node src/main.ts` in an empty directory without any Slack variable; waits for its banner. */
async function startConsoleProcess(cwd: string): Promise<Started> {
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, QUELL_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const deadline = Date.now() + 45_000;
  for (;;) {
    const login = /Open \(once; the link logs you in\): (http:\/\/127\.0\.0\.1:(\d+))\/\?token=\S+/.exec(out);
    const moto = /REHEARSAL \(moto at (http:\/\/127\.0\.0\.1:\d+)\)/.exec(out);
    const key = /Seeded leaked key: (AKIA[A-Z0-9]{16})/.exec(out);
    if (login && moto && key) {
      return {
        child,
        loginUrl: login[0].slice('Open (once; the link logs you in): '.length),
        baseUrl: login[1] ?? '',
        port: Number(login[2]),
        motoUrl: moto[1] ?? '',
        keyId: key[1] ?? '',
        output: () => out,
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the console did not start (needs moto_server on PATH):\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A raw GET with a chosen Host header (fetch does not let a caller set Host). */
function getWithHost(port: number, host: string, path = '/'): Promise<number> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.end();
  });
}

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

async function keyStatus(
  motoUrl: string,
  keyId: string,
  user: RegExp = /^ci-deploy$/,
): Promise<string | undefined> {
  const credentials = { accessKeyId: 'rehearsal', secretAccessKey: 'rehearsal' };
  const sts = new STSClient({ region: 'us-east-1', endpoint: motoUrl, credentials });
  const assumed = await sts.send(
    new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::111111111111:role/test-admin', RoleSessionName: 'test' }),
  );
  sts.destroy();
  const c = assumed.Credentials;
  const iam = new IAMClient({
    region: 'us-east-1',
    endpoint: motoUrl,
    credentials: {
      accessKeyId: c?.AccessKeyId ?? '',
      secretAccessKey: c?.SecretAccessKey ?? '',
      sessionToken: c?.SessionToken ?? '',
    },
  });
  const users = await iam.send(new ListUsersCommand({}));
  const userName = users.Users?.map((u) => u.UserName ?? '').find((name) => user.test(name));
  const keys = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  iam.destroy();
  return keys.AccessKeyMetadata?.find((k) => k.AccessKeyId === keyId)?.Status;
}

describe('the local console', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quell-console-test-'));
  let started: Started;
  let context: BrowserContext | undefined;
  let page: Page | undefined;

  beforeAll(async () => {
    started = await startConsoleProcess(dir);
  });
  afterAll(async () => {
    await context?.close();
    if (started && started.child.exitCode === null) {
      const exited = new Promise((r) => started.child.once('exit', r));
      started.child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('in Chromium: a command as the responder, the card, approval by a lead, the key Inactive in moto', async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} not found: install Debian's chromium package (apt-get install -y chromium)`,
      );
    expect(await keyStatus(started.motoUrl, started.keyId)).toBe('Active');
    context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1400, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    const p = page;
    await p.goto(started.loginUrl);
    // The login token became a cookie and the URL no longer carries it.
    expect(p.url()).toBe(`${started.baseUrl}/`);
    await expect.poll(() => p.textContent('#banner')).toContain('REHEARSAL (moto at');
    expect(await p.textContent('aside')).toContain('SLACK_BOT_TOKEN');
    expect(await p.inputValue('#user')).toBe('U0RESP');

    await p.fill('#text', `/quell disable-key ${started.keyId} reason="key found in a public repo"`);
    await p.press('#text', 'Enter');
    const approve = p.locator('#feed button[data-action-id="quell_approve"]');
    await approve.first().waitFor({ timeout: 30_000 });
    const card = await approve.first().locator('xpath=ancestor::div[contains(@class, "entry")]').innerText();
    expect(card).toContain(started.keyId);
    expect(card).toContain('ci-deploy');
    expect(card).toContain('key found in a public repo');
    expect(await keyStatus(started.motoUrl, started.keyId)).toBe('Active');

    // The requester may not approve their own run: switch to a lead and click Approve there.
    await p.selectOption('#user', 'U0LEAD1');
    await approve.first().click();
    if (await p.locator('#confirm').isVisible()) await p.click('#confirm [data-confirm-yes]');
    await expect
      .poll(() => p.locator('#feed').innerText(), { timeout: 30_000, interval: 300 })
      .toContain('Succeeded');
    expect(await keyStatus(started.motoUrl, started.keyId)).toBe('Inactive');

    mkdirSync(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTIFACTS, 'console-disable-key.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'console-disable-key.png'))).toBe(true);
  });

  it('refuses requests without the token or cookie, with a foreign Host, and listens on 127.0.0.1 only', async () => {
    const { baseUrl, port, loginUrl } = started;
    // No cookie: the page, the state and the command endpoint all refuse.
    expect((await fetch(`${baseUrl}/`)).status).toBe(401);
    expect((await fetch(`${baseUrl}/api/state?user=U0RESP&channel=C0INCIDENT`)).status).toBe(401);
    const typed = await fetch(`${baseUrl}/api/command`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'U0RESP', channel: 'C0INCIDENT', text: '/quell help' }),
    });
    expect(typed.status).toBe(401);
    // A wrong token, and the real one a second time (the browser test used it), are refused too.
    expect((await fetch(`${baseUrl}/?token=not-the-token`, { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(loginUrl, { redirect: 'manual' })).status).toBe(401);
    // DNS rebinding: a name that resolves to 127.0.0.1 still carries its own Host header.
    const path = new URL(loginUrl).pathname + new URL(loginUrl).search;
    expect(await getWithHost(port, `evil.example:${port}`, path)).toBe(403);
    expect(await getWithHost(port, 'evil.example', '/')).toBe(403);
    expect(await getWithHost(port, `127.0.0.1:${port}`, '/')).toBe(401);

    // Listening on loopback only: every other address of this machine refuses the connection.
    expect(await accepts('127.0.0.1', port)).toBe(true);
    const others = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a?.address ?? '');
    for (const address of others)
      expect({ address, accepted: await accepts(address, port) }).toEqual({
        address,
        accepted: false,
      });
  });
  it('a game day: the alert, evidence and containment by the team, then a scorecard; a missed step is named', async () => {
    const p = page;
    if (!p) throw new Error('the browser test above did not open the page');
    await p.selectOption('#user', 'U0RESP');
    const say = async (text: string) => {
      await p.fill('#text', text);
      await p.press('#text', 'Enter');
    };
    const feed = () => p.locator('#feed').innerText();
    await say('/quell gameday leaked-key');
    await expect.poll(feed, { timeout: 30_000 }).toContain('Game day: Leaked access key');
    const keyId = /Access key (AKIA[A-Z0-9]{16}) of IAM user/.exec(await feed())?.[1];
    if (!keyId) throw new Error(`no key in the alert: ${await feed()}`);
    await say(`/quell trail key=${keyId} since=2h`);
    await expect.poll(feed, { timeout: 30_000 }).toContain(`where AccessKeyId = ${keyId} in 2 regions`);
    await say(`/quell disable-key ${keyId} reason="game day"`);
    const approve = p.locator('#feed button[data-action-id="quell_approve"]');
    await expect.poll(() => approve.count(), { timeout: 30_000 }).toBe(1);
    await p.selectOption('#user', 'U0LEAD2');
    await approve.first().click();
    if (await p.locator('#confirm').isVisible()) await p.click('#confirm [data-confirm-yes]');
    await expect
      .poll(feed, { timeout: 30_000, interval: 300 })
      .toContain('Game day scorecard: Leaked access key');
    const scorecard = await p
      .locator('#feed .message', { hasText: 'Game day scorecard: Leaked access key' })
      .innerText();
    expect(scorecard).toContain('Time to first command');
    expect(scorecard).toContain('Time to approval');
    expect(scorecard).toContain('Time to contained (verified)');
    expect(scorecard).toContain('Every expected step was taken');
    expect(scorecard).not.toContain('not reached');
    expect(scorecard).not.toContain('missed');
    expect(await keyStatus(started.motoUrl, keyId, /^build-bot-/)).toBe('Inactive');
    mkdirSync(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTIFACTS, 'console-game-day.png'), fullPage: true });

    // A game day ended before anything was done: every step is missed, nothing was reached.
    await p.selectOption('#user', 'U0RESP');
    await say('/quell gameday exposed-instance');
    await expect.poll(feed, { timeout: 30_000 }).toContain('Game day: Exposed instance');
    await say('/quell gameday end');
    await expect.poll(feed, { timeout: 30_000 }).toContain('Game day scorecard: Exposed instance');
    const missed = await p
      .locator('#feed .message', { hasText: 'Game day scorecard: Exposed instance' })
      .innerText();
    expect(missed).toContain('Steps missed: evidence, contain');
    expect(missed).toContain('ended by hand');
    expect(missed.match(/not reached/g)?.length).toBe(3);
  });
});
