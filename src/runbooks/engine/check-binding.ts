/**
 * Checking the rows execution is about to read against the audit chain (see src/audit/run-binding.ts):
 * the run's stored plan and target against its `plan.created` entry, its approvals against the
 * `approval.intent` entries written before each decision was committed, a break-glass approval against
 * its `run.break_glass` entry, and for an undo the original run's plan and result, which the undo plans
 * from. The chain segment holding those entries must verify. Anything that does not match is a problem,
 * named; the caller stops the run.
 */
import { verifyAuditChain } from '../../audit/chain.ts';
import { digestDecision, digestResult, digestRunPlan } from '../../audit/run-binding.ts';
import type { AuditRecord, RunRecord } from '../../store/store.ts';
import type { RunLifecycle } from './lifecycle.ts';

/** Why the rows a run's execution reads cannot be trusted; empty when they match the chain. */
export async function findBindingProblems(life: RunLifecycle, run: RunRecord): Promise<string[]> {
  const { store, config } = life.d;
  const entries = await store.listAudit({ runId: run.id });
  const problems: string[] = [];
  const used: AuditRecord[] = [];
  const planEntry = findPlanEntry(entries);
  if (!planEntry) problems.push('no audit entry records the stored plan');
  else {
    used.push(planEntry);
    if (digestRunPlan(run) !== bindingOf(planEntry, 'binding'))
      problems.push(`the stored plan or target differs from what audit entry #${planEntry.seq} recorded`);
  }
  if (run.requiredApprovals > 0) {
    if (run.breakGlass) {
      const entry = entries.find((e) => e.type === 'run.break_glass' && e.actor === run.requester);
      const allowed = run.source === 'cli' || config.approvals.breakGlass.includes(run.requester);
      if (!entry || !allowed) problems.push('the audit log records no break-glass approval of this run');
      else used.push(entry);
    } else {
      const { bound, unbound } = await countBoundApprovals(life, run, entries, used);
      if (unbound > 0)
        problems.push(`${unbound} stored decision(s) have no entry in the audit log written before them`);
      if (bound < run.requiredApprovals)
        problems.push(
          `the audit log shows ${bound} of the ${run.requiredApprovals} approval(s) the run needs`,
        );
      if (entries.some((e) => e.type === 'approval.decision' && outcomeOf(e) === 'denied'))
        problems.push('the audit log records a denial of this run');
    }
  }
  problems.push(...(await verifySegment(life, used)));
  if (run.kind === 'undo') {
    const parent = run.parentRunId ? await store.getRun(run.parentRunId) : undefined;
    if (!parent) problems.push('the run it undoes is missing');
    else problems.push(...(await findUndoSourceProblems(life, parent)));
  }
  return problems;
}

/**
 * Why the original run an undo plans from (its stored plan and result) cannot be trusted; empty when both
 * match the chain.
 */
export async function findUndoSourceProblems(life: RunLifecycle, parent: RunRecord): Promise<string[]> {
  const entries = await life.d.store.listAudit({ runId: parent.id });
  const problems: string[] = [];
  const used: AuditRecord[] = [];
  const planEntry = findPlanEntry(entries);
  if (!planEntry) problems.push(`no audit entry records the plan of \`${parent.id}\``);
  else {
    used.push(planEntry);
    if (digestRunPlan(parent) !== bindingOf(planEntry, 'binding'))
      problems.push(
        `the stored plan of \`${parent.id}\` differs from what audit entry #${planEntry.seq} recorded`,
      );
  }
  const resultEntry = entries.findLast(
    (e) => e.type === 'run.finished' && typeof bindingOf(e, 'resultDigest') === 'string',
  );
  if (!resultEntry) problems.push(`no audit entry records the result of \`${parent.id}\``);
  else {
    used.push(resultEntry);
    if (digestResult(parent.result) !== bindingOf(resultEntry, 'resultDigest'))
      problems.push(
        `the stored result of \`${parent.id}\` differs from what audit entry #${resultEntry.seq} recorded`,
      );
  }
  problems.push(...(await verifySegment(life, used)));
  return problems;
}

/** The newest `plan.created` entry that carries a binding (a recovered run may have been planned twice). */
function findPlanEntry(entries: readonly AuditRecord[]): AuditRecord | undefined {
  return entries.findLast((e) => e.type === 'plan.created' && typeof bindingOf(e, 'binding') === 'string');
}

function bindingOf(entry: AuditRecord, field: string): unknown {
  return (entry.data as Record<string, unknown> | null)?.[field];
}

function outcomeOf(entry: AuditRecord): unknown {
  return (bindingOf(entry, 'outcome') as { kind?: unknown } | undefined)?.kind;
}

/**
 * Distinct approvals by people other than the requester whose decision row matches an `approval.intent`
 * entry of theirs (written before the decision was committed), and how many stored decisions match none.
 */
async function countBoundApprovals(
  life: RunLifecycle,
  run: RunRecord,
  entries: readonly AuditRecord[],
  used: AuditRecord[],
): Promise<{ bound: number; unbound: number }> {
  const intents = new Map<string, AuditRecord>();
  for (const e of entries) {
    const hash = bindingOf(e, 'decisionHash');
    if (e.type === 'approval.intent' && typeof hash === 'string') intents.set(`${e.actor}\n${hash}`, e);
  }
  const approvers = new Set<string>();
  let unbound = 0;
  for (const decision of await life.d.store.listDecisions(run.id)) {
    const intent = intents.get(`${decision.userId}\n${digestDecision(decision)}`);
    if (!intent) {
      unbound++;
      continue;
    }
    used.push(intent);
    if (decision.decision === 'approve' && decision.userId !== run.requester) approvers.add(decision.userId);
  }
  return { bound: approvers.size, unbound };
}

/** Verifies the chain from the first to the last of `used` (the entries a decision to run rests on). */
async function verifySegment(life: RunLifecycle, used: readonly AuditRecord[]): Promise<string[]> {
  if (used.length === 0) return [];
  const seqs = used.map((e) => e.seq);
  const first = used.find((e) => e.seq === Math.min(...seqs)) as AuditRecord;
  const last = Math.max(...seqs);
  const segment = await life.d.store.listAudit({ afterSeq: first.seq - 1, limit: last - first.seq + 1 });
  const verdict = verifyAuditChain(segment, { prevHash: first.prevHash, seq: first.seq });
  if (!verdict.ok) return [`the audit chain does not verify at entry #${verdict.badSeq} (${verdict.reason})`];
  if (verdict.entries !== last - first.seq + 1) return [`the audit chain ends before entry #${last}`];
  return [];
}
