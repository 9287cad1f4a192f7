/**
 * Turning a request into a recorded run: a command (`start`) or the undo of a finished run
 * (`requestUndo`) is audited, checked against the requester and channel rules, resolved to an account
 * and region, recorded in `planning`, and planned. A request that cannot go ahead is refused: audited,
 * and the requester told why.
 */
import {
  assertChannelAllows,
  assertCliRequester,
  assertRequester,
  requiredApprovals,
} from '../../approvals/approval-policy.ts';
import { asQuellError, ErrorCode, RunStateConflictError, RunUnboundError } from '../../errors.ts';
import { createErrorRef } from '../../logger.ts';
import type { Json, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, CommonInput } from '../define-runbook.ts';
import { findUndoSourceProblems } from './check-binding.ts';
import type { RunLifecycle } from './lifecycle.ts';
import type { RunPlanner } from './plan-run.ts';
import { resolveAccount, resolveRegion } from './resolve-scope.ts';
import { newRunId } from './run-id.ts';
import { guardedByChannel, type PreparedCommand, type Requester, type StartOptions } from './run-notifier.ts';
import { undoSource } from './run-procedure.ts';

/** States after which a run has no open undo (or retry) that another one would work against. */
const CLOSED: readonly string[] = ['failed', 'denied', 'expired', 'plan_failed', 'superseded'];

/** Records and plans requested runs and undos. */
export class RunRequests {
  readonly #life: RunLifecycle;
  readonly #planner: RunPlanner;

  constructor(life: RunLifecycle, planner: RunPlanner) {
    this.#life = life;
    this.#planner = planner;
  }

  /** Records the command as a run and plans it; undefined when it was refused. */
  async start(
    prepared: PreparedCommand,
    requester: Requester,
    confirm?: StartOptions['confirm'],
    id?: string,
  ): Promise<RunRecord | undefined> {
    const { d } = this.#life;
    const { runbook, input } = prepared;
    const runId = id ?? newRunId();
    if (confirm) this.#planner.expectConfirmation(runId, confirm);
    await d.audit.record({
      type: 'command.received',
      runId,
      actor: requester.user,
      data: {
        runbook: runbook.id,
        input: input as Json,
        channel: requester.channel,
        source: requester.source,
        ...(requester.awsIdentity ? { awsIdentity: requester.awsIdentity } : {}),
      },
    });
    try {
      if (requester.source === 'cli')
        await assertCliRequester(d.config, d.directory, runbook.id, requester.awsIdentity);
      else if (requester.source !== 'schedule')
        await assertRequester(d.config, d.directory, runbook.id, requester.user);
      const account = await resolveAccount(d, runbook, input, runId, requester);
      if (guardedByChannel(requester))
        assertChannelAllows(d.config, requester.channel, runbook.id, account.alias);
      const region = resolveRegion(d, runbook, input, account);
      const run = this.#newRun(runId, runbook, requester, {
        kind: 'run',
        parentRunId: null,
        reason: input.reason ?? null,
        input: input as Json,
        accountAlias: account.alias,
        accountId: account.id,
        region,
      });
      await d.store.createRun(run);
      return await this.#planner.planAndRequest(run, runbook, (ctx) => runbook.plan(ctx, input));
    } catch (error) {
      await this.#refuse(runId, requester, error);
      return undefined;
    }
  }

  /** Plans the undo of a finished run and asks for approval; undefined when it was refused. */
  async requestUndo(parentId: string, requester: Requester): Promise<RunRecord | undefined> {
    const { d } = this.#life;
    const parent = await this.#life.visibleRun(parentId, requester.channel);
    const runbook = this.#life.runbookOf(parent);
    if (runbook.undo === 'irreversible')
      throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
    if (parent.kind !== 'run' || (parent.state !== 'succeeded' && parent.state !== 'partial')) {
      throw new RunStateConflictError(
        `Only a run that succeeded or was partially applied can be undone; \`${parent.id}\` is ${parent.state}.`,
      );
    }
    const existing = await d.store.listRuns({ parentRunId: parent.id, limit: 20 });
    const open = existing.find((r) => !CLOSED.includes(r.state));
    if (open)
      throw new RunStateConflictError(
        `Run \`${parent.id}\` already has an undo: \`${open.id}\` (${open.state}).`,
      );
    assertChannelAllows(d.config, requester.channel, runbook.id, parent.accountAlias ?? undefined);
    await assertRequester(d.config, d.directory, runbook.id, requester.user);
    const runId = newRunId();
    await d.audit.record({
      type: 'undo.requested',
      runId,
      actor: requester.user,
      data: { undoes: parent.id, runbook: runbook.id, channel: requester.channel },
    });
    const run = this.#newRun(runId, runbook, requester, {
      kind: 'undo',
      parentRunId: parent.id,
      reason: parent.reason,
      input: parent.input,
      accountAlias: parent.accountAlias,
      accountId: parent.accountId,
      region: parent.region,
    });
    try {
      // The undo plans from the original's stored plan and result: they must be the rows quell wrote.
      const problems = await findUndoSourceProblems(this.#life, parent);
      if (problems.length > 0) throw new RunUnboundError(problems);
      await d.store.createRun(run);
      const source = undoSource(parent);
      const undo = runbook.undo;
      return await this.#planner.planAndRequest(run, runbook, (ctx) => undo.plan(ctx, source));
    } catch (error) {
      await this.#refuse(runId, requester, error);
      return undefined;
    }
  }

  /**
   * Requests a superseded run again, with the plan of the world as it is now. A CLI run was confirmed by
   * its operator for the plan they saw: the new plan is asked about again, with what changed, at the same
   * prompt; with no prompt to ask, nothing more runs.
   */
  async requestAgain(run: RunRecord, runbook: AnyRunbook, differences: string[]): Promise<void> {
    const awsIdentity = run.source === 'cli' ? await this.#life.awsIdentityOf(run.id) : undefined;
    const requester: Requester = {
      user: run.requester,
      channel: run.channel,
      source: run.source,
      ...(awsIdentity ? { awsIdentity } : {}),
    };
    let confirm: StartOptions['confirm'];
    if (run.source === 'cli') {
      const asked = this.#planner.confirmationOf(run.id);
      if (!asked) {
        await this.#life.d.notifier
          .tell(
            requester,
            `Run \`${run.id}\` was not executed: the world changed after it was confirmed, and there is no terminal to confirm the new plan. Run it again if it is still needed.`,
          )
          .catch(() => undefined);
        return;
      }
      confirm = (view) => asked(view, { supersedes: run.id, differences });
    }
    if (run.kind === 'undo' && run.parentRunId)
      await this.requestUndo(run.parentRunId, requester).catch(() => undefined);
    else await this.start({ runbook, input: run.input as CommonInput }, requester, confirm);
  }

  /** A new run record in `planning`, with nothing planned, decided or run yet. */
  #newRun(
    id: string,
    runbook: AnyRunbook,
    requester: Requester,
    target: Pick<
      RunRecord,
      'kind' | 'parentRunId' | 'reason' | 'input' | 'accountAlias' | 'accountId' | 'region'
    >,
  ): RunRecord {
    const now = this.#life.d.now();
    return {
      id,
      runbook: runbook.id,
      ...target,
      state: 'planning',
      source: requester.source,
      requester: requester.user,
      channel: requester.channel,
      plan: null,
      planHash: null,
      requiredApprovals: requiredApprovals(this.#life.d.config, runbook.id, runbook.risk),
      breakGlass: false,
      reviewState: null,
      expiresAt: null,
      approvedAt: null,
      messageTs: null,
      result: null,
      error: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  async #refuse(runId: string, requester: Requester, error: unknown): Promise<void> {
    const { d } = this.#life;
    this.#planner.forgetConfirmation(runId);
    const e = asQuellError(error);
    let text = e.message;
    if (e.code === ErrorCode.Unknown || e.code === ErrorCode.Storage) {
      // Unexpected: the user gets a reference, the log gets the same reference and the cause.
      const ref = createErrorRef();
      d.log.error({ err: error, runId, ref }, 'run could not start');
      text = `${e.message} (reference \`${ref}\`)`;
    }
    await d.audit
      .record({
        type: 'command.rejected',
        runId,
        actor: requester.user,
        data: { code: e.code, message: e.message },
      })
      .catch((err: unknown) => d.log.error({ err, runId }, 'could not audit a refusal'));
    await d.notifier.tell(requester, text).catch(() => undefined);
  }
}
