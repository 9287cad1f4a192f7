/**
 * Compares a runbook's declared IAM actions with the calls its runs actually made, read from the audit
 * log's `aws.call` entries: the read role (plans) may only call `iam.plan`, the respond role only
 * `iam.execute` (runs) or `iam.undo` (undos); and every declared action must have been called, except
 * the ones AWS requires without a call of their own (`implied`, e.g. tagging on create). And every call a
 * run made with the respond role is among the actions of that run's session policy (moto does not
 * enforce IAM: a call the session policy leaves out would be denied only in a real account).
 */
import { expect } from 'vitest';
import type { AccountConfig } from '../../src/config.ts';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import { sessionGrantsOf } from '../../src/runbooks/engine/session-policy.ts';
import type { AuditRecord, RunRecord } from '../../src/store/store.ts';

interface CallData {
  service: string;
  operation: string;
  role: string | null;
}

export function assertIamMatchesCalls(
  runbook: AnyRunbook,
  entries: readonly AuditRecord[],
  runs: readonly RunRecord[],
  options: { implied?: string[] } = {},
): void {
  const used = { plan: new Set<string>(), execute: new Set<string>(), undo: new Set<string>() };
  const ids = new Map(runs.map((r) => [r.id, r.kind]));
  const outsideSessionPolicy: string[] = [];
  const sessionActions = new Map(runs.map((r) => [r.id, executingSessionActions(runbook, r)]));
  expect(ids.size, `no runs of ${runbook.id} to compare`).toBeGreaterThan(0);
  for (const entry of entries) {
    if (entry.type !== 'aws.call' || !entry.runId || !ids.has(entry.runId)) continue;
    const call = entry.data as unknown as CallData;
    if (call.service === 'sts' && call.operation === 'AssumeRole') continue; // the bot's own permission
    const action = `${call.service}:${call.operation}`;
    const read = String(call.role).endsWith(':role/quell-read');
    used[read ? 'plan' : ids.get(entry.runId) === 'undo' ? 'undo' : 'execute'].add(action);
    const allowed = read ? undefined : sessionActions.get(entry.runId);
    if (allowed && !allowed.has(action)) outsideSessionPolicy.push(`${entry.runId}: ${action}`);
  }
  expect(outsideSessionPolicy, `${runbook.id}: called outside the run's session policy`).toEqual([]);
  const declared = { plan: runbook.iam.plan, execute: runbook.iam.execute, undo: runbook.iam.undo ?? [] };
  const implied = new Set(options.implied ?? []);
  for (const phase of ['plan', 'execute', 'undo'] as const) {
    const calledButUndeclared = [...used[phase]].filter((a) => !declared[phase].includes(a));
    expect(calledButUndeclared, `${runbook.id} ${phase}: called but not declared`).toEqual([]);
    const declaredButUnused = declared[phase].filter((a) => !used[phase].has(a) && !implied.has(a));
    expect(declaredButUnused, `${runbook.id} ${phase}: declared but never called`).toEqual([]);
  }
}

/** The actions the session policy of the run's executing session (respond role) allows, on any resource. */
function executingSessionActions(runbook: AnyRunbook, run: RunRecord): Set<string> | undefined {
  if (runbook.access !== 'respond' || !run.plan) return undefined;
  const account = {
    id: run.accountId,
    roles: {
      read: `arn:aws:iam::${run.accountId}:role/quell-read`,
      respond: `arn:aws:iam::${run.accountId}:role/quell-respond`,
    },
  } as AccountConfig;
  const grants = sessionGrantsOf(run, runbook, 'respond', account, run.region ?? 'us-east-1');
  return new Set(grants.flatMap((g) => g.actions));
}
