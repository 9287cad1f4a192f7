/**
 * Executing an approved run exactly once: claim it (`running`, a conditional update only one caller
 * wins), re-check the facts the approval rests on, and either supersede it (the world changed: a new
 * request follows) or execute, verify and record the outcome, every step in the audit log.
 */
import { digestResult } from '../../audit/run-binding.ts';
import { asQuellError, PlanChangedError, RunUnboundError } from '../../errors.ts';
import type { Json, RunRecord, RunState } from '../../store/store.ts';
import type { AnyRunbook, Plan } from '../define-runbook.ts';
import { captureEvidence, type EvidenceSummary, evidenceJson, readEvidence } from './capture-evidence.ts';
import { findBindingProblems } from './check-binding.ts';
import { errorJson, type RunLifecycle } from './lifecycle.ts';
import { diffMaterial, hashMaterial } from './plan-material.ts';
import type { ReplicaHeartbeat } from './recovery.ts';
import { buildRunContext, openScope } from './resolve-scope.ts';
import { makePlanOf, procedureOf } from './run-procedure.ts';

/**
 * Requests a superseded run again with the current plan (a new run, or a new undo of the same parent);
 * `differences` say what changed, for whoever is asked again.
 */
export type RequestAgain = (run: RunRecord, runbook: AnyRunbook, differences: string[]) => Promise<unknown>;

/** Executes approved runs. */
export class RunExecutor {
  readonly #life: RunLifecycle;
  readonly #heartbeat: ReplicaHeartbeat;
  readonly #requestAgain: RequestAgain;

  constructor(life: RunLifecycle, heartbeat: ReplicaHeartbeat, requestAgain: RequestAgain) {
    this.#life = life;
    this.#heartbeat = heartbeat;
    this.#requestAgain = requestAgain;
  }

  /**
   * Executes an approved (or, for a retry, partially applied) run exactly once, kept alive by this
   * replica's heartbeat meanwhile: only the caller whose transition to `running` commits proceeds.
   * Returns whether this caller ran it.
   */
  execute(runId: string, from: RunState[] = ['approved']): Promise<boolean> {
    return this.#heartbeat.holding(runId, () => this.#execute(runId, from));
  }

  async #execute(runId: string, from: RunState[]): Promise<boolean> {
    const life = this.#life;
    const { d } = life;
    const claim = { executor: d.replica.id, heartbeatAt: d.now() };
    if (!(await d.store.transition(runId, from, 'running', claim, d.now()))) return false;
    const run = await life.mustGet(runId);
    const runbook = life.runbookOf(run);
    const procedure = procedureOf(run, runbook);
    const scope = openScope(d, run, runbook, runbook.access);
    const signal = AbortSignal.timeout(d.executionTimeoutMs);
    const ctx = buildRunContext(d, run, scope, run.approvedAt, signal);
    const plan = run.plan as unknown as Plan;
    let evidence: EvidenceSummary | undefined;
    try {
      // The plan, the approvals (and for an undo, what it undoes) must be the rows quell wrote.
      const problems = await findBindingProblems(life, run);
      if (problems.length > 0) {
        await this.#stopUnbound(run, problems);
        return true;
      }

      // The evidence is read alongside the re-check (no extra round trip), and kept only if the run goes on.
      const reading = readEvidence(run, runbook, ctx, plan);
      const material = procedure.recheck
        ? await procedure.recheck(ctx, plan)
        : (await (await makePlanOf(run, runbook, (id) => life.mustGet(id)))(ctx)).material;
      const hash = hashMaterial(material);
      await d.audit.record({
        type: 'plan.rechecked',
        runId,
        data: { planHash: hash, matches: hash === run.planHash },
      });
      if (hash !== run.planHash) {
        await this.#supersede(run, runbook, plan.material, material);
        return true;
      }
      // Evidence before containment: taken now, before the first change; a failure never stops the run.
      if (reading) evidence = await captureEvidence(d, run, reading);
      await d.audit.record({
        type: 'execute.started',
        runId,
        actor: run.requester,
        data: { approvedAt: run.approvedAt },
      });
      const { files, ...result } = await procedure.execute(ctx, plan);
      await d.audit.record({
        type: 'execute.finished',
        runId,
        data: {
          ok: result.ok,
          summary: result.summary,
          data: result.data,
          files: (files ?? []).map((f) => ({ filename: f.filename, bytes: Buffer.byteLength(f.content) })),
        },
      });
      const verification = await procedure.verify(ctx, plan, result);
      await d.audit.record({
        type: 'verify.finished',
        runId,
        data: { ok: verification.ok, summary: verification.summary, data: verification.data },
      });
      // Partly applied: kept open for a retry (same approval) or an undo of what was done.
      const state: RunState =
        result.ok && verification.ok ? 'succeeded' : result.partial ? 'partial' : 'failed';
      const stored = {
        execute: result,
        verify: verification,
        ...(evidence ? { evidence: evidenceJson(evidence) } : {}),
      } as unknown as Json;
      const done = await life.transition(runId, {
        from: ['running'],
        to: state,
        patch: { result: stored },
        // What an undo will plan from, bound to the chain.
        audit: { type: 'run.finished', data: { state, resultDigest: digestResult(stored) } },
        owned: true,
      });
      if (!done) return true;
      if (files && files.length > 0) {
        await d.notifier
          .upload(done, files)
          .catch((err: unknown) => d.log.warn({ err, runId }, 'could not attach the result files'));
      }
      await d.notifier.reply(
        done,
        `${state === 'succeeded' ? 'Done' : state === 'partial' ? 'Partially applied' : 'Finished with problems'}: ${result.summary} ${verification.summary}`,
      );
    } catch (error) {
      const e = asQuellError(error);
      d.log.error({ err: error, runId }, 'run failed');
      const failed = await life.transition(runId, {
        from: ['running'],
        to: 'failed',
        patch: { error: errorJson(e), ...(evidence ? { result: { evidence: evidenceJson(evidence) } } : {}) },
        audit: { type: 'run.finished', data: { state: 'failed', code: e.code, message: e.message } },
        owned: true,
      });
      if (failed) await d.notifier.reply(failed, `Failed: ${e.message}`);
    } finally {
      scope.dispose();
      d.aws.release(runId);
    }
    return true;
  }

  /**
   * The rows the run would execute from do not match the audit chain: nothing runs, and an operator is
   * told what did not match.
   */
  async #stopUnbound(run: RunRecord, problems: string[]): Promise<void> {
    const { d } = this.#life;
    const error = new RunUnboundError(problems);
    d.log.error({ runId: run.id, problems }, 'stored run does not match the audit log');
    const stuck = await this.#life.transition(run.id, {
      from: ['running'],
      to: 'needs_operator',
      patch: { error: errorJson(error) },
      audit: { type: 'run.needs_operator', data: { reason: 'unbound', problems } },
      owned: true,
    });
    if (stuck) await d.notifier.reply(stuck, `:warning: Needs an operator. ${error.message}`);
  }

  /** The world changed since the approval: the run stops, and the same request is made again. */
  async #supersede(run: RunRecord, runbook: AnyRunbook, before: Json, after: Json): Promise<void> {
    const differences = diffMaterial(before, after);
    const error = new PlanChangedError(differences);
    const superseded = await this.#life.transition(run.id, {
      from: ['running'],
      to: 'superseded',
      patch: { error: errorJson(error) },
      audit: { type: 'plan.changed', data: { differences } },
      owned: true,
    });
    if (superseded)
      await this.#life.d.notifier.reply(
        superseded,
        `${error.message} A new request with the current plan follows.`,
      );
    await this.#requestAgain(run, runbook, differences);
  }
}
