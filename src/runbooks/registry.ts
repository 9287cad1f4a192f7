/** Every runbook quell offers. A new runbook is one file and one line here. */
import type { AnyRunbook } from './define-runbook.ts';
import { disableKey } from './disable-key.ts';
import { drift } from './drift.ts';
import { isolateInstance } from './isolate-instance.ts';
import { isolateVpc } from './isolate-vpc.ts';
import { keyAge } from './key-age.ts';
import { releaseInstance } from './release-instance.ts';
import { restoreVpc } from './restore-vpc.ts';
import { revokeRoleSessions } from './revoke-role-sessions.ts';
import { rotateSecret } from './rotate-secret.ts';
import { trail } from './trail.ts';

/** The runbooks, in the order `help` lists them. */
export const RUNBOOKS: readonly AnyRunbook[] = [
  disableKey,
  revokeRoleSessions,
  trail,
  isolateVpc,
  restoreVpc,
  isolateInstance,
  releaseInstance,
  rotateSecret,
  drift,
  keyAge,
];

/** Words of the grammar that are not runbooks. */
export const BUILTIN_COMMANDS = ['help', 'status', 'case'] as const;

/** Looks a runbook up by id. */
export function findRunbook(id: string): AnyRunbook | undefined {
  return RUNBOOKS.find((r) => r.id === id);
}

/** The closest runbook (of those offered) or command name to a misspelt one, for "did you mean". */
export function suggestRunbook(name: string, runbooks: readonly AnyRunbook[] = RUNBOOKS): string | undefined {
  const names = [...runbooks.map((r) => r.id), ...BUILTIN_COMMANDS];
  let best: { name: string; distance: number } | undefined;
  for (const candidate of names) {
    const distance = editDistance(name, candidate);
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(name.length / 3)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length] ?? 0;
}
