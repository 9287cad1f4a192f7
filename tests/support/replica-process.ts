/**
 * quell replicas as real processes (`node src/main.ts`, exactly what `npm start` runs), for tests that
 * kill one with SIGKILL: the config is a YAML file in a temporary directory, secrets and endpoints come
 * from the environment as in production, and readiness is `GET /healthz` answering 200.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './free-port.ts';
import { SIGNING_SECRET } from './slack-requests.ts';
import { BOT_TOKEN } from './test-quell.ts';

/** One running replica. */
export interface ReplicaProcess {
  name: string;
  baseUrl: string;
  pid: number;
  /** Whether the process has exited (killed or stopped). */
  exited(): boolean;
  /** Everything it wrote (JSON log lines on stdout, start-up problems on stderr). */
  output(): string;
  /** Kills it with SIGKILL (no shutdown code runs) and waits until it is gone. */
  kill9(): Promise<void>;
  /** Stops it with SIGTERM (graceful) and waits, bounded. */
  stop(): Promise<void>;
}

/** What every replica of one test shares: its config file and environment. */
export interface ReplicaSetup {
  config: Record<string, unknown>;
  env: Record<string, string>;
}

/** Writes the config and starts a replica; resolves once /healthz answers 200 (bounded). */
export async function startReplicaProcess(name: string, setup: ReplicaSetup): Promise<ReplicaProcess> {
  const dir = mkdtempSync(join(tmpdir(), `quell-${name}-`));
  const configPath = join(dir, 'quell.yaml');
  writeFileSync(configPath, stringify(setup.config));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['src/main.ts'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? dir,
      QUELL_CONFIG: configPath,
      PORT: String(port),
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      QUELL_LOG_LEVEL: 'info',
      // The test run's V8 code cache (vitest.config.ts): a cheaper start, nothing else.
      ...(process.env.NODE_COMPILE_CACHE ? { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE } : {}),
      // The test run's CloudTrail without events (moto lacks LookupEvents), unless the test sets its own.
      ...(process.env.AWS_ENDPOINT_URL_CLOUDTRAIL
        ? { AWS_ENDPOINT_URL_CLOUDTRAIL: process.env.AWS_ENDPOINT_URL_CLOUDTRAIL }
        : {}),
      ...setup.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      resolve();
    }),
  );
  const baseUrl = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`replica ${name} exited during start-up: ${output.slice(-3000)}`);
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`replica ${name} not healthy within 30 s: ${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  return {
    name,
    baseUrl,
    pid: child.pid ?? -1,
    exited: () => gone,
    output: () => output,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      cleanup();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}
