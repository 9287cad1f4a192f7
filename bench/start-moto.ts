/**
 * Starts a private moto_server on a free loopback port for one benchmark run and stops it (bounded:
 * SIGTERM, then SIGKILL after 3 s). Process `exit`, SIGINT and SIGTERM hooks kill it too, so an aborted
 * run never leaves moto behind. Its log (a line per request) goes to a file, not through this process's
 * event loop, which is what the benchmark measures.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../tests/support/free-port.ts';

/** A running moto_server. */
export interface Moto {
  url: string;
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** Spawns moto_server and waits (at most 15 s) until it answers. */
export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logDir = mkdtempSync(join(tmpdir(), 'quell-bench-moto-'));
  const logPath = join(logDir, 'moto.log');
  const logFd = openSync(logPath, 'w');
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  // AWS is another machine in production; here moto shares the cores with the event loop being measured.
  // The lowest priority keeps its CPU from landing mostly on quell's bursts (which make it work).
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, 19);
    } catch {
      // not permitted: measure anyway
    }
  }
  const logTail = () => {
    try {
      return readFileSync(logPath, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  const killNow = () => child.kill('SIGKILL');
  const onSignal = (signal: NodeJS.Signals) => {
    killNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', killNow);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const stop = async () => {
    process.removeListener('exit', killNow);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 6000))]);
      clearTimeout(hard);
    }
    rmSync(logDir, { recursive: true, force: true });
  };
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `could not start moto_server (${error.message}). Install moto 5 with its server extra: pip install "moto[server]"`,
        ),
      ),
    );
    child.once('exit', (code) => reject(new Error(`moto_server exited with ${code}: ${logTail()}`)));
  });
  failed.catch(() => undefined);
  const ready = (async () => {
    for (let i = 0; i < 150; i++) {
      try {
        const res = await fetch(`${url}/moto-api/`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status < 500) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer on ${url} within 15 s: ${logTail()}`);
  })();
  try {
    await Promise.race([ready, failed]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, port, pid: child.pid, stop };
}
