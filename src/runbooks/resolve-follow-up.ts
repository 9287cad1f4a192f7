/**
 * Follow-up buttons (see FollowUp in define-runbook.ts): which runbooks offer which buttons, and the
 * command a click starts, read from the stored run. Slack renders and routes them without knowing any
 * runbook by name.
 */
import { RunStateConflictError } from '../errors.ts';
import type { RunRecord } from '../store/store.ts';
import type { AnyRunbook, FollowUp } from './define-runbook.ts';
import type { CommandArgs } from './engine/command-grammar.ts';

/** Every follow-up the runbooks declare, with its owner; throws when one starts an unknown runbook. */
export function listFollowUps(runbooks: readonly AnyRunbook[]): { owner: AnyRunbook; followUp: FollowUp }[] {
  const known = new Set(runbooks.map((r) => r.id));
  return runbooks.flatMap((owner) =>
    (owner.followUps ?? []).map((followUp) => {
      if (!known.has(followUp.runbook)) {
        throw new Error(
          `runbook ${owner.id}: follow-up ${followUp.actionId} starts unknown runbook ${followUp.runbook}`,
        );
      }
      return { owner, followUp };
    }),
  );
}

/** Whether a run offers its runbook's follow-ups: a succeeded run, not an undo. */
export function offersFollowUps(run: Pick<RunRecord, 'state' | 'kind'>): boolean {
  return run.state === 'succeeded' && run.kind === 'run';
}

/**
 * The buttons a run's card shows: its runbook's follow-ups that this stored run offers, with their text
 * for it. Empty unless the run offers follow-ups at all.
 */
export function offeredFollowUps(
  runbook: Pick<AnyRunbook, 'followUps'>,
  run: RunRecord,
): { actionId: string; label: string }[] {
  if (!offersFollowUps(run)) return [];
  return (runbook.followUps ?? [])
    .filter((followUp) => followUp.offered?.(run) ?? true)
    .map((followUp) => ({ actionId: followUp.actionId, label: followUp.labelFor?.(run) ?? followUp.label }));
}

/**
 * The command a click on follow-up `actionId` of `run` starts: refused unless the run is a succeeded run
 * of the runbook that declares the button; the arguments come from the stored run.
 */
export function resolveFollowUp(
  runbooks: readonly AnyRunbook[],
  actionId: string,
  run: RunRecord,
): { runbook: string; args: CommandArgs } {
  const found = listFollowUps(runbooks).find((f) => f.followUp.actionId === actionId);
  if (!found) throw new RunStateConflictError(`No runbook offers this button on run \`${run.id}\`.`);
  const { owner, followUp } = found;
  if (run.runbook !== owner.id || !offersFollowUps(run)) {
    throw new RunStateConflictError(
      `Run \`${run.id}\` is not a succeeded \`${owner.id}\` run; start \`${followUp.runbook}\` with a command instead.`,
    );
  }
  if (followUp.offered && !followUp.offered(run)) {
    throw new RunStateConflictError(
      `Run \`${run.id}\` does not offer this button; start \`${followUp.runbook}\` with a command instead.`,
    );
  }
  return { runbook: followUp.runbook, args: followUp.args(run) };
}
