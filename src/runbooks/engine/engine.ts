/**
 * The run engine: validate → plan → approve → re-check and compare → execute → verify, every step in the
 * audit log. Slack (or the CLI) reaches it through `prepare`/`start`/`decide`/`requestUndo`, and it
 * reaches people back only through a RunNotifier, so it never imports Bolt. This class is the engine's
 * public face; each job lives in a file of its own beside it (lifecycle, start lanes, planning,
 * execution, decisions, scope resolution, recovery).
 */
import { createEvidenceBucket } from '../../audit/evidence-bucket.ts';
import type { Config } from '../../config.ts';
import { InputInvalidError } from '../../errors.ts';
import type { RunRecord } from '../../store/store.ts';
import type { AnyRunbook } from '../define-runbook.ts';
import { RUNBOOKS } from '../registry.ts';
import type { CommandArgs } from './command-grammar.ts';
import { decideRun, expireDueRequests, retryRun, reviewRun } from './decide-run.ts';
import { RunExecutor } from './execute-run.ts';
import { type CaseExportResult, exportCase } from './export-case.ts';
import { type EngineSettings, RunLifecycle } from './lifecycle.ts';
import { RunPlanner } from './plan-run.ts';
import {
  assertConfigNamesKnownRunbooks,
  listRunbooksAllowedFor,
  listRunbooksAllowedIn,
  prepareCommand,
} from './prepare-command.ts';
import { newReplicaId, ReplicaHeartbeat, recoverOrphans } from './recovery.ts';
import { RunRequests } from './request-run.ts';
import { isRunId } from './run-id.ts';
import type { PreparedCommand, Requester, RunView, StartOptions } from './run-notifier.ts';
import { StartLanes } from './start-lanes.ts';

/** Everything the engine needs: its settings, where the defaults below may fill in the optional ones. */
export interface EngineDeps
  extends Omit<EngineSettings, 'runbooks' | 'now' | 'executionTimeoutMs' | 'replica'>,
    Partial<Pick<EngineSettings, 'runbooks' | 'now' | 'executionTimeoutMs' | 'replica'>> {
  /**
   * How many runs of each lane (read-only; containment) may be started at once (the rest wait their turn,
   * after their commands were acknowledged). A read-only run holds its slot while it executes.
   */
  startConcurrency?: number;
}

/** The run engine. */
export class Engine {
  readonly #life: RunLifecycle;
  readonly #lanes: StartLanes;
  readonly #heartbeat: ReplicaHeartbeat;
  readonly #executor: RunExecutor;
  readonly #planner: RunPlanner;
  readonly #requests: RunRequests;

  constructor(deps: EngineDeps) {
    const { startConcurrency, ...rest } = deps;
    const now = deps.now ?? Date.now;
    const evidence = deps.config.evidence;
    this.#life = new RunLifecycle({
      runbooks: RUNBOOKS,
      now,
      executionTimeoutMs: 5 * 60_000,
      replica: { id: newReplicaId(), orphanAfterMs: 60_000 },
      evidenceBucket: evidence ? createEvidenceBucket(evidence, deps.config.aws.region, now) : undefined,
      ...rest,
    });
    assertConfigNamesKnownRunbooks(this.#life.d.config, this.#life.d.runbooks);
    this.#lanes = new StartLanes(startConcurrency ?? 8);
    this.#heartbeat = new ReplicaHeartbeat(this.#life);
    this.#executor = new RunExecutor(this.#life, this.#heartbeat, (run, runbook, differences) =>
      this.#requests.requestAgain(run, runbook, differences),
    );
    this.#planner = new RunPlanner(this.#life, this.#heartbeat, (runId) => this.#executor.execute(runId));
    this.#requests = new RunRequests(this.#life, this.#planner);
  }

  get config(): Config {
    return this.#life.d.config;
  }

  /** The runbooks this engine offers. */
  get runbooks(): readonly AnyRunbook[] {
    return this.#life.d.runbooks;
  }

  /** Runbooks the requester may start in the channel (for `help`). */
  runbooksAllowedIn(channel: string): AnyRunbook[] {
    return listRunbooksAllowedIn(this.config, this.runbooks, channel);
  }

  /** Runbooks this user may start in the channel: the channel's guardrail and per-runbook requesters. */
  runbooksAllowedFor(user: string, channel: string): Promise<AnyRunbook[]> {
    return listRunbooksAllowedFor(this.config, this.runbooks, this.#life.d.directory, user, channel);
  }

  /**
   * Parses the command and checks the channel's guardrail. Synchronous and free of I/O, so Slack
   * handlers can answer bad input in the acknowledgement itself.
   */
  prepare(name: string, args: CommandArgs, requester: Requester): PreparedCommand {
    return prepareCommand(this.config, this.runbooks, name, args, requester);
  }

  /** Plans a prepared command and asks for approval, or runs it when no approval is needed. */
  async start(
    prepared: PreparedCommand,
    requester: Requester,
    options: StartOptions = {},
  ): Promise<RunRecord | undefined> {
    // Queued in the lane of the runbook's risk: a burst of commands is acknowledged first, and planned at
    // most `startConcurrency` at a time per lane, so read-only work never holds up a containment run.
    if (options.runId !== undefined && !isRunId(options.runId))
      throw new InputInvalidError([`\`${options.runId.slice(0, 20)}\` is not a run id`]);
    const work = this.#lanes.run(prepared.runbook.risk, () =>
      this.#requests.start(prepared, requester, options.confirm, options.runId),
    );
    return this.#life.track(work);
  }

  /**
   * Records an approval or a denial from a button click: on the run's card (`channel` is where it was
   * clicked and must be the run's channel) or in the approver's App Home (`channel` null).
   */
  async decide(
    runId: string,
    userId: string,
    decision: 'approve' | 'deny',
    channel: string | null,
  ): Promise<RunRecord> {
    const execute = (id: string) => this.#executor.execute(id);
    return this.#life.track(decideRun(this.#life, execute, runId, userId, decision, channel));
  }

  /** Plans the undo of a finished run and asks for approval. */
  async requestUndo(runId: string, requester: Requester): Promise<RunRecord | undefined> {
    return this.#life.track(this.#requests.requestUndo(runId, requester));
  }

  /**
   * Re-executes a partially applied run under the approval it already has: its requester or an approver
   * may ask. The runbook's recheck treats the run's own changes as unchanged, so only a changed world
   * supersedes it; execute then does only what is still missing.
   */
  async retry(runId: string, userId: string, channel: string): Promise<RunRecord> {
    const execute = (id: string, from?: RunRecord['state'][]) => this.#executor.execute(id, from);
    return this.#life.track(retryRun(this.#life, execute, runId, userId, channel));
  }

  /**
   * Marks a break-glass run as reviewed by an approver other than the requester, from the run's card
   * (`channel`) or from the approver's App Home (`channel` null: approvers see every run owing a review).
   */
  review(runId: string, userId: string, channel: string | null): Promise<RunRecord> {
    return reviewRun(this.#life, runId, userId, channel);
  }

  /** A run as seen from `channel` (runs are only visible where they were requested). */
  async view(runId: string, channel: string): Promise<RunView> {
    const run = await this.#life.visibleRun(runId, channel);
    return {
      run,
      decisions: await this.#life.d.store.listDecisions(runId),
      runbook: this.#life.runbookOf(run),
    };
  }

  /**
   * Exports the case file of a thread (a run id, or the thread ts of a run's card): its Markdown timeline
   * and JSON attached to the thread of the case's first run, and kept in the evidence bucket when one is
   * configured. In Slack only runs requested in the requester's channel are found, and the channel must
   * allow at least one of the case's runbooks.
   */
  exportCase(reference: string, requester: Requester): Promise<CaseExportResult> {
    return this.#life.track(exportCase(this.#life, reference, requester));
  }

  /** Expires every request whose approval window has passed, and updates their cards. */
  expireDue(): Promise<number> {
    return expireDueRequests(this.#life);
  }

  /** Resolves once every run started through this engine has settled (for shutdown and tests). */
  idle(): Promise<void> {
    return this.#life.idle();
  }

  /** This replica's identity, recorded as the executor of the runs it works on. */
  get replicaId(): string {
    return this.#life.d.replica.id;
  }

  /** Shows the store that this replica is alive and still working on its runs; call it periodically. */
  heartbeat(): Promise<void> {
    return this.#heartbeat.beat();
  }

  /**
   * Takes over the in-flight runs of replicas that died (no heartbeat for `orphanAfter`), each claimed by
   * one replica with a conditional update: a run still planning is planned again; a card never posted is
   * posted; an approved run that never started executes now (the claim to `running` stays exactly-once),
   * unless its approval is older than the approval window; a run that died while executing is never
   * retried but handed to an operator (`needs_operator`) with what the audit log knows. A replica judges
   * others only after its own heartbeats have reached the store for `orphanAfter`, so that after a
   * database outage every live replica has beaten again first.
   */
  recoverOrphans(): Promise<number> {
    return recoverOrphans(this.#life, this.#heartbeat, {
      execute: (runId) => this.#executor.execute(runId),
      planAndRequest: (run, runbook, makePlan) =>
        this.#planner.planAndRequest(run, runbook, makePlan, { owned: true }),
    });
  }
}
