/**
 * The break-glass CLI as a process against moto (behind a recording proxy that sees every AWS request):
 * the same grammar and plan as Slack, a y/N confirmation on a real terminal (util-linux `script` gives
 * the process a pseudo-terminal), `--yes` for scripts, sessions whose SourceIdentity is the operator as
 * their AWS credentials prove it (an IAM user in moto; `--as` is only a note), and the same audit log with the run marked as CLI and break-glass and owing a review.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { CreateAccessKeyCommand, CreateUserCommand, type IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('quell run: the break-glass CLI', () => {
  const accountId = randomAccountId();
  const dir = mkdtempSync(join(tmpdir(), 'quell-cli-'));
  const dbFile = join(dir, 'quell.db');
  const configFile = join(dir, 'quell.yaml');
  const outDir = mkdtempSync(join(tmpdir(), 'quell-cli-out-'));
  // The operator's working directory, where result files go without --out (never the repository).
  const workDir = mkdtempSync(join(tmpdir(), 'quell-cli-cwd-'));
  const bin = new URL('../../bin/quell.js', import.meta.url).pathname;
  let iam: IAMClient;
  let proxy: FaultProxy;
  let env: NodeJS.ProcessEnv;
  const keys: Record<string, string> = {};

  /** `quell <args>` as a process with stdin not a terminal. */
  const quell = (args: string[]) =>
    new Promise<Result>((resolve) => {
      execFile(process.execPath, [bin, ...args], { env, cwd: workDir }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      });
    });

  /** `quell <args>` on a pseudo-terminal, answering `answer` when the y/N question appears. */
  const quellOnTty = (args: string[], answer: string) =>
    new Promise<Result>((resolve, reject) => {
      const command = [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
      const child: ChildProcess = spawn('script', ['-qefc', command, '/dev/null'], {
        env,
        cwd: workDir,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.once('error', (error) =>
        reject(
          new Error(
            `could not run util-linux \`script\` to get a terminal (${error.message}); install util-linux`,
          ),
        ),
      );
      let stdout = '';
      let stderr = '';
      let answered = false;
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (!answered && stdout.includes('[y/N]')) {
          answered = true;
          child.stdin?.write(`${answer}\n`);
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        child.stdin?.end();
        resolve({ code, stdout, stderr });
      });
    });

  const store = async () => {
    const s = new SqliteStore(`sqlite:${dbFile}`);
    await s.migrate();
    return s;
  };

  beforeAll(async () => {
    iam = await adminIam(accountId);
    for (const name of ['alice', 'bob', 'carol', 'dave']) keys[name] = await createUserWithKey(iam, name);
    // The operator's own base credentials: an IAM user, which STS GetCallerIdentity names.
    await iam.send(new CreateUserCommand({ UserName: 'oncall-erin' }));
    const operatorKey = (await iam.send(new CreateAccessKeyCommand({ UserName: 'oncall-erin' }))).AccessKey;
    proxy = await startFaultProxy(inject('motoUrl'));
    const a = accountConfig('prod', accountId);
    writeFileSync(
      configFile,
      [
        'accounts:',
        `  - alias: ${a.alias}`,
        `    id: "${a.id}"`,
        `    roles: { read: ${a.roles.read}, respond: ${a.roles.respond} }`,
        'approvals:',
        '  approvers: [U0LEAD1]',
        '  runbooks:',
        '    disable-key: { required: 1 }',
        'channels: {}',
        'storage:',
        `  url: sqlite:${dbFile}`,
        '',
      ].join('\n'),
    );
    env = {
      ...process.env,
      QUELL_CONFIG: configFile,
      AWS_ENDPOINT_URL: proxy.url,
      AWS_ACCESS_KEY_ID: operatorKey?.AccessKeyId ?? '',
      AWS_SECRET_ACCESS_KEY: operatorKey?.SecretAccessKey ?? '',
      AWS_REGION: 'us-east-1',
      QUELL_LOG_LEVEL: 'silent',
    };
  });
  afterAll(async () => {
    await proxy?.close();
    iam?.destroy();
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  it('with --yes: prints the plan, runs break-glass as the proven operator, and audits it as CLI and break-glass', async () => {
    const result = await quell([
      'run',
      'disable-key',
      keys.alice ?? '',
      'reason=laptop stolen at the airport',
      '--as',
      'U0ONCALL',
      '--yes',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The same plan the Slack card shows.
    expect(result.stdout).toContain('disable-key: Disable an access key (mutating)');
    expect(result.stdout).toContain(`Disable ${keys.alice} of alice and revoke its sessions`);
    expect(result.stdout).toContain(
      `iam:UpdateAccessKey UserName=alice AccessKeyId=${keys.alice} Status=Inactive`,
    );
    expect(result.stdout).toMatch(/Reason\s+laptop stolen at the airport/);
    expect(result.stdout).toContain(
      `Acting as oncall-erin (arn:aws:iam::${accountId}:user/oncall-erin, from your AWS credentials); --as U0ONCALL is recorded as a note.`,
    );
    expect(result.stdout).toMatch(/Requested by\s+oncall-erin \(CLI\)/);
    expect(result.stdout).toContain('Break-glass: --yes given, running without approval.');
    expect(result.stdout).toMatch(/run r[a-z2-7]{12}: succeeded/);
    expect(result.stdout).toContain('a review by an approver is owed (pending)');
    expect(await keyStatus(iam, 'alice', keys.alice ?? '')).toBe('Inactive');

    const runId = /quell audit show --run (r[a-z2-7]{12})/.exec(result.stdout)?.[1] ?? '';
    const s = await store();
    try {
      const run = await s.getRun(runId);
      expect(run).toMatchObject({
        source: 'cli',
        channel: 'cli',
        requester: 'oncall-erin',
        breakGlass: true,
        reviewState: 'pending',
        state: 'succeeded',
        reason: 'laptop stolen at the airport',
      });
      const entries = await s.listAudit({ runId });
      const types = entries.map((e) => `${e.type}:${(e.data as { operation?: string }).operation ?? ''}`);
      expect(entries.find((e) => e.type === 'command.received')?.data).toMatchObject({
        source: 'cli',
        channel: 'cli',
        awsIdentity: `arn:aws:iam::${accountId}:user/oncall-erin`,
      });
      expect(entries.find((e) => e.type === 'run.confirmed')).toMatchObject({
        actor: 'oncall-erin',
        data: {
          source: 'cli',
          how: '--yes',
          breakGlass: true,
          osUser: userInfo().username,
          as: 'U0ONCALL',
          awsIdentity: `arn:aws:iam::${accountId}:user/oncall-erin`,
        },
      });
      expect(entries.find((e) => e.type === 'run.break_glass')?.data).toEqual({
        review: 'pending',
        source: 'cli',
      });
      expect(types.indexOf('run.confirmed:')).toBeLessThan(types.indexOf('aws.intent:UpdateAccessKey'));
      expect(types.indexOf('aws.intent:UpdateAccessKey')).toBeLessThan(
        types.indexOf('aws.call:UpdateAccessKey'),
      );
      expect(types).toContain('run.finished:');
    } finally {
      await s.close();
    }
    // The same sessions: quell-<run id>, the proven operator as SourceIdentity, quell's tags.
    const assumes = proxy.requests.filter(
      (r) => r.action === 'AssumeRole' && r.params.RoleSessionName === `quell-${runId}`,
    );
    expect(assumes.length).toBeGreaterThanOrEqual(2);
    for (const a of assumes) {
      expect(a.params.SourceIdentity).toBe('oncall-erin');
      expect(a.params.DurationSeconds).toBe('900');
      expect(a.params['Tags.member.1.Key']).toBe('quell-run-id');
      expect(a.params['Tags.member.1.Value']).toBe(runId);
    }
    expect(new Set(assumes.map((a) => a.params.RoleArn))).toEqual(
      new Set([`arn:aws:iam::${accountId}:role/quell-read`, `arn:aws:iam::${accountId}:role/quell-respond`]),
    );

    // quell audit show prints the run's entries, marked, after verifying the chain.
    const shown = await quell(['audit', 'show', '--run', runId]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(
      `run ${runId}: disable-key run by oncall-erin via CLI · break-glass, review pending · succeeded`,
    );
    expect(shown.stdout).toMatch(/command\.received by oncall-erin \[CLI\]/);
    expect(shown.stdout).toMatch(/run\.break_glass by oncall-erin \[CLI\] \[break-glass\]/);
    expect(shown.stdout).toMatch(
      new RegExp(`aws\\.call — iam:UpdateAccessKey account ${accountId} us-east-1 → ok`),
    );
    expect(shown.stdout).toMatch(/audit chain ok: \d+ entries/);
    const json = await quell(['audit', 'show', '--run', runId, '--json']);
    expect(
      (JSON.parse(json.stdout.slice(0, json.stdout.lastIndexOf(']') + 1)) as unknown[]).length,
    ).toBeGreaterThan(5);
    expect((await quell(['audit', 'verify'])).stdout).toMatch(/audit chain ok/);
  });

  it('without a terminal and without --yes: refuses to run, audits the cancellation, changes nothing', async () => {
    const result = await quell(['run', 'disable-key', keys.bob ?? '', '--as', 'U0ONCALL']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('stdin is not a terminal: give --yes to confirm it');
    expect(result.stdout).toContain(`Disable ${keys.bob} of bob`);
    expect(result.stdout).toContain('Cancelled: nothing was run.');
    expect(await keyStatus(iam, 'bob', keys.bob ?? '')).toBe('Active');
    const s = await store();
    try {
      const [run] = await s.listRuns({ requester: 'oncall-erin', limit: 1 });
      expect(run?.state).toBe('denied');
      const entries = await s.listAudit({ runId: run?.id ?? '' });
      expect(entries.map((e) => e.type)).toContain('run.cancelled');
      expect(entries.filter((e) => e.type === 'aws.intent')).toHaveLength(0);
    } finally {
      await s.close();
    }
  });

  it('on a terminal: N cancels, y runs as the AWS identity (the OS user is a note)', async () => {
    const no = await quellOnTty(['run', 'disable-key', keys.carol ?? ''], 'n');
    expect(no.stdout).toContain('Run this now WITHOUT approval');
    expect(no.stdout).toContain('Cancelled: nothing was run.');
    expect(no.code).toBe(1);
    expect(await keyStatus(iam, 'carol', keys.carol ?? '')).toBe('Active');

    const yes = await quellOnTty(['run', 'disable-key', keys.carol ?? ''], 'y');
    expect(yes.stdout).toMatch(/run r[a-z2-7]{12}: succeeded/);
    expect(yes.code).toBe(0);
    expect(await keyStatus(iam, 'carol', keys.carol ?? '')).toBe('Inactive');
    const runId = /quell audit show --run (r[a-z2-7]{12})/.exec(yes.stdout)?.[1] ?? '';
    const os = userInfo().username;
    const assumes = proxy.requests.filter(
      (r) => r.action === 'AssumeRole' && r.params.RoleSessionName === `quell-${runId}`,
    );
    expect(assumes.length).toBeGreaterThan(0);
    expect(assumes.every((a) => a.params.SourceIdentity === 'oncall-erin')).toBe(true);
    const s = await store();
    try {
      expect((await s.getRun(runId))?.requester).toBe('oncall-erin');
      expect((await s.listAudit({ runId })).find((e) => e.type === 'run.confirmed')?.data).toMatchObject({
        how: 'prompt',
        osUser: os,
      });
    } finally {
      await s.close();
    }
  });

  it('runs read-only runbooks without asking, writing result files next to the operator', async () => {
    const result = await quell([
      'run',
      'key-age',
      'max-age=1',
      'max-unused=1',
      '--as',
      'U0ANALYST',
      '--out',
      outDir,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('[y/N]');
    expect(result.stdout).toContain('Read the credential report of prod');
    expect(result.stdout).toMatch(/run r[a-z2-7]{12}: succeeded/);
    // Keys created moments ago are younger than a day: nothing to report, and no file.
    expect(result.stdout).toContain('prod: no access key older than 1 days');
    expect(readdirSync(outDir)).toEqual([]);
    expect(existsSync(dbFile)).toBe(true);
  });

  it('answers bad input with the grammar error and usage, and exit code 2: 4 attempts, 0 runs', async () => {
    const s = await store();
    const before = (await s.listRuns({ limit: 100 })).length;
    await s.close();
    const attempts = [
      await quell(['run', 'disable-key', 'AKIA123', '--yes']),
      await quell(['run', 'disabel-key', keys.dave ?? '', '--yes']),
      await quell(['run', 'disable-key', keys.dave ?? '', 'acount=prod', '--yes']),
      await quell(['run', 'disable-key', keys.dave ?? '', '--as', 'not a name!', '--yes']),
    ];
    expect(attempts.map((a) => a.code)).toEqual([2, 2, 2, 2]);
    expect(attempts[0]?.stderr).toContain('AKIA or ASIA followed by 16 characters');
    expect(attempts[0]?.stderr).toContain('usage: quell run disable-key AKIAXXXXXXXXXXXXXXXX');
    expect(attempts[1]?.stderr).toContain('Did you mean `disable-key`?');
    expect(attempts[2]?.stderr).toContain('unknown option `acount=`');
    expect(attempts[3]?.stderr).toContain('cannot be recorded as --as');
    const after = await store();
    expect((await after.listRuns({ limit: 100 })).length).toBe(before);
    await after.close();
    expect(await keyStatus(iam, 'dave', keys.dave ?? '')).toBe('Active');
    const unknown = await quell(['audit', 'show', '--run', 'rzzzzzzzzzzzz']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no audit entries for run rzzzzzzzzzzzz');
    expect(readFileSync(configFile, 'utf8')).toContain('channels: {}');
  });
});
