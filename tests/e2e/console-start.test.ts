/**
 * Which AWS the console says it talks to, as a process: without moto_server on PATH and without a
 * configured account it still starts and says that AWS calls will fail and how to fix it; with
 * QUELL_CONSOLE_CONFIG it says REAL ACCOUNT and the account id. The generated Slack secrets are never
 * printed. (The rehearsal world with moto is covered by console-browser.test.ts.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'quell-console-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** PATH with node's folder and the system's, but not the folder moto_server is in. */
const PATH_WITHOUT_MOTO = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');

async function startUntilBanner(env: Record<string, string>) {
  const child = spawn(process.execPath, [resolve('src/main.ts')], {
    cwd: dir,
    env: { PATH: PATH_WITHOUT_MOTO, HOME: dir, QUELL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  while (!/\?token=\S+/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the console did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const login = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=\S+/.exec(out);
  return { child, exited, output: () => out, baseUrl: login?.[1] ?? '', loginUrl: login?.[0] ?? '' };
}

describe('the console says which AWS it talks to', () => {
  it('without moto_server and without an account: starts, says AWS calls will fail and how to fix it', async () => {
    const p = await startUntilBanner({});
    // The page says it too, behind the login.
    const login = await fetch(p.loginUrl, { redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(login.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
    const page = await (await fetch(`${p.baseUrl}/`, { headers: { cookie } })).text();
    expect(page).toContain('NO AWS: every AWS call will fail');
    expect(page).toContain('pip install &quot;moto[server]&quot;');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    const out = p.output();
    expect(out).toContain('AWS: NONE (moto_server is not on PATH): every AWS call will fail.');
    expect(out).toContain('Fix: pip install "moto[server]"');
    expect(out).not.toMatch(/xoxb-console-[0-9a-f]/);
  });

  it('with QUELL_CONSOLE_CONFIG: REAL ACCOUNT and its id, the config file’s approvers as people', async () => {
    const path = join(dir, 'real.yaml');
    writeFileSync(
      path,
      `slack: { mode: socket }
accounts:
  - alias: prod
    id: "222233334444"
    roles:
      read: arn:aws:iam::222233334444:role/quell-read
      respond: arn:aws:iam::222233334444:role/quell-respond
approvals: { approvers: [U0BOSS] }
channels:
  C0SEC: { runbooks: ["*"], accounts: ["*"] }
storage: { url: "sqlite:${join(dir, 'real.db')}" }
`,
    );
    const p = await startUntilBanner({ QUELL_CONSOLE_CONFIG: path });
    const login = await fetch(p.loginUrl, { redirect: 'manual' });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const page = await (await fetch(`${p.baseUrl}/`, { headers: { cookie } })).text();
    expect(page).toContain('REAL ACCOUNT 222233334444');
    expect(page).toContain('<option value="U0BOSS">');
    expect(page).toContain('data-channel="C0SEC"');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.output()).toContain('AWS: REAL ACCOUNT 222233334444: runbooks change it for real.');
  });
});
