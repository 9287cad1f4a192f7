/**
 * Starts one moto_server on a free loopback port for the whole test run and stops it at the end. A
 * missing moto_server fails the run with a message saying what to install; nothing is skipped. Next to
 * it, a throwaway PostgreSQL 15 cluster for the PostgreSQL store (tests/support/postgres-cluster.ts); a
 * missing PostgreSQL fails the run the same way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { startEmptyCloudTrail } from './empty-cloudtrail.ts';
import { freePort } from './free-port.ts';
import { type PostgresCluster, startPostgresCluster } from './postgres-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    motoUrl: string;
    /** The throwaway cluster's superuser URL (with its password); tests/support/postgres.ts makes databases. */
    postgresUrl: string;
    /** A CloudTrail that has no events (moto lacks LookupEvents); tests that need events start their own. */
    cloudTrailUrl: string;
  }
}

let moto: ChildProcess | undefined;
let postgres: PostgresCluster | undefined;
let emptyCloudTrail: { url: string; close(): void } | undefined;

export async function setup(project: TestProject): Promise<void> {
  // initdb and moto start in parallel; both waits are bounded.
  const cluster = startPostgresCluster();
  cluster.then(
    (c) => {
      postgres = c;
    },
    () => undefined,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  moto.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const failed = new Promise<never>((_, reject) => {
    moto?.once('error', (error) =>
      reject(
        new Error(
          `could not start moto_server (${error.message}). Install moto 5 with its server extra: pip install "moto[server]"`,
        ),
      ),
    );
    moto?.once('exit', (code) => reject(new Error(`moto_server exited with ${code}: ${stderr}`)));
  });
  // Bounded wait: 100 tries, 100 ms apart.
  const ready = (async () => {
    for (let i = 0; i < 100; i++) {
      try {
        const res = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1000) });
        if (res.status < 500) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer on ${url} within 10 s: ${stderr}`);
  })();
  // If moto fails, stop the cluster too: teardown does not run after a failed setup.
  await Promise.race([ready, failed]).catch(async (error: unknown) => {
    await cluster.then((c) => c.stop()).catch(() => undefined);
    throw error;
  });
  moto.removeAllListeners('exit');
  project.provide('motoUrl', url);
  emptyCloudTrail = await startEmptyCloudTrail();
  project.provide('cloudTrailUrl', emptyCloudTrail.url);
  const started = await cluster.catch((error: unknown) => {
    moto?.kill('SIGTERM');
    throw error;
  });
  project.provide('postgresUrl', started.url);
}

export async function teardown(): Promise<void> {
  emptyCloudTrail?.close();
  await postgres?.stop();
  if (!moto || moto.exitCode !== null) return;
  const exited = new Promise((r) => moto?.once('exit', r));
  moto.kill('SIGTERM');
  const timer = setTimeout(() => moto?.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
