/**
 * Which procedure a run follows: a run follows its runbook; an undo follows the runbook's undo, planned
 * from the original run's stored plan and execution result.
 */
import { RunStateConflictError } from '../../errors.ts';
import type { Json, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, Outcome, Plan, Procedure, RunContext } from '../define-runbook.ts';

/** Makes a run's plan in a context. */
export type MakePlan = (ctx: RunContext) => Promise<Plan>;

/** What an undo plans from: the original run's stored plan and execution result. */
export function undoSource(parent: RunRecord): { plan: Plan; result: Outcome } {
  const result = (parent.result as { execute?: Outcome } | null)?.execute;
  if (!parent.plan || !result)
    throw new RunStateConflictError(`Run \`${parent.id}\` has no recorded result to undo.`);
  return { plan: parent.plan as unknown as Plan, result };
}

/** The plan, execute and verify a run follows. */
export function procedureOf(run: RunRecord, runbook: AnyRunbook): Procedure<unknown, Json, Json> {
  if (run.kind === 'run') return runbook;
  if (runbook.undo === 'irreversible') throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
  return runbook.undo;
}

/** How a recorded run is planned (again): from its input, or for an undo from its parent run. */
export async function makePlanOf(
  run: RunRecord,
  runbook: AnyRunbook,
  getRun: (runId: string) => Promise<RunRecord>,
): Promise<MakePlan> {
  if (run.kind === 'run') return (ctx) => runbook.plan(ctx, run.input);
  const source = undoSource(await getRun(run.parentRunId ?? ''));
  const undo = runbook.undo;
  if (undo === 'irreversible') throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
  return (ctx) => undo.plan(ctx, source);
}
