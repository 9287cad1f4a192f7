/**
 * Replicas sharing in-flight work: each process that runs an engine (the bot, `quell run`) shows the store
 * it is alive with a heartbeat on the runs it holds, and takes over the runs of replicas that died. The
 * audit log is quell's write-ahead log: the intent of every mutating call is committed before the call is
 * sent, so an intent without an outcome is a call that may or may not have reached AWS, and a run with no
 * mutating intent sent nothing.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ApprovalExpiredError, asQuellError, RunInterruptedError } from '../../errors.ts';
import type { AuditRecord, RunRecord } from '../../store/store.ts';
import type { AnyRunbook } from '../define-runbook.ts';
import { errorJson, type RunLifecycle } from './lifecycle.ts';
import { type MakePlan, makePlanOf } from './run-procedure.ts';
/** Which replica works on a run: the host (the pod's name in Kubernetes), the process id and a nonce. */
export function newReplicaId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '')
      .slice(0, 63) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** How replicas share in-flight work (config `replicas`). */
export interface ReplicaOptions {
  id: string;
  /** A run whose replica has not beaten for this long is taken over. */
  orphanAfterMs: number;
}

/** The mutating AWS calls of one run, from its audit entries. */
export interface CallSummary {
  /** `service:Operation` of each intent with no recorded outcome: may or may not have happened. */
  unfinished: string[];
  /** Mutating calls AWS answered successfully. */
  completed: string[];
  /** Mutating calls AWS refused. */
  refused: string[];
}

/** Pairs each `aws.intent` with the next `aws.call` of the same operation. */
export function summarizeMutatingCalls(entries: readonly AuditRecord[]): CallSummary {
  const open = new Map<string, number>();
  const summary: CallSummary = { unfinished: [], completed: [], refused: [] };
  for (const entry of entries) {
    const data = (entry.data ?? {}) as {
      service?: string;
      operation?: string;
      outcome?: string;
      mutating?: boolean;
    };
    const name = `${data.service ?? '?'}:${data.operation ?? '?'}`;
    if (entry.type === 'aws.intent') open.set(name, (open.get(name) ?? 0) + 1);
    if (entry.type === 'aws.call' && data.mutating) {
      const pending = open.get(name) ?? 0;
      if (pending > 0) open.set(name, pending - 1);
      (data.outcome === 'ok' ? summary.completed : summary.refused).push(name);
    }
  }
  for (const [name, count] of open) for (let i = 0; i < count; i++) summary.unfinished.push(name);
  return summary;
}

/**
 * The thread message (and the run's error) for a run whose replica died while executing it. quell does
 * not retry such a run: it cannot know whether an unfinished call took effect, and a runbook that is not
 * idempotent must not run twice. It says what is known and what the operator should check.
 */
export function describeInterruptedRun(run: RunRecord, calls: CallSummary): string {
  const seen = run.heartbeatAt ? ` (last heartbeat ${new Date(run.heartbeatAt).toISOString()})` : '';
  const who = run.executor ? `replica \`${run.executor}\`${seen}` : 'its replica';
  const list = (names: string[]) => names.map((n) => `\`${n}\``).join(', ');
  const parts = [
    `The quell replica executing this run stopped before it finished: ${who}. The run is not retried automatically, because quell cannot tell which changes took effect.`,
  ];
  if (calls.unfinished.length > 0)
    parts.push(
      `Sent or about to be sent, with no answer recorded: ${list(calls.unfinished)} — check in AWS whether it took effect.`,
    );
  if (calls.completed.length > 0) parts.push(`Completed before it stopped: ${list(calls.completed)}.`);
  if (calls.refused.length > 0) parts.push(`Refused by AWS: ${list(calls.refused)}.`);
  if (calls.unfinished.length === 0 && calls.completed.length === 0)
    parts.push(
      'No change had been sent to AWS (the audit log holds no intent of a mutating call for this run), so requesting it again is safe.',
    );
  else
    parts.push(
      'An operator should check the target (every call and its parameters are in the audit log), then request the run again if it is still needed.',
    );
  return parts.join(' ');
}

/**
 * This process's heartbeat: while it plans or executes runs (a CLI prompt waiting for its operator, a
 * long execution), it refreshes their heartbeat so that no other replica takes them for orphans.
 */
export class ReplicaHeartbeat {
  readonly #life: RunLifecycle;
  /** Runs this process is planning or executing right now: the ones its heartbeat keeps alive. */
  readonly #working = new Set<string>();
  /** Since when every heartbeat reached the store (null after a failure). */
  #connectedSince: number | null = null;
  /** Beats while #working is not empty. */
  #beat: NodeJS.Timeout | undefined;

  constructor(life: RunLifecycle) {
    this.#life = life;
  }

  /** Shows the store that this replica is alive and still working on its runs. */
  async beat(): Promise<void> {
    const { store, replica, now } = this.#life.d;
    const at = now();
    try {
      // With nothing in hand, still reach the store: "connected since" must mean the database answered.
      if (this.#working.size === 0) await store.ping();
      else await store.heartbeatRuns(replica.id, [...this.#working], at);
      this.#connectedSince ??= at;
    } catch (error) {
      this.#connectedSince = null;
      throw error;
    }
  }

  /** Runs `work` on the run with the run kept alive by this process's heartbeat meanwhile. */
  async holding<T>(runId: string, work: () => Promise<T>): Promise<T> {
    this.#own(runId);
    try {
      return await work();
    } finally {
      this.#disown(runId);
    }
  }

  /**
   * Whether this replica may judge others: only after its own heartbeats have reached the store for
   * `orphanAfter`, so that after a database outage every live replica has beaten again first.
   */
  mayJudgeOthers(at: number): boolean {
    return this.#connectedSince !== null && at - this.#connectedSince >= this.#life.d.replica.orphanAfterMs;
  }

  /** Forgets that the store answered (it just failed). */
  lostStore(): void {
    this.#connectedSince = null;
  }

  #own(runId: string): void {
    this.#working.add(runId);
    if (this.#beat) return;
    this.#beat = setInterval(() => {
      this.beat().catch((err: unknown) => this.#life.d.log.warn({ err }, 'could not refresh the heartbeat'));
    }, this.#life.d.config.replicas.heartbeat);
    this.#beat.unref();
  }

  #disown(runId: string): void {
    this.#working.delete(runId);
    if (this.#working.size > 0 || !this.#beat) return;
    clearInterval(this.#beat);
    this.#beat = undefined;
  }
}

/** What recovery hands back to the rest of the engine. */
export interface RecoverySteps {
  /** Executes an approved run (exactly once: the claim to `running` decides). */
  execute(runId: string): Promise<unknown>;
  /** Plans a claimed run and asks for approval, as the dead replica would have. */
  planAndRequest(run: RunRecord, runbook: AnyRunbook, makePlan: MakePlan): Promise<unknown>;
}

/**
 * Takes over the in-flight runs of replicas that died (no heartbeat for `orphanAfter`), each claimed by
 * one replica with a conditional update. Returns how many this replica claimed.
 */
export async function recoverOrphans(
  life: RunLifecycle,
  heartbeat: ReplicaHeartbeat,
  steps: RecoverySteps,
): Promise<number> {
  const { store, replica, now, log } = life.d;
  const at = now();
  if (!heartbeat.mayJudgeOthers(at)) return 0;
  const staleBefore = at - replica.orphanAfterMs;
  let claimed = 0;
  let orphans: RunRecord[];
  try {
    orphans = await store.listOrphanedRuns(staleBefore, 20);
  } catch (error) {
    heartbeat.lostStore();
    throw error;
  }
  // Each claimed run is taken over at once, not after the one before it: a replica that died with
  // several runs in hand leaves none of them waiting on another's planning or execution.
  const recoveries: Promise<void>[] = [];
  const taken: { runId: string; state: string; replica: string | null }[] = [];
  for (const orphan of orphans) {
    if (!(await store.claimOrphanedRun(orphan.id, replica.id, at, staleBefore))) continue;
    claimed++;
    taken.push({ runId: orphan.id, state: orphan.state, replica: orphan.executor ?? null });
    recoveries.push(
      life
        .track(recoverOrphan(life, orphan, steps))
        .catch((err: unknown) => log.error({ err, runId: orphan.id }, 'could not recover an orphaned run')),
    );
  }
  if (taken.length > 0) log.info({ runs: taken }, 'taking over runs whose replica stopped');
  await Promise.all(recoveries);
  return claimed;
}

/**
 * One claimed orphan: a run still planning is planned again; a card never posted is posted; an approved
 * run that never started executes now (the claim to `running` stays exactly-once), unless its approval is
 * older than the approval window; a run that died while executing is never retried but handed to an
 * operator (`needs_operator`) with what the audit log knows.
 */
async function recoverOrphan(life: RunLifecycle, orphan: RunRecord, steps: RecoverySteps): Promise<void> {
  const { store, replica, config, notifier, now } = life.d;
  const from = { replica: orphan.executor ?? null, heartbeatAt: orphan.heartbeatAt ?? null };
  const actor = replica.id;
  if (orphan.state === 'running') {
    const calls = summarizeMutatingCalls(await store.listAudit({ runId: orphan.id }));
    const error = new RunInterruptedError(describeInterruptedRun(orphan, calls));
    const stuck = await life.transition(orphan.id, {
      from: ['running'],
      to: 'needs_operator',
      patch: { error: errorJson(error), executor: replica.id },
      audit: {
        type: 'run.needs_operator',
        actor,
        data: { ...from, unfinished: calls.unfinished, completed: calls.completed, refused: calls.refused },
      },
    });
    if (stuck) await notifier.reply(stuck, `:warning: Needs an operator. ${error.message}`);
    return;
  }
  if (orphan.source === 'cli' && (orphan.state === 'planning' || orphan.state === 'approved')) {
    // `quell run` asks its operator in the terminal that died: planning it again here would run a
    // break-glass change nobody confirmed, and executing a confirmed one would run it with nobody
    // watching. Neither happens; the run ends, and says so in the audit log.
    const message =
      'The terminal session (`quell run`) that requested this run ended before it was executed; nothing was run. Run it again if it is still needed.';
    const to = orphan.state === 'planning' ? 'plan_failed' : 'expired';
    await life.transition(orphan.id, {
      from: [orphan.state],
      to,
      patch: { error: { code: 'quell_run_interrupted', message } },
      audit: { type: 'run.recovered', actor, data: { ...from, action: `ended (${to})` } },
      show: false,
    });
    return;
  }
  if (orphan.state === 'approved') {
    // The dead replica may have committed the approval but not yet audited it: the recovery entry
    // names every recorded decision, so the chain still says who approved.
    const decisions = (await store.listDecisions(orphan.id)).map((d) => ({
      user: d.userId,
      decision: d.decision,
      at: new Date(d.at).toISOString(),
    }));
    const approvedAt = orphan.approvedAt ?? orphan.updatedAt;
    if (now() - approvedAt > config.approvals.expiresIn) {
      const error = new ApprovalExpiredError(orphan.id);
      const message = `Approved at ${new Date(approvedAt).toISOString()}, but the replica that should have executed it stopped, and the approval window has passed since; nothing was run. Request it again if it is still needed.`;
      const expired = await life.transition(orphan.id, {
        from: ['approved'],
        to: 'expired',
        patch: { error: { code: error.code, message } },
        audit: { type: 'run.recovered', actor, data: { ...from, action: 'expired', decisions } },
      });
      if (expired) await notifier.reply(expired, message);
      return;
    }
    await life.d.audit.record({
      type: 'run.recovered',
      runId: orphan.id,
      actor,
      data: { ...from, action: 'execute', decisions },
    });
    await steps.execute(orphan.id);
    return;
  }
  if (orphan.state === 'awaiting_approval') {
    await life.d.audit.record({
      type: 'run.recovered',
      runId: orphan.id,
      actor,
      data: { ...from, action: 'post card' },
    });
    await life.show(orphan);
    return;
  }
  // Planning is read-only: plan again, and ask for approval as the dead replica would have.
  const runbook = life.runbookOf(orphan);
  await life.d.audit.record({
    type: 'run.recovered',
    runId: orphan.id,
    actor,
    data: { ...from, action: 'plan again' },
  });
  const makePlan = await makePlanOf(orphan, runbook, (id) => life.mustGet(id));
  try {
    await steps.planAndRequest(orphan, runbook, makePlan);
  } catch (error) {
    const e = asQuellError(error);
    await notifier
      .tell(
        { user: orphan.requester, channel: orphan.channel, source: orphan.source },
        `\`${orphan.runbook}\` (run \`${orphan.id}\`) was planned again after a quell replica stopped, and planning failed: ${e.message}`,
      )
      .catch(() => undefined);
  }
}
