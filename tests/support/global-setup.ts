/**
 * Starts one moto_server on a free loopback port for the whole test run and stops it at the end. A
 * missing moto_server fails the run with a message saying what to install; nothing is skipped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort } from './free-port.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    motoUrl: string;
  }
}

let moto: ChildProcess | undefined;

export async function setup(project: TestProject): Promise<void> {
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
  await Promise.race([ready, failed]);
  moto.removeAllListeners('exit');
  project.provide('motoUrl', url);
}

export async function teardown(): Promise<void> {
  if (!moto || moto.exitCode !== null) return;
  const exited = new Promise((r) => moto?.once('exit', r));
  moto.kill('SIGTERM');
  const timer = setTimeout(() => moto?.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
