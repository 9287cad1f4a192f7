/**
 * A throwaway PostgreSQL 15 cluster for one test run: `initdb` into a temporary directory and `pg_ctl
 * start` on a free loopback port, with password (SCRAM) authentication and no Unix socket, stopped and
 * deleted at teardown. Debian's server package puts the binaries outside PATH, in
 * /usr/lib/postgresql/15/bin; QUELL_PG_BIN overrides that. initdb refuses to run as root, so as root the
 * cluster runs as the `postgres` user the package creates (or `nobody` when there is none).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

/** A running cluster: the superuser's URL (database `postgres`) and how to stop it. */
export interface PostgresCluster {
  /** `postgres://quell:<password>@127.0.0.1:<port>/postgres` */
  url: string;
  user: string;
  password: string;
  port: number;
  stop(): Promise<void>;
}

const DEFAULT_BIN = '/usr/lib/postgresql/15/bin';

/** Where the server binaries are, or a message saying what to install. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string {
  const bin = env.QUELL_PG_BIN ?? DEFAULT_BIN;
  if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  throw new Error(
    `PostgreSQL 15 server binaries not found in ${bin} (initdb, pg_ctl). The tests start a throwaway cluster for the PostgreSQL store: install Debian's server package (apt-get install postgresql-15), or set QUELL_PG_BIN to the directory that holds initdb and pg_ctl.`,
  );
}

/** The unprivileged account to run the cluster as when we are root (initdb refuses root). */
function clusterAccount(): { uid: number; gid: number; name: string } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const name of ['postgres', 'nobody']) {
    const line = passwd.find((l) => l.startsWith(`${name}:`));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid), name };
  }
  throw new Error(
    'Running as root, and neither a `postgres` nor a `nobody` user exists to run the test cluster as (initdb refuses root). Install postgresql-15, which creates `postgres`.',
  );
}

/** Runs a PostgreSQL binary to completion (bounded), as the cluster's account. */
function runBinary(
  bin: string,
  args: string[],
  account: ReturnType<typeof clusterAccount>,
  cwd: string,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(bin, args[0] ?? ''), args.slice(1), {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
      ...(account ? { uid: account.uid, gid: account.gid } : {}),
    });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => {
      output = (output + c.toString()).slice(-4000);
    });
    child.stderr?.on('data', (c: Buffer) => {
      output = (output + c.toString()).slice(-4000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args[0]} did not finish within ${timeoutMs} ms: ${output}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${args[0]}: ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${args[0]} exited with ${code}: ${output}`));
    });
  });
}

/** Initialises and starts a cluster; every wait is bounded. */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  const account = clusterAccount();
  const dir = mkdtempSync(join(tmpdir(), 'quell-pg-'));
  const data = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const user = 'quell';
  writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
  if (account) {
    chownSync(dir, account.uid, account.gid);
    chownSync(join(dir, 'pwfile'), account.uid, account.gid);
  }
  const port = await freePort();
  try {
    await runBinary(
      bin,
      [
        'initdb',
        '-D',
        data,
        '-U',
        user,
        `--pwfile=${join(dir, 'pwfile')}`,
        '--auth=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ],
      account,
      dir,
      60_000,
    );
    // Loopback only, no Unix socket (its default directory belongs to the system's cluster), fsync off
    // (a throwaway cluster), and enough connections for several replicas in parallel test files.
    const options = `-p ${port} -h 127.0.0.1 -k '' -F -c max_connections=300 -c shared_buffers=32MB`;
    await runBinary(
      bin,
      ['pg_ctl', 'start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o', options],
      account,
      dir,
      40_000,
    );
  } catch (error) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start the test PostgreSQL cluster: ${(error as Error).message}\n${log}`);
  }
  return {
    url: `postgres://${user}:${password}@127.0.0.1:${port}/postgres`,
    user,
    password,
    port,
    async stop() {
      await runBinary(
        bin,
        ['pg_ctl', 'stop', '-D', data, '-m', 'immediate', '-w', '-t', '20'],
        account,
        dir,
        30_000,
      )
        .catch(() => {
          // The server is gone or will not stop: kill it by the pid it wrote.
          const pidFile = join(data, 'postmaster.pid');
          if (!existsSync(pidFile)) return;
          const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
          if (pid > 0) process.kill(pid, 'SIGKILL');
        })
        .finally(() => rmSync(dir, { recursive: true, force: true }));
    },
  };
}
