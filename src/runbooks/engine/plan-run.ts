/**
 * Planning a recorded run and asking for what it needs next: the plan (read role, read-only) is made and
 * audited; a run that needs no approval (read-only, break-glass) is confirmed by the CLI operator when
 * there is one and executed at once; any other run waits for approval on its card, with the respond
 * session assumed meanwhile so the approving click costs no STS round trip.
 */
import { isBreakGlass } from '../../approvals/approval-policy.ts';
import { digestRunPlan } from '../../audit/run-binding.ts';
import { asQuellError } from '../../errors.ts';
import type { Json, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, Plan } from '../define-runbook.ts';
import { errorJson, type RunLifecycle } from './lifecycle.ts';
import { hashMaterial } from './plan-material.ts';
import type { ReplicaHeartbeat } from './recovery.ts';
import { buildRunContext, openScope, requestSession } from './resolve-scope.ts';
import type { StartOptions } from './run-notifier.ts';
import type { MakePlan } from './run-procedure.ts';

/** Plans runs and requests their approval. */
export class RunPlanner {
  readonly #life: RunLifecycle;
  readonly #heartbeat: ReplicaHeartbeat;
  readonly #execute: (runId: string) => Promise<boolean>;
  /** The CLI's confirmation prompts, by run id, asked once the plan is known (see StartOptions). */
  readonly #confirmations = new Map<string, NonNullable<StartOptions['confirm']>>();
  /** The prompts of confirmed runs while they execute: a superseded one asks its operator again. */
  readonly #confirmed = new Map<string, NonNullable<StartOptions['confirm']>>();

  constructor(life: RunLifecycle, heartbeat: ReplicaHeartbeat, execute: (runId: string) => Promise<boolean>) {
    this.#life = life;
    this.#heartbeat = heartbeat;
    this.#execute = execute;
  }

  /** Asks `confirm` with the plan of `runId` before it executes without approval. */
  expectConfirmation(runId: string, confirm: NonNullable<StartOptions['confirm']>): void {
    this.#confirmations.set(runId, confirm);
  }

  /** The prompt that confirmed `runId`, while it executes (undefined when nobody confirmed it here). */
  confirmationOf(runId: string): NonNullable<StartOptions['confirm']> | undefined {
    return this.#confirmed.get(runId);
  }

  /** Drops the prompt of a run that will not be planned. */
  forgetConfirmation(runId: string): void {
    this.#confirmations.delete(runId);
  }

  /**
   * Plans the run and requests approval (or executes it when none is needed), with the run recorded as
   * this replica's and kept alive by its heartbeat meanwhile. A recovered run (`owned`) was claimed already.
   */
  planAndRequest(
    run: RunRecord,
    runbook: AnyRunbook,
    makePlan: MakePlan,
    options: { owned?: boolean } = {},
  ): Promise<RunRecord> {
    return this.#heartbeat.holding(run.id, async () => {
      const { store, replica, now } = this.#life.d;
      if (!options.owned) await store.patchRun(run.id, { executor: replica.id, heartbeatAt: now() });
      return this.#planAndRequest(run, runbook, makePlan);
    });
  }

  async #planAndRequest(run: RunRecord, runbook: AnyRunbook, makePlan: MakePlan): Promise<RunRecord> {
    const life = this.#life;
    const { d } = life;
    const scope = openScope(d, run, runbook, 'read');
    let plan: Plan;
    try {
      plan = await makePlan(buildRunContext(d, run, scope, null, AbortSignal.timeout(60_000)));
      // The session that will execute this plan must fit in a session policy: refused now, before anyone
      // is asked to approve a plan that could not run.
      requestSession(d, { ...run, plan: plan as unknown as Json }, runbook, runbook.access);
    } catch (error) {
      const e = asQuellError(error);
      await life.transition(run.id, {
        from: ['planning'],
        to: 'plan_failed',
        patch: { error: errorJson(e) },
        audit: { type: 'plan.failed', data: { code: e.code, message: e.message } },
        show: false,
        owned: true,
      });
      throw e;
    } finally {
      scope.dispose();
    }
    const planHash = hashMaterial(plan.material);
    const planJson = plan as unknown as Json;
    await d.audit.record({
      type: 'plan.created',
      runId: run.id,
      actor: run.requester,
      data: {
        summary: plan.summary,
        calls: plan.calls as unknown as Json,
        notes: plan.notes,
        material: plan.material,
        planHash,
        // The stored plan and the run's target, bound to the chain: execution checks the row against it.
        binding: digestRunPlan({ ...run, plan: planJson, planHash }),
      },
    });
    // A CLI run is break-glass by construction: there is nobody in the terminal to approve it.
    const breakGlass =
      run.requiredApprovals > 0 && (run.source === 'cli' || isBreakGlass(d.config, run.requester));
    const confirm = this.#confirmations.get(run.id);
    this.#confirmations.delete(run.id);
    if (confirm && (run.requiredApprovals === 0 || breakGlass)) {
      const confirmed = await confirm({
        run: { ...run, plan: planJson, planHash, breakGlass },
        decisions: [],
        runbook,
      });
      if (!confirmed) {
        await life.transition(run.id, {
          from: ['planning'],
          to: 'denied',
          patch: {
            plan: planJson,
            planHash,
            error: { code: 'cancelled', message: 'The requester cancelled at the prompt.' },
          },
          audit: { type: 'run.cancelled', actor: run.requester, data: { source: run.source, planHash } },
          show: false,
          owned: true,
        });
        return life.mustGet(run.id);
      }
    }
    const now = d.now();
    if (run.requiredApprovals === 0 || breakGlass) {
      // Read-only runs need nobody; break-glass runs go now and owe a review afterwards.
      await life.transition(run.id, {
        from: ['planning'],
        to: 'approved',
        patch: {
          plan: planJson,
          planHash,
          approvedAt: now,
          breakGlass,
          reviewState: breakGlass ? 'pending' : null,
        },
        ...(breakGlass
          ? {
              audit: {
                type: 'run.break_glass',
                actor: run.requester,
                data: { review: 'pending', source: run.source },
              },
            }
          : {}),
        owned: true,
      });
      if (confirm) this.#confirmed.set(run.id, confirm);
      try {
        await this.#execute(run.id);
      } finally {
        this.#confirmed.delete(run.id);
      }
      return life.mustGet(run.id);
    }
    const expiresAt = now + d.config.approvals.expiresIn;
    const shown = await life.transition(run.id, {
      from: ['planning'],
      to: 'awaiting_approval',
      patch: { plan: planJson, planHash, expiresAt },
      audit: {
        type: 'approval.requested',
        actor: run.requester,
        data: {
          required: run.requiredApprovals,
          expiresAt: new Date(expiresAt).toISOString(),
          approvers: d.config.approvals.approvers,
        },
      },
      owned: true,
    });
    const waiting = shown ?? (await life.mustGet(run.id));
    // Assume the respond session while the card waits, so the approving click costs no STS round trip.
    void life.track(
      d.aws.prewarm(requestSession(d, waiting, runbook, runbook.access)).catch((err: unknown) => {
        d.log.warn({ err, runId: run.id }, 'could not assume the respond role ahead of approval');
      }),
    );
    return waiting;
  }
}
