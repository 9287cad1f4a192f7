/**
 * The run lifecycle's one step: a run changes state in the store (a conditional, transactional update),
 * the change is written to the audit log, and the run's card is refreshed. Every state change of the
 * engine goes through `transition`; this file also holds what every part of the engine shares: its
 * settings, run look-ups, the per-run ordering of card updates, and the tracking of in-flight work.
 */
import type { ApproverDirectory } from '../../approvals/approval-policy.ts';
import type { AuditEvent, AuditLog } from '../../audit/audit-log.ts';
import type { EvidenceBucket } from '../../audit/evidence-bucket.ts';
import type { AwsClientFactory } from '../../aws/client-factory.ts';
import type { Config } from '../../config.ts';
import { type QuellError, RunNotFoundError, RunStateConflictError } from '../../errors.ts';
import type { Logger } from '../../logger.ts';
import type { Json, RunPatch, RunRecord, RunState, Store } from '../../store/store.ts';
import type { AnyRunbook } from '../define-runbook.ts';
import type { ReplicaOptions } from './recovery.ts';
import { isRunId } from './run-id.ts';
import type { RunNotifier } from './run-notifier.ts';

/** The engine's dependencies with every default applied. */
export interface EngineSettings {
  config: Config;
  store: Store;
  audit: AuditLog;
  aws: AwsClientFactory;
  directory: ApproverDirectory;
  notifier: RunNotifier;
  log: Logger;
  runbooks: readonly AnyRunbook[];
  now: () => number;
  /** How long execute + verify may take before the run is aborted. */
  executionTimeoutMs: number;
  replica: ReplicaOptions;
  /** The evidence bucket (config `evidence`), when one is configured. */
  evidenceBucket?: EvidenceBucket | undefined;
}

/**
 * One change of a run: a state transition (`from` → `to`, committed only if the run is still in one of
 * `from`), or with no `to` a patch of fields that are not the state (the review state).
 */
export interface RunChange {
  from?: readonly RunState[];
  to?: RunState;
  patch?: RunPatch;
  /** The entry recording the change, written once the change is committed (its runId is the run's). */
  audit?: Omit<AuditEvent, 'runId'>;
  /** Whether the card shows the change (default true). Off while a run's card does not exist yet. */
  show?: boolean;
  /**
   * This process holds the run in `from` (it is planning or executing it): the entry is written and the
   * card refreshed even if the store did not commit, because they describe what this process did.
   */
  owned?: boolean;
}

/** The shared core of the engine: settings, run look-ups, cards, transitions and in-flight work. */
export class RunLifecycle {
  readonly d: EngineSettings;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #showChains = new Map<string, Promise<void>>();

  constructor(settings: EngineSettings) {
    this.d = settings;
  }

  /**
   * Commits the change, writes its audit entry and refreshes the card. Resolves with the run as the card
   * now shows it, or undefined when the change did not commit (someone else changed the run first) or
   * the card was left alone.
   */
  async transition(runId: string, change: RunChange): Promise<RunRecord | undefined> {
    const { store, audit } = this.d;
    let committed = true;
    if (change.to === undefined) await store.patchRun(runId, change.patch ?? {}, this.d.now());
    else committed = await store.transition(runId, change.from ?? [], change.to, change.patch, this.d.now());
    if (!committed && !change.owned) return undefined;
    if (change.audit) await audit.record({ ...change.audit, runId });
    if (change.show === false) return undefined;
    const run = await this.mustGet(runId);
    await this.show(run);
    return run;
  }

  /** Shows the run's current state on its card; calls for one run are applied in order. */
  show(run: RunRecord): Promise<void> {
    const previous = this.#showChains.get(run.id) ?? Promise.resolve();
    const next = previous.then(() => this.#showNow(run.id, run));
    this.#showChains.set(run.id, next);
    void next.finally(() => {
      if (this.#showChains.get(run.id) === next) this.#showChains.delete(run.id);
    });
    return this.track(next);
  }

  async #showNow(runId: string, fallback: RunRecord): Promise<void> {
    try {
      // Always the latest state (and the card's ts, once an earlier call has posted it).
      const run = (await this.d.store.getRun(runId)) ?? fallback;
      const ts = await this.d.notifier.showRun({
        run,
        decisions: await this.d.store.listDecisions(run.id),
        runbook: this.runbookOf(run),
      });
      if (ts && ts !== run.messageTs) await this.d.store.patchRun(run.id, { messageTs: ts }, this.d.now());
    } catch (err) {
      this.d.log.warn({ err, runId }, 'could not show the run');
    }
  }

  /** Keeps `work` in the set `idle()` waits for. */
  track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    work.then(
      () => this.#inFlight.delete(work),
      () => this.#inFlight.delete(work),
    );
    return work;
  }

  /** Resolves once every tracked piece of work has settled. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async mustGet(runId: string): Promise<RunRecord> {
    const run = await this.d.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    return run;
  }

  /** A run by id wherever it was requested (App Home, where approvers act on runs of every channel). */
  async knownRun(runId: string): Promise<RunRecord> {
    if (!isRunId(runId)) throw new RunNotFoundError(runId.slice(0, 20));
    const run = await this.d.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    return run;
  }

  /** A run as seen from `channel` (runs are only visible where they were requested). */
  async visibleRun(runId: string, channel: string): Promise<RunRecord> {
    if (!isRunId(runId)) throw new RunNotFoundError(runId.slice(0, 20));
    const run = await this.d.store.getRun(runId);
    if (!run || run.channel !== channel) throw new RunNotFoundError(runId);
    return run;
  }

  /** The AWS identity a CLI run's operator proved, as recorded with its command. */
  async awsIdentityOf(runId: string): Promise<string | undefined> {
    const received = (await this.d.store.listAudit({ runId })).find((e) => e.type === 'command.received');
    const arn = (received?.data as { awsIdentity?: unknown } | undefined)?.awsIdentity;
    return typeof arn === 'string' ? arn : undefined;
  }

  runbookOf(run: RunRecord): AnyRunbook {
    const runbook = this.d.runbooks.find((r) => r.id === run.runbook);
    if (!runbook) throw new RunStateConflictError(`Runbook \`${run.runbook}\` is no longer available.`);
    return runbook;
  }
}

/** How an error is kept on the run record (code and message; never a stack or a cause). */
export function errorJson(error: QuellError): Json {
  return { code: error.code, message: error.message };
}
