/**
 * What people do to a run once it is requested: approve or deny it (the store's transactional `decide`
 * counts distinct eligible approvers), let its request expire, retry a partially applied run under its
 * approval, and review a break-glass run afterwards.
 */
import {
  assertApprover,
  assertChannelAllows,
  assertNotOperator,
  assertRequester,
  isApprover,
} from '../../approvals/approval-policy.ts';
import { evaluateDecisionWithout } from '../../approvals/evaluate-decision.ts';
import { digestDecision } from '../../audit/run-binding.ts';
import {
  ApprovalExpiredError,
  asQuellError,
  NotAllowedError,
  RunNotFoundError,
  RunStateConflictError,
} from '../../errors.ts';
import type { DecisionRecord, Json, RunRecord, RunState } from '../../store/store.ts';
import type { RunLifecycle } from './lifecycle.ts';
import { isRunId } from './run-id.ts';
import { guardedByChannel } from './run-notifier.ts';

/** Executes an approved run; resolves with whether this caller ran it. */
export type ExecuteRun = (runId: string, from?: RunState[]) => Promise<boolean>;

/**
 * Records an approval or a denial from a button click: on the run's card (`channel` is where it was
 * clicked and must be the run's channel) or in the approver's App Home (`channel` null). Every refused
 * click is audited; the approval that completes the quorum executes the run.
 */
export async function decideRun(
  life: RunLifecycle,
  execute: ExecuteRun,
  runId: string,
  userId: string,
  decision: 'approve' | 'deny',
  channel: string | null,
): Promise<RunRecord> {
  const { d } = life;
  if (!isRunId(runId)) {
    await d.audit.record({
      type: 'approval.rejected',
      actor: userId,
      data: { reason: 'malformed run id', channel },
    });
    throw new RunNotFoundError(runId.slice(0, 20));
  }
  const found = await d.store.getRun(runId);
  if (!found || (channel !== null && found.channel !== channel)) {
    await d.audit.record({
      type: 'approval.rejected',
      runId: found ? runId : null,
      actor: userId,
      data: { reason: found ? 'other channel' : 'no such run', channel },
    });
    throw new RunNotFoundError(runId);
  }
  try {
    await assertApprover(d.config, d.directory, userId);
  } catch (error) {
    await d.audit.record({
      type: 'approval.rejected',
      runId,
      actor: userId,
      data: { reason: 'not an approver', decision },
    });
    throw error;
  }
  // Earlier approvers are checked against the group again now: one who has left no longer counts.
  const departed = await findDepartedApprovers(life, runId);
  const record: DecisionRecord = { runId, userId, decision, at: d.now() };
  // Intent before the action: the decision's digest is chained before the row is committed, so execution
  // can tell a decision quell recorded from a row written into the database by anyone else.
  await d.audit.record({
    type: 'approval.intent',
    runId,
    actor: userId,
    data: { decision, at: new Date(record.at).toISOString(), decisionHash: digestDecision(record) },
  });
  const { outcome, run } = await d.store.decide(record, evaluateDecisionWithout(departed));
  await d.audit.record({
    type: 'approval.decision',
    runId,
    actor: userId,
    data: {
      decision,
      outcome: outcome as unknown as Json,
      ...(departed.size > 0 ? { notCounted: [...departed] } : {}),
    },
  });
  if (outcome.kind === 'denied' || (outcome.kind === 'rejected' && outcome.reason === 'expired')) {
    d.aws.release(runId); // the session assumed while the card waited is no longer needed
  }
  if (outcome.kind === 'rejected') {
    if (outcome.reason === 'expired') {
      await life.show(run);
      throw new ApprovalExpiredError(runId);
    }
    if (outcome.reason === 'self')
      throw new NotAllowedError(
        'You cannot approve or deny your own request; another approver has to.',
        'two-people',
      );
    if (outcome.reason === 'duplicate')
      throw new RunStateConflictError('You have already decided on this run; each person counts once.');
    throw new RunStateConflictError(
      `Run \`${runId}\` is ${run.state.replace('_', ' ')}; it takes no more decisions.`,
    );
  }
  // The card refresh is ordered per run but not awaited: a Slack round trip must not delay the change.
  void life.show(run);
  if (outcome.kind === 'approved') {
    await d.audit.record({
      type: 'run.approved',
      runId,
      actor: userId,
      data: { approvals: outcome.approvals, required: outcome.required },
    });
    await execute(runId);
  }
  return life.mustGet(runId);
}

/** The earlier approvers of a run who are no longer approvers (asked of Slack now). */
async function findDepartedApprovers(life: RunLifecycle, runId: string): Promise<Set<string>> {
  const { config, directory, store } = life.d;
  const departed = new Set<string>();
  for (const earlier of await store.listDecisions(runId)) {
    if (earlier.decision !== 'approve' || departed.has(earlier.userId)) continue;
    if (!(await isApprover(config, directory, earlier.userId))) departed.add(earlier.userId);
  }
  return departed;
}

/**
 * Re-executes a partially applied run under the approval it already has: its requester or an approver
 * may ask. The runbook's recheck treats the run's own changes as unchanged, so only a changed world
 * supersedes it; execute then does only what is still missing.
 */
export async function retryRun(
  life: RunLifecycle,
  execute: ExecuteRun,
  runId: string,
  userId: string,
  channel: string,
): Promise<RunRecord> {
  const { d } = life;
  const run = await life.visibleRun(runId, channel);
  if (run.state !== 'partial')
    throw new RunStateConflictError(
      `Only a partially applied run can be retried; \`${runId}\` is ${run.state.replace('_', ' ')}.`,
    );
  try {
    await assertRetryAllowed(life, run, userId);
  } catch (error) {
    const e = asQuellError(error);
    await d.audit.record({
      type: 'retry.rejected',
      runId,
      actor: userId,
      data: { code: e.code, message: e.message },
    });
    throw error;
  }
  const undos = await d.store.listRuns({ parentRunId: run.id, limit: 20 });
  const undo = undos.find(
    (r) => !['failed', 'denied', 'expired', 'plan_failed', 'superseded'].includes(r.state),
  );
  if (undo)
    throw new RunStateConflictError(
      `Run \`${runId}\` has an undo (\`${undo.id}\`, ${undo.state.replace('_', ' ')}); a retry would work against it.`,
    );
  await d.audit.record({ type: 'run.retried', runId, actor: userId, data: { approvedAt: run.approvedAt } });
  if (!(await execute(runId, ['partial'])))
    throw new RunStateConflictError(`Run \`${runId}\` is already being retried.`);
  return life.mustGet(runId);
}

/**
 * A retry acts under the run's approval at click time: the clicker is its requester or an approver, the
 * channel's guardrail and the runbook's requester rules still allow the run, and the approval is no older
 * than the approval window (an old approval is not a licence to change things again).
 */
async function assertRetryAllowed(life: RunLifecycle, run: RunRecord, userId: string): Promise<void> {
  const { config, directory, now } = life.d;
  if (userId !== run.requester) await assertApprover(config, directory, userId);
  if (guardedByChannel(run))
    assertChannelAllows(config, run.channel, run.runbook, run.accountAlias ?? undefined);
  if (run.source === 'slack') await assertRequester(config, directory, run.runbook, run.requester, 'now');
  const approvedAt = run.approvedAt;
  if (approvedAt === null || now() - approvedAt > config.approvals.expiresIn)
    throw new ApprovalExpiredError(
      run.id,
      `The approval of run \`${run.id}\` (${approvedAt === null ? 'never recorded' : new Date(approvedAt).toISOString()}) is older than the approval window, so it no longer covers a retry. Request the run again (or undo what was applied).`,
    );
}

/**
 * Marks a break-glass run as reviewed by an approver other than the requester, from the run's card
 * (`channel`) or from the approver's App Home (`channel` null: approvers see every run owing a review).
 */
export async function reviewRun(
  life: RunLifecycle,
  runId: string,
  userId: string,
  channel: string | null,
): Promise<RunRecord> {
  const { d } = life;
  const run = channel === null ? await life.knownRun(runId) : await life.visibleRun(runId, channel);
  await assertApprover(d.config, d.directory, userId);
  if (userId === run.requester)
    throw new NotAllowedError(
      'Someone other than the requester has to review a break-glass run.',
      'two-people',
    );
  // A CLI operator is whoever proved the AWS identity recorded with the command, under any Slack id.
  // Runs recorded before quell proved it have only the name above to go by.
  const operator = run.source === 'cli' ? await life.awsIdentityOf(runId) : undefined;
  if (operator !== undefined) assertNotOperator(d.config, operator, userId);
  if (run.reviewState !== 'pending')
    throw new RunStateConflictError(`Run \`${runId}\` has no review pending.`);
  const reviewed = await life.transition(runId, {
    patch: { reviewState: 'reviewed' },
    audit: { type: 'run.reviewed', actor: userId },
  });
  return reviewed ?? life.mustGet(runId);
}

/** Expires every request whose approval window has passed, and updates their cards. */
export async function expireDueRequests(life: RunLifecycle): Promise<number> {
  const { d } = life;
  const waiting = await d.store.listRuns({ states: ['awaiting_approval'], limit: 500 });
  let expired = 0;
  for (const run of waiting) {
    if (run.expiresAt === null || run.expiresAt > d.now()) continue;
    const shown = await life.transition(run.id, {
      from: ['awaiting_approval'],
      to: 'expired',
      audit: { type: 'approval.expired' },
    });
    if (!shown) continue; // decided or expired elsewhere first
    expired++;
    d.aws.release(run.id); // the session assumed while the card waited is no longer needed
  }
  return expired;
}
