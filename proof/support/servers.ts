/**
 * The servers every part shares, started as the test suite's global set-up starts them: one moto_server
 * on a free loopback port and one throwaway PostgreSQL cluster (tests/support/postgres-cluster.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { startEmptyCloudTrail } from '../../tests/support/empty-cloudtrail.ts';
import { freePort } from '../../tests/support/free-port.ts';
import { type PostgresCluster, startPostgresCluster } from '../../tests/support/postgres-cluster.ts';
import { provide } from './vitest-shim.ts';

export interface ProofServers {
  motoUrl: string;
  postgresUrl: string;
  stop(): Promise<void>;
}

/** Starts moto and PostgreSQL (bounded waits) and provides their URLs to tests/support. */
export async function startProofServers(): Promise<ProofServers> {
  const cluster = startPostgresCluster();
  cluster.catch(() => undefined);
  const port = await freePort();
  const motoUrl = `http://127.0.0.1:${port}`;
  const moto: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const failed = new Promise<never>((_, reject) => {
    moto.once('error', (e) =>
      reject(new Error(`could not start moto_server (${e.message}): pip install "moto[server]"`)),
    );
  });
  const ready = (async () => {
    for (let i = 0; i < 150; i++) {
      try {
        const res = await fetch(`${motoUrl}/moto-api/`, { signal: AbortSignal.timeout(1000) });
        if (res.status < 500) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer on ${motoUrl} within 15 s`);
  })();
  let pg: PostgresCluster;
  try {
    await Promise.race([ready, failed]);
    pg = await cluster;
  } catch (error) {
    moto.kill('SIGTERM');
    await cluster.then((c) => c.stop()).catch(() => undefined);
    throw error;
  }
  provide('motoUrl', motoUrl);
  provide('postgresUrl', pg.url);
  process.env.AWS_ENDPOINT_URL = motoUrl;
  // As in the test run: CloudTrail, which moto lacks, answers with no events (replica processes inherit it).
  const cloudTrail = await startEmptyCloudTrail();
  provide('cloudTrailUrl', cloudTrail.url);
  process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = cloudTrail.url;
  return {
    motoUrl,
    postgresUrl: pg.url,
    async stop() {
      cloudTrail.close();
      await pg.stop().catch(() => undefined);
      if (moto.exitCode === null) {
        const exited = new Promise((r) => moto.once('exit', r));
        moto.kill('SIGTERM');
        const timer = setTimeout(() => moto.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
