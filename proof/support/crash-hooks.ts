/**
 * Loaded into a replica process with `NODE_OPTIONS=--import …/crash-hooks.ts` by the crash part: numbers
 * every write the process makes to its store (both store classes; heartbeats are not counted, they come on
 * a timer) on stderr as `QUELL-PROOF-WRITE <n> <method>`, and kills the process with SIGKILL just before
 * or just after write number QUELL_PROOF_KILL_AT (QUELL_PROOF_KILL_PHASE: before | after). No shutdown
 * code runs: that is kill -9, at a chosen point.
 *
 * A process already running can be armed again: on SIGUSR2 it reads `{ "killAt": n, "phase": "…", "nonce": "…" }` from
 * the file QUELL_PROOF_CONTROL names, counts its writes from zero again, and says
 * `QUELL-PROOF-ARMED <nonce> at <n> <phase>` on stderr. The crash part arms an idle replica this way (a SQLite
 * replica restarted after the previous kill) instead of starting another process.
 */
import { readFileSync, writeSync } from 'node:fs';
import { PostgresStore } from '../../src/store/postgres-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';

const WRITES = [
  'createRun',
  'transition',
  'patchRun',
  'decide',
  'appendAudit',
  'claimOrphanedRun',
  'putLedgerEntries',
  'updateLedgerEntries',
] as const;
let killAt = Number(process.env.QUELL_PROOF_KILL_AT ?? '0');
let phase = process.env.QUELL_PROOF_KILL_PHASE === 'after' ? 'after' : 'before';
let count = 0;

const control = process.env.QUELL_PROOF_CONTROL;
if (control) {
  process.on('SIGUSR2', () => {
    const armed = JSON.parse(readFileSync(control, 'utf8')) as {
      killAt: number;
      phase: string;
      nonce: string;
    };
    killAt = armed.killAt;
    phase = armed.phase === 'after' ? 'after' : 'before';
    count = 0;
    writeSync(2, `QUELL-PROOF-ARMED ${armed.nonce} at ${killAt} ${phase}\n`);
  });
}

for (const cls of [SqliteStore, PostgresStore]) {
  const proto = cls.prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of WRITES) {
    const original = proto[method];
    if (typeof original !== 'function') continue;
    proto[method] = async function (this: unknown, ...args: unknown[]) {
      const n = ++count;
      writeSync(2, `QUELL-PROOF-WRITE ${n} ${method}\n`);
      if (n === killAt && phase === 'before') process.kill(process.pid, 'SIGKILL');
      const result = await original.apply(this, args);
      if (n === killAt && phase === 'after') process.kill(process.pid, 'SIGKILL');
      return result;
    };
  }
}
