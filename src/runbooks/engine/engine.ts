/**
 * The run engine: validate → plan → approve → re-check and compare → execute → verify, every step in the
 * audit log. Slack (or the CLI) reaches it through `prepare`/`start`/`decide`/`requestUndo`, and it
 * reaches people back only through a RunNotifier, so it never imports Bolt.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type ApproverDirectory,
  assertApprover,
  assertChannelAllows,
  assertCliRequester,
  assertNotOperator,
  assertRequester,
  isBreakGlass,
  requiredApprovals,
} from '../../approvals/approval-policy.ts';
import { evaluateDecision } from '../../approvals/evaluate-decision.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { canonicalJson } from '../../audit/chain.ts';
import type { AwsClientFactory, ScopedAws } from '../../aws/client-factory.ts';
import type { RoleTier } from '../../aws/sessions.ts';
import type { AccountConfig, Config } from '../../config.ts';
import {
  ApprovalExpiredError,
  asQuellError,
  ConfigInvalidError,
  ErrorCode,
  InputInvalidError,
  NotAllowedError,
  PlanChangedError,
  type QuellError,
  RunInterruptedError,
  RunNotFoundError,
  RunStateConflictError,
} from '../../errors.ts';
import { createErrorRef, type Logger } from '../../logger.ts';
import type { DecisionRecord, Json, RunRecord, RunState, Store } from '../../store/store.ts';
import {
  type AnyRunbook,
  type CommonInput,
  type Outcome,
  type OutcomeFile,
  type Plan,
  type Procedure,
  parseRunbookInput,
  type RunContext,
} from '../define-runbook.ts';
import { BUILTIN_COMMANDS, RUNBOOKS, suggestRunbook } from '../registry.ts';
import { createRunLedger } from '../run-ledger.ts';
import { BoundedQueue } from './bounded-queue.ts';
import type { CommandArgs } from './command-grammar.ts';
import {
  describeInterruptedRun,
  newReplicaId,
  type ReplicaOptions,
  summarizeMutatingCalls,
} from './orphaned-runs.ts';

/**
 * Who asked, and from where. A CLI requester (break-glass, when Slack is down) is in no channel: the
 * channel guardrails do not apply to it, and every run of it that changes something is break-glass.
 * A scheduled requester (`schedule`: a credential-age reminder, as SCHEDULER_USER, in the reminder's
 * channel) is authorised by its own `reminders` entry of the configuration, which names its channel and
 * accounts: neither the channel guardrails nor a runbook's `requesters` list apply to it.
 */
export interface Requester {
  user: string;
  channel: string;
  source: RunRecord['source'];
  /** The CLI operator's AWS identity (ARN) from STS GetCallerIdentity; `user` is the name it stands for. */
  awsIdentity?: string;
}

/**
 * The identity of scheduled runs: their requester, and the SourceIdentity of their AWS sessions (STS
 * allows `[\w+=,.@-]`). Not the shape of a Slack user id, so it can never be mistaken for a person.
 */
export const SCHEDULER_USER = 'quell-scheduler';

/** Options of `start`. */
export interface StartOptions {
  /**
   * Asked with the plan before a run that needs no approval (read-only, break-glass) executes; false
   * cancels the run. The CLI's y/N prompt.
   */
  confirm?: (view: RunView) => Promise<boolean>;
  /**
   * The new run's id, when the caller must name it before the run starts (a scheduled reminder audits
   * its slot under it first). A fresh `newRunId()`; anything else is refused.
   */
  runId?: string;
}

/** Whether the channel guardrails apply to the requester: people in Slack (see Requester). */
function guardedByChannel(requester: Pick<Requester, 'source'>): boolean {
  return requester.source === 'slack';
}

/** A run as people see it: the record, its decisions and its runbook. */
export interface RunView {
  run: RunRecord;
  decisions: DecisionRecord[];
  runbook: AnyRunbook;
}

/** How the engine talks back to people (Slack messages, or the terminal for the CLI). */
export interface RunNotifier {
  /** Posts the run's card, or updates it when it has one; returns the new message's ts when it posted. */
  showRun(view: RunView): Promise<string | undefined>;
  /** Adds a line to the run's thread. */
  reply(run: RunRecord, text: string): Promise<void>;
  /** Tells the requester privately that something could not be done. */
  tell(requester: Requester, text: string): Promise<void>;
  /** Attaches files to the run's thread. */
  upload(run: RunRecord, files: OutcomeFile[]): Promise<void>;
}

/** A command that parsed and passed the channel's guardrail. */
export interface PreparedCommand {
  runbook: AnyRunbook;
  input: CommonInput;
}

/** Everything the engine needs. */
export interface EngineDeps {
  config: Config;
  store: Store;
  audit: AuditLog;
  aws: AwsClientFactory;
  directory: ApproverDirectory;
  notifier: RunNotifier;
  log: Logger;
  runbooks?: readonly AnyRunbook[];
  now?: () => number;
  /** How long execute + verify may take before the run is aborted. */
  executionTimeoutMs?: number;
  /** How many runs may be planned at once (the rest wait their turn, after their commands were acknowledged). */
  startConcurrency?: number;
  /** This replica's identity and when another replica's run counts as orphaned (config `replicas`). */
  replica?: ReplicaOptions;
}

const RUN_ID = /^r[a-z2-7]{12}$/;

/** A new run id: `r` and 12 base32 characters (60 random bits). */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(12);
  let id = 'r';
  for (let i = 0; i < 12; i++) id += alphabet[(bytes[i] ?? 0) % 32];
  return id;
}

/** Whether text has the shape of a run id (anything else is rejected before a lookup). */
export function isRunId(text: string): boolean {
  return RUN_ID.test(text);
}

/** The hash an approval binds to: the plan's material facts, canonically serialised. */
export function hashMaterial(material: Json): string {
  return createHash('sha256').update(canonicalJson(material)).digest('hex');
}

/** The run engine. */
export class Engine {
  readonly #d: Required<Omit<EngineDeps, 'executionTimeoutMs' | 'startConcurrency'>> & {
    executionTimeoutMs: number;
  };
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #startQueue: BoundedQueue;
  readonly #showChains = new Map<string, Promise<void>>();
  /** The CLI's confirmation prompts, by run id, asked once the plan is known (see StartOptions). */
  readonly #confirmations = new Map<string, NonNullable<StartOptions['confirm']>>();
  /** Runs this process is planning or executing right now: the ones its heartbeat keeps alive. */
  readonly #working = new Set<string>();
  /** Since when every heartbeat reached the store (null after a failure). */
  #connectedSince: number | null = null;
  /** Beats while #working is not empty, in every process that runs an engine (the bot, `quell run`). */
  #beat: NodeJS.Timeout | undefined;

  constructor(deps: EngineDeps) {
    this.#d = {
      runbooks: RUNBOOKS,
      now: Date.now,
      executionTimeoutMs: 5 * 60_000,
      replica: { id: newReplicaId(), orphanAfterMs: 60_000 },
      ...deps,
    };
    assertConfigNamesKnownRunbooks(this.#d.config, this.#d.runbooks);
    this.#startQueue = new BoundedQueue(deps.startConcurrency ?? 8);
  }

  get config(): Config {
    return this.#d.config;
  }

  /** The runbooks this engine offers. */
  get runbooks(): readonly AnyRunbook[] {
    return this.#d.runbooks;
  }

  /** Runbooks the requester may start in the channel (for `help`). */
  runbooksAllowedIn(channel: string): AnyRunbook[] {
    const rule = this.#d.config.channels[channel];
    if (!rule) return [];
    return this.#d.runbooks.filter((r) => rule.runbooks.includes('*') || rule.runbooks.includes(r.id));
  }

  /** Runbooks this user may start in the channel: the channel's guardrail and per-runbook requesters. */
  async runbooksAllowedFor(user: string, channel: string): Promise<AnyRunbook[]> {
    // `help` answers in the ack: every user group is looked up once, all at the same time, instead of
    // once per runbook one after another.
    const lookups = new Map<string, Promise<ReadonlySet<string>>>();
    const directory: ApproverDirectory = {
      groupMembers: (group) => {
        const known = lookups.get(group);
        if (known) return known;
        const lookup = this.#d.directory.groupMembers(group);
        lookups.set(group, lookup);
        return lookup;
      },
    };
    const candidates = this.runbooksAllowedIn(channel);
    const listed = await Promise.all(
      candidates.map((runbook) =>
        assertRequester(this.#d.config, directory, runbook.id, user).then(
          () => true,
          () => false, // not listed as a requester of this runbook
        ),
      ),
    );
    return candidates.filter((_, i) => listed[i]);
  }

  /**
   * Parses the command and checks the channel's guardrail. Synchronous and free of I/O, so Slack
   * handlers can answer bad input in the acknowledgement itself.
   */
  prepare(name: string, args: CommandArgs, requester: Requester): PreparedCommand {
    const runbook = this.#d.runbooks.find((r) => r.id === name);
    if (!runbook) {
      const suggestion = suggestRunbook(name);
      const known = [...this.#d.runbooks.map((r) => r.id), ...BUILTIN_COMMANDS]
        .map((n) => `\`${n}\``)
        .join(', ');
      throw new InputInvalidError([
        `\`${name}\` is not a runbook.${suggestion ? ` Did you mean \`${suggestion}\`?` : ''} Known: ${known}.`,
      ]);
    }
    const input = parseRunbookInput<CommonInput>(runbook, args);
    if (input.account !== undefined && !this.#d.config.accounts.some((a) => a.alias === input.account)) {
      throw new InputInvalidError(
        [
          `unknown account \`${input.account}\`; configured: ${this.#d.config.accounts.map((a) => `\`${a.alias}\``).join(', ')}`,
        ],
        runbook.usage,
      );
    }
    if (input.account === undefined && this.#d.config.accounts.length > 1 && !runbook.locateAccount) {
      throw new InputInvalidError(
        [
          `several accounts are configured: add \`account=\` (${this.#d.config.accounts.map((a) => a.alias).join(', ')})`,
        ],
        runbook.usage,
      );
    }
    if (guardedByChannel(requester))
      assertChannelAllows(this.#d.config, requester.channel, runbook.id, input.account);
    return { runbook, input };
  }

  /** Plans a prepared command and asks for approval, or runs it when no approval is needed. */
  async start(
    prepared: PreparedCommand,
    requester: Requester,
    options: StartOptions = {},
  ): Promise<RunRecord | undefined> {
    // Queued: a burst of commands is acknowledged first, and planned at most `startConcurrency` at a time.
    if (options.runId !== undefined && !isRunId(options.runId))
      throw new InputInvalidError([`\`${options.runId.slice(0, 20)}\` is not a run id`]);
    const work = this.#startQueue.run(() => this.#start(prepared, requester, options.confirm, options.runId));
    return this.#track(work);
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
    return this.#track(this.#decide(runId, userId, decision, channel));
  }

  /** Plans the undo of a finished run and asks for approval. */
  async requestUndo(runId: string, requester: Requester): Promise<RunRecord | undefined> {
    return this.#track(this.#requestUndo(runId, requester));
  }

  /**
   * Re-executes a partially applied run under the approval it already has: its requester or an approver
   * may ask. The runbook's recheck treats the run's own changes as unchanged, so only a changed world
   * supersedes it; execute then does only what is still missing.
   */
  async retry(runId: string, userId: string, channel: string): Promise<RunRecord> {
    return this.#track(this.#retry(runId, userId, channel));
  }

  /**
   * Marks a break-glass run as reviewed by an approver other than the requester, from the run's card
   * (`channel`) or from the approver's App Home (`channel` null: approvers see every run owing a review).
   */
  async review(runId: string, userId: string, channel: string | null): Promise<RunRecord> {
    const run = channel === null ? await this.#knownRun(runId) : await this.#visibleRun(runId, channel);
    await assertApprover(this.#d.config, this.#d.directory, userId);
    if (userId === run.requester)
      throw new NotAllowedError(
        'Someone other than the requester has to review a break-glass run.',
        'two-people',
      );
    // A CLI operator is whoever proved the AWS identity recorded with the command, under any Slack id.
    // Runs recorded before quell proved it have only the name above to go by.
    const operator = run.source === 'cli' ? await this.#awsIdentityOf(runId) : undefined;
    if (operator !== undefined) assertNotOperator(this.#d.config, operator, userId);
    if (run.reviewState !== 'pending')
      throw new RunStateConflictError(`Run \`${runId}\` has no review pending.`);
    await this.#d.store.patchRun(runId, { reviewState: 'reviewed' }, this.#d.now());
    await this.#d.audit.record({ type: 'run.reviewed', runId, actor: userId });
    const reviewed = await this.#mustGet(runId);
    await this.#show(reviewed);
    return reviewed;
  }

  /** The AWS identity a CLI run's operator proved, as recorded with its command. */
  async #awsIdentityOf(runId: string): Promise<string | undefined> {
    const received = (await this.#d.store.listAudit({ runId })).find((e) => e.type === 'command.received');
    const arn = (received?.data as { awsIdentity?: unknown } | undefined)?.awsIdentity;
    return typeof arn === 'string' ? arn : undefined;
  }

  /** A run as seen from `channel` (runs are only visible where they were requested). */
  async view(runId: string, channel: string): Promise<RunView> {
    const run = await this.#visibleRun(runId, channel);
    return { run, decisions: await this.#d.store.listDecisions(runId), runbook: this.#runbookOf(run) };
  }

  /** Expires every request whose approval window has passed, and updates their cards. */
  async expireDue(): Promise<number> {
    const waiting = await this.#d.store.listRuns({ states: ['awaiting_approval'], limit: 500 });
    let expired = 0;
    for (const run of waiting) {
      if (run.expiresAt === null || run.expiresAt > this.#d.now()) continue;
      if (await this.#d.store.transition(run.id, ['awaiting_approval'], 'expired', {}, this.#d.now())) {
        expired++;
        this.#d.aws.release(run.id);
        await this.#d.audit.record({ type: 'approval.expired', runId: run.id });
        await this.#show(await this.#mustGet(run.id));
      }
    }
    return expired;
  }

  /** Resolves once every run started through this engine has settled (for shutdown and tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** This replica's identity, recorded as the executor of the runs it works on. */
  get replicaId(): string {
    return this.#d.replica.id;
  }

  /** Shows the store that this replica is alive and still working on its runs; call it periodically. */
  async heartbeat(): Promise<void> {
    const now = this.#d.now();
    try {
      // With nothing in hand, still reach the store: "connected since" must mean the database answered.
      if (this.#working.size === 0) await this.#d.store.ping();
      else await this.#d.store.heartbeatRuns(this.#d.replica.id, [...this.#working], now);
      this.#connectedSince ??= now;
    } catch (error) {
      this.#connectedSince = null;
      throw error;
    }
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
  async recoverOrphans(): Promise<number> {
    const now = this.#d.now();
    const { id, orphanAfterMs } = this.#d.replica;
    if (this.#connectedSince === null || now - this.#connectedSince < orphanAfterMs) return 0;
    const staleBefore = now - orphanAfterMs;
    let claimed = 0;
    let orphans: RunRecord[];
    try {
      orphans = await this.#d.store.listOrphanedRuns(staleBefore, 20);
    } catch (error) {
      this.#connectedSince = null;
      throw error;
    }
    for (const orphan of orphans) {
      if (!(await this.#d.store.claimOrphanedRun(orphan.id, id, now, staleBefore))) continue;
      claimed++;
      await this.#track(this.#recover(orphan)).catch((err: unknown) =>
        this.#d.log.error({ err, runId: orphan.id }, 'could not recover an orphaned run'),
      );
    }
    return claimed;
  }

  async #recover(orphan: RunRecord): Promise<void> {
    const from = { replica: orphan.executor ?? null, heartbeatAt: orphan.heartbeatAt ?? null };
    const base = { runId: orphan.id, actor: this.#d.replica.id };
    if (orphan.state === 'running') {
      const calls = summarizeMutatingCalls(await this.#d.store.listAudit({ runId: orphan.id }));
      const error = new RunInterruptedError(describeInterruptedRun(orphan, calls));
      const patch = { error: errorJson(error), executor: this.#d.replica.id };
      if (!(await this.#d.store.transition(orphan.id, ['running'], 'needs_operator', patch, this.#d.now())))
        return;
      await this.#d.audit.record({
        ...base,
        type: 'run.needs_operator',
        data: { ...from, unfinished: calls.unfinished, completed: calls.completed, refused: calls.refused },
      });
      const stuck = await this.#mustGet(orphan.id);
      await this.#show(stuck);
      await this.#d.notifier.reply(stuck, `:warning: Needs an operator. ${error.message}`);
      return;
    }
    if (orphan.source === 'cli' && (orphan.state === 'planning' || orphan.state === 'approved')) {
      // `quell run` asks its operator in the terminal that died: planning it again here would run a
      // break-glass change nobody confirmed, and executing a confirmed one would run it with nobody
      // watching. Neither happens; the run ends, and says so in the audit log.
      const message =
        'The terminal session (`quell run`) that requested this run ended before it was executed; nothing was run. Run it again if it is still needed.';
      const to = orphan.state === 'planning' ? 'plan_failed' : 'expired';
      const patch = { error: { code: 'quell_run_interrupted', message } };
      if (await this.#d.store.transition(orphan.id, [orphan.state], to, patch, this.#d.now()))
        await this.#d.audit.record({
          ...base,
          type: 'run.recovered',
          data: { ...from, action: `ended (${to})` },
        });
      return;
    }
    if (orphan.state === 'approved') {
      // The dead replica may have committed the approval but not yet audited it: the recovery entry
      // names every recorded decision, so the chain still says who approved.
      const decisions = (await this.#d.store.listDecisions(orphan.id)).map((d) => ({
        user: d.userId,
        decision: d.decision,
        at: new Date(d.at).toISOString(),
      }));
      const approvedAt = orphan.approvedAt ?? orphan.updatedAt;
      if (this.#d.now() - approvedAt > this.#d.config.approvals.expiresIn) {
        const error = new ApprovalExpiredError(orphan.id);
        const message = `Approved at ${new Date(approvedAt).toISOString()}, but the replica that should have executed it stopped, and the approval window has passed since; nothing was run. Request it again if it is still needed.`;
        if (
          await this.#d.store.transition(
            orphan.id,
            ['approved'],
            'expired',
            { error: { code: error.code, message } },
            this.#d.now(),
          )
        ) {
          await this.#d.audit.record({
            ...base,
            type: 'run.recovered',
            data: { ...from, action: 'expired', decisions },
          });
          const expired = await this.#mustGet(orphan.id);
          await this.#show(expired);
          await this.#d.notifier.reply(expired, message);
        }
        return;
      }
      await this.#d.audit.record({
        ...base,
        type: 'run.recovered',
        data: { ...from, action: 'execute', decisions },
      });
      await this.#execute(orphan.id);
      return;
    }
    if (orphan.state === 'awaiting_approval') {
      await this.#d.audit.record({ ...base, type: 'run.recovered', data: { ...from, action: 'post card' } });
      await this.#show(orphan);
      return;
    }
    // Planning is read-only: plan again, and ask for approval as the dead replica would have.
    const runbook = this.#runbookOf(orphan);
    await this.#d.audit.record({ ...base, type: 'run.recovered', data: { ...from, action: 'plan again' } });
    let makePlan: (ctx: RunContext) => Promise<Plan> = (ctx) => runbook.plan(ctx, orphan.input);
    if (orphan.kind === 'undo') {
      const source = undoSource(await this.#mustGet(orphan.parentRunId ?? ''));
      const undo = runbook.undo;
      if (undo === 'irreversible') throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
      makePlan = (ctx) => undo.plan(ctx, source);
    }
    try {
      await this.#planAndRequest(orphan, runbook, makePlan, { owned: true });
    } catch (error) {
      const e = asQuellError(error);
      await this.#d.notifier
        .tell(
          { user: orphan.requester, channel: orphan.channel, source: orphan.source },
          `\`${orphan.runbook}\` (run \`${orphan.id}\`) was planned again after a quell replica stopped, and planning failed: ${e.message}`,
        )
        .catch(() => undefined);
    }
  }

  /** Plans as #planAndRequestUntracked, with the run recorded as this replica's and kept alive meanwhile. */
  async #planAndRequest(
    run: RunRecord,
    runbook: AnyRunbook,
    makePlan: (ctx: RunContext) => Promise<Plan>,
    options: { owned?: boolean } = {},
  ): Promise<RunRecord> {
    this.#own(run.id);
    try {
      // A recovered run was claimed already; a new one becomes this replica's here.
      if (!options.owned)
        await this.#d.store.patchRun(run.id, { executor: this.#d.replica.id, heartbeatAt: this.#d.now() });
      return await this.#planAndRequestUntracked(run, runbook, makePlan);
    } finally {
      this.#disown(run.id);
    }
  }

  /** Executes as #executeUntracked, with the run kept alive by this replica's heartbeat meanwhile. */
  async #execute(runId: string, from: RunState[] = ['approved']): Promise<boolean> {
    this.#own(runId);
    try {
      return await this.#executeUntracked(runId, from);
    } finally {
      this.#disown(runId);
    }
  }

  /**
   * Marks a run as being worked on by this process, and keeps it alive while it is: a CLI prompt waiting
   * for its operator, or a long execution, must not look orphaned to a bot replica.
   */
  #own(runId: string): void {
    this.#working.add(runId);
    if (this.#beat) return;
    this.#beat = setInterval(() => {
      this.heartbeat().catch((err: unknown) => this.#d.log.warn({ err }, 'could not refresh the heartbeat'));
    }, this.#d.config.replicas.heartbeat);
    this.#beat.unref();
  }

  #disown(runId: string): void {
    this.#working.delete(runId);
    if (this.#working.size > 0 || !this.#beat) return;
    clearInterval(this.#beat);
    this.#beat = undefined;
  }

  async #start(
    prepared: PreparedCommand,
    requester: Requester,
    confirm?: StartOptions['confirm'],
    id?: string,
  ): Promise<RunRecord | undefined> {
    const { runbook, input } = prepared;
    const runId = id ?? newRunId();
    if (confirm) this.#confirmations.set(runId, confirm);
    await this.#d.audit.record({
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
        await assertCliRequester(this.#d.config, this.#d.directory, runbook.id, requester.awsIdentity);
      else if (requester.source !== 'schedule')
        await assertRequester(this.#d.config, this.#d.directory, runbook.id, requester.user);
      const account = await this.#resolveAccount(runbook, input, runId, requester);
      if (guardedByChannel(requester))
        assertChannelAllows(this.#d.config, requester.channel, runbook.id, account.alias);
      const region = this.#resolveRegion(runbook, input, account);
      const now = this.#d.now();
      const run = this.#newRun(runId, runbook, requester, now, {
        kind: 'run',
        parentRunId: null,
        reason: input.reason ?? null,
        input: input as Json,
        accountAlias: account.alias,
        accountId: account.id,
        region,
      });
      await this.#d.store.createRun(run);
      return await this.#planAndRequest(run, runbook, (ctx) => runbook.plan(ctx, input));
    } catch (error) {
      await this.#refuse(runId, requester, error);
      return undefined;
    }
  }

  /** A new run record in `planning`, with nothing planned, decided or run yet. */
  #newRun(
    id: string,
    runbook: AnyRunbook,
    requester: Requester,
    now: number,
    target: Pick<
      RunRecord,
      'kind' | 'parentRunId' | 'reason' | 'input' | 'accountAlias' | 'accountId' | 'region'
    >,
  ): RunRecord {
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
      requiredApprovals: requiredApprovals(this.#d.config, runbook.id, runbook.risk),
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

  async #requestUndo(parentId: string, requester: Requester): Promise<RunRecord | undefined> {
    const parent = await this.#visibleRun(parentId, requester.channel);
    const runbook = this.#runbookOf(parent);
    if (runbook.undo === 'irreversible')
      throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
    if (parent.kind !== 'run' || (parent.state !== 'succeeded' && parent.state !== 'partial')) {
      throw new RunStateConflictError(
        `Only a run that succeeded or was partially applied can be undone; \`${parent.id}\` is ${parent.state}.`,
      );
    }
    const existing = await this.#d.store.listRuns({ parentRunId: parent.id, limit: 20 });
    const open = existing.find(
      (r) => !['failed', 'denied', 'expired', 'plan_failed', 'superseded'].includes(r.state),
    );
    if (open)
      throw new RunStateConflictError(
        `Run \`${parent.id}\` already has an undo: \`${open.id}\` (${open.state}).`,
      );
    assertChannelAllows(this.#d.config, requester.channel, runbook.id, parent.accountAlias ?? undefined);
    await assertRequester(this.#d.config, this.#d.directory, runbook.id, requester.user);
    const runId = newRunId();
    await this.#d.audit.record({
      type: 'undo.requested',
      runId,
      actor: requester.user,
      data: { undoes: parent.id, runbook: runbook.id, channel: requester.channel },
    });
    const now = this.#d.now();
    const run = this.#newRun(runId, runbook, requester, now, {
      kind: 'undo',
      parentRunId: parent.id,
      reason: parent.reason,
      input: parent.input,
      accountAlias: parent.accountAlias,
      accountId: parent.accountId,
      region: parent.region,
    });
    try {
      await this.#d.store.createRun(run);
      const source = undoSource(parent);
      const undo = runbook.undo;
      return await this.#planAndRequest(run, runbook, (ctx) => undo.plan(ctx, source));
    } catch (error) {
      await this.#refuse(runId, requester, error);
      return undefined;
    }
  }

  async #planAndRequestUntracked(
    run: RunRecord,
    runbook: AnyRunbook,
    makePlan: (ctx: RunContext) => Promise<Plan>,
  ): Promise<RunRecord> {
    const account = this.#account(run);
    const scope = this.#scope(run, runbook, 'read');
    let plan: Plan;
    try {
      plan = await makePlan(this.#context(run, account, scope, null, AbortSignal.timeout(60_000)));
    } catch (error) {
      const e = asQuellError(error);
      await this.#d.store.transition(
        run.id,
        ['planning'],
        'plan_failed',
        { error: errorJson(e) },
        this.#d.now(),
      );
      await this.#d.audit.record({
        type: 'plan.failed',
        runId: run.id,
        data: { code: e.code, message: e.message },
      });
      throw e;
    } finally {
      scope.dispose();
    }
    const planHash = hashMaterial(plan.material);
    await this.#d.audit.record({
      type: 'plan.created',
      runId: run.id,
      actor: run.requester,
      data: {
        summary: plan.summary,
        calls: plan.calls as unknown as Json,
        notes: plan.notes,
        material: plan.material,
        planHash,
      },
    });
    const planJson = plan as unknown as Json;
    // A CLI run is break-glass by construction: there is nobody in the terminal to approve it.
    const breakGlass =
      run.requiredApprovals > 0 && (run.source === 'cli' || isBreakGlass(this.#d.config, run.requester));
    const confirm = this.#confirmations.get(run.id);
    this.#confirmations.delete(run.id);
    if (confirm && (run.requiredApprovals === 0 || breakGlass)) {
      const confirmed = await confirm({
        run: { ...run, plan: planJson, planHash, breakGlass },
        decisions: [],
        runbook,
      });
      if (!confirmed) {
        await this.#d.store.transition(
          run.id,
          ['planning'],
          'denied',
          {
            plan: planJson,
            planHash,
            error: { code: 'cancelled', message: 'The requester cancelled at the prompt.' },
          },
          this.#d.now(),
        );
        await this.#d.audit.record({
          type: 'run.cancelled',
          runId: run.id,
          actor: run.requester,
          data: { source: run.source, planHash },
        });
        return this.#mustGet(run.id);
      }
    }
    const now = this.#d.now();
    if (run.requiredApprovals === 0 || breakGlass) {
      // Read-only runs need nobody; break-glass runs go now and owe a review afterwards.
      await this.#d.store.transition(
        run.id,
        ['planning'],
        'approved',
        {
          plan: planJson,
          planHash,
          approvedAt: now,
          breakGlass,
          reviewState: breakGlass ? 'pending' : null,
        },
        now,
      );
      if (breakGlass)
        await this.#d.audit.record({
          type: 'run.break_glass',
          runId: run.id,
          actor: run.requester,
          data: { review: 'pending', source: run.source },
        });
      await this.#show(await this.#mustGet(run.id));
      await this.#execute(run.id);
      return this.#mustGet(run.id);
    }
    const expiresAt = now + this.#d.config.approvals.expiresIn;
    await this.#d.store.transition(
      run.id,
      ['planning'],
      'awaiting_approval',
      { plan: planJson, planHash, expiresAt },
      now,
    );
    await this.#d.audit.record({
      type: 'approval.requested',
      runId: run.id,
      actor: run.requester,
      data: {
        required: run.requiredApprovals,
        expiresAt: new Date(expiresAt).toISOString(),
        approvers: this.#d.config.approvals.approvers,
      },
    });
    const waiting = await this.#mustGet(run.id);
    await this.#show(waiting);
    // Assume the respond session while the card waits, so the approving click costs no STS round trip.
    void this.#track(
      this.#d.aws.prewarm(this.#sessionRequest(waiting, runbook, runbook.access)).catch((err: unknown) => {
        this.#d.log.warn({ err, runId: run.id }, 'could not assume the respond role ahead of approval');
      }),
    );
    return waiting;
  }

  async #decide(
    runId: string,
    userId: string,
    decision: 'approve' | 'deny',
    channel: string | null,
  ): Promise<RunRecord> {
    if (!isRunId(runId)) {
      await this.#d.audit.record({
        type: 'approval.rejected',
        actor: userId,
        data: { reason: 'malformed run id', channel },
      });
      throw new RunNotFoundError(runId.slice(0, 20));
    }
    const found = await this.#d.store.getRun(runId);
    if (!found || (channel !== null && found.channel !== channel)) {
      await this.#d.audit.record({
        type: 'approval.rejected',
        runId: found ? runId : null,
        actor: userId,
        data: { reason: found ? 'other channel' : 'no such run', channel },
      });
      throw new RunNotFoundError(runId);
    }
    try {
      await assertApprover(this.#d.config, this.#d.directory, userId);
    } catch (error) {
      await this.#d.audit.record({
        type: 'approval.rejected',
        runId,
        actor: userId,
        data: { reason: 'not an approver', decision },
      });
      throw error;
    }
    const { outcome, run } = await this.#d.store.decide(
      { runId, userId, decision, at: this.#d.now() },
      evaluateDecision,
    );
    await this.#d.audit.record({
      type: 'approval.decision',
      runId,
      actor: userId,
      data: { decision, outcome: outcome as unknown as Json },
    });
    if (outcome.kind === 'denied' || (outcome.kind === 'rejected' && outcome.reason === 'expired')) {
      this.#d.aws.release(runId); // the session assumed while the card waited is no longer needed
    }
    if (outcome.kind === 'rejected') {
      if (outcome.reason === 'expired') {
        await this.#show(run);
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
    void this.#show(run);
    if (outcome.kind === 'approved') {
      await this.#d.audit.record({
        type: 'run.approved',
        runId,
        actor: userId,
        data: { approvals: outcome.approvals, required: outcome.required },
      });
      await this.#execute(runId);
    }
    return this.#mustGet(runId);
  }

  async #retry(runId: string, userId: string, channel: string): Promise<RunRecord> {
    const run = await this.#visibleRun(runId, channel);
    if (run.state !== 'partial')
      throw new RunStateConflictError(
        `Only a partially applied run can be retried; \`${runId}\` is ${run.state.replace('_', ' ')}.`,
      );
    if (userId !== run.requester) await assertApprover(this.#d.config, this.#d.directory, userId);
    const undos = await this.#d.store.listRuns({ parentRunId: run.id, limit: 20 });
    const undo = undos.find(
      (r) => !['failed', 'denied', 'expired', 'plan_failed', 'superseded'].includes(r.state),
    );
    if (undo)
      throw new RunStateConflictError(
        `Run \`${runId}\` has an undo (\`${undo.id}\`, ${undo.state.replace('_', ' ')}); a retry would work against it.`,
      );
    await this.#d.audit.record({
      type: 'run.retried',
      runId,
      actor: userId,
      data: { approvedAt: run.approvedAt },
    });
    if (!(await this.#execute(runId, ['partial'])))
      throw new RunStateConflictError(`Run \`${runId}\` is already being retried.`);
    return this.#mustGet(runId);
  }

  /**
   * Executes an approved (or, for a retry, partially applied) run exactly once: only the caller whose
   * transition to `running` commits proceeds. Returns whether this caller ran it.
   */
  async #executeUntracked(runId: string, from: RunState[] = ['approved']): Promise<boolean> {
    const claim = { executor: this.#d.replica.id, heartbeatAt: this.#d.now() };
    if (!(await this.#d.store.transition(runId, from, 'running', claim, this.#d.now()))) return false;
    const run = await this.#mustGet(runId);
    const runbook = this.#runbookOf(run);
    const procedure = this.#procedureOf(run, runbook);
    const account = this.#account(run);
    const scope = this.#scope(run, runbook, runbook.access);
    const signal = AbortSignal.timeout(this.#d.executionTimeoutMs);
    const ctx = this.#context(run, account, scope, run.approvedAt, signal);
    const plan = run.plan as unknown as Plan;
    try {
      const material = procedure.recheck
        ? await procedure.recheck(ctx, plan)
        : (await this.#replan(run, runbook, ctx)).material;
      const hash = hashMaterial(material);
      await this.#d.audit.record({
        type: 'plan.rechecked',
        runId,
        data: { planHash: hash, matches: hash === run.planHash },
      });
      if (hash !== run.planHash) {
        await this.#supersede(run, runbook, plan.material, material);
        return true;
      }
      await this.#d.audit.record({
        type: 'execute.started',
        runId,
        actor: run.requester,
        data: { approvedAt: run.approvedAt },
      });
      const { files, ...result } = await procedure.execute(ctx, plan);
      await this.#d.audit.record({
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
      await this.#d.audit.record({
        type: 'verify.finished',
        runId,
        data: { ok: verification.ok, summary: verification.summary, data: verification.data },
      });
      // Partly applied: kept open for a retry (same approval) or an undo of what was done.
      const state: RunState =
        result.ok && verification.ok ? 'succeeded' : result.partial ? 'partial' : 'failed';
      await this.#d.store.transition(
        runId,
        ['running'],
        state,
        { result: { execute: result, verify: verification } as unknown as Json },
        this.#d.now(),
      );
      await this.#d.audit.record({ type: 'run.finished', runId, data: { state } });
      const done = await this.#mustGet(runId);
      await this.#show(done);
      if (files && files.length > 0) {
        await this.#d.notifier
          .upload(done, files)
          .catch((err: unknown) => this.#d.log.warn({ err, runId }, 'could not attach the result files'));
      }
      await this.#d.notifier.reply(
        done,
        `${state === 'succeeded' ? 'Done' : state === 'partial' ? 'Partially applied' : 'Finished with problems'}: ${result.summary} ${verification.summary}`,
      );
    } catch (error) {
      const e = asQuellError(error);
      this.#d.log.error({ err: error, runId }, 'run failed');
      await this.#d.store.transition(runId, ['running'], 'failed', { error: errorJson(e) }, this.#d.now());
      await this.#d.audit.record({
        type: 'run.finished',
        runId,
        data: { state: 'failed', code: e.code, message: e.message },
      });
      const failed = await this.#mustGet(runId);
      await this.#show(failed);
      await this.#d.notifier.reply(failed, `Failed: ${e.message}`);
    } finally {
      scope.dispose();
      this.#d.aws.release(runId);
    }
    return true;
  }

  async #replan(run: RunRecord, runbook: AnyRunbook, ctx: RunContext): Promise<Plan> {
    if (run.kind === 'run') return runbook.plan(ctx, run.input);
    const parent = await this.#mustGet(run.parentRunId ?? '');
    if (runbook.undo === 'irreversible') throw new RunStateConflictError('irreversible');
    return runbook.undo.plan(ctx, undoSource(parent));
  }

  async #supersede(run: RunRecord, runbook: AnyRunbook, before: Json, after: Json): Promise<void> {
    const differences = diffMaterial(before, after);
    const error = new PlanChangedError(differences);
    await this.#d.store.transition(
      run.id,
      ['running'],
      'superseded',
      { error: errorJson(error) },
      this.#d.now(),
    );
    await this.#d.audit.record({ type: 'plan.changed', runId: run.id, data: { differences } });
    const superseded = await this.#mustGet(run.id);
    await this.#show(superseded);
    await this.#d.notifier.reply(superseded, `${error.message} A new request with the current plan follows.`);
    const awsIdentity = run.source === 'cli' ? await this.#awsIdentityOf(run.id) : undefined;
    const requester: Requester = {
      user: run.requester,
      channel: run.channel,
      source: run.source,
      ...(awsIdentity ? { awsIdentity } : {}),
    };
    if (run.kind === 'undo' && run.parentRunId)
      await this.#requestUndo(run.parentRunId, requester).catch(() => undefined);
    else await this.#start({ runbook, input: run.input as CommonInput }, requester);
  }

  async #resolveAccount(
    runbook: AnyRunbook,
    input: CommonInput,
    runId: string,
    requester: Requester,
  ): Promise<AccountConfig> {
    const accounts = this.#d.config.accounts;
    if (input.account !== undefined) {
      const account = accounts.find((a) => a.alias === input.account);
      if (!account) throw new InputInvalidError([`unknown account \`${input.account}\``], runbook.usage);
      return account;
    }
    if (accounts.length === 1 && accounts[0]) return accounts[0];
    if (!runbook.locateAccount)
      throw new InputInvalidError(['several accounts are configured: add `account=`'], runbook.usage);
    // Only the accounts this channel may use are searched (the CLI is in no channel: all of them).
    const allowed = accounts.filter((a) => {
      if (!guardedByChannel(requester)) return true;
      try {
        assertChannelAllows(this.#d.config, requester.channel, runbook.id, a.alias);
        return true;
      } catch {
        return false;
      }
    });
    const scopes: ScopedAws[] = [];
    try {
      return await runbook.locateAccount(
        {
          accounts: allowed,
          scopeFor: (account: AccountConfig) => {
            const scope = this.#d.aws.scope({
              account,
              tier: 'read',
              runId,
              runbook: runbook.id,
              sourceIdentity: requester.user,
              region: runbook.defaultRegion?.(account) ?? account.regions[0] ?? this.#d.config.aws.region,
            });
            scopes.push(scope);
            return scope;
          },
        },
        input,
      );
    } finally {
      for (const s of scopes) s.dispose();
    }
  }

  #resolveRegion(runbook: AnyRunbook, input: CommonInput, account: AccountConfig): string {
    if (input.region !== undefined) {
      if (!account.regions.includes(input.region)) {
        throw new InputInvalidError(
          [
            `region \`${input.region}\` is not configured for account \`${account.alias}\` (${account.regions.join(', ')})`,
          ],
          runbook.usage,
        );
      }
      return input.region;
    }
    return runbook.defaultRegion?.(account) ?? account.regions[0] ?? this.#d.config.aws.region;
  }

  #procedureOf(run: RunRecord, runbook: AnyRunbook): Procedure<unknown, Json, Json> {
    if (run.kind === 'run') return runbook;
    if (runbook.undo === 'irreversible')
      throw new RunStateConflictError(`\`${runbook.id}\` cannot be undone.`);
    return runbook.undo;
  }

  #scope(run: RunRecord, runbook: AnyRunbook, tier: RoleTier): ScopedAws {
    const account = this.#account(run);
    return this.#d.aws.scope({
      ...this.#sessionRequest(run, runbook, tier),
      account,
      region: run.region ?? this.#d.config.aws.region,
    });
  }

  #sessionRequest(run: RunRecord, runbook: AnyRunbook, tier: RoleTier) {
    return {
      account: this.#account(run),
      tier,
      runId: run.id,
      runbook: runbook.id,
      sourceIdentity: run.requester,
    };
  }

  #context(
    run: RunRecord,
    account: AccountConfig,
    scope: ScopedAws,
    approvedAt: number | null,
    signal: AbortSignal,
  ): RunContext {
    return {
      runId: run.id,
      runbook: run.runbook,
      actor: run.requester,
      account,
      region: run.region ?? this.#d.config.aws.region,
      aws: scope,
      scopeFor: (alias: string) => {
        const other = this.#d.config.accounts.find((a) => a.alias === alias);
        if (!other)
          throw new NotAllowedError(
            `Account \`${alias}\` is not configured; nothing runs against it.`,
            'accounts',
          );
        if (guardedByChannel(run)) assertChannelAllows(this.#d.config, run.channel, run.runbook, alias);
        return this.#d.aws.scope({
          account: other,
          tier: scope.tier,
          runId: run.id,
          runbook: run.runbook,
          sourceIdentity: run.requester,
          region:
            this.#runbookOf(run).defaultRegion?.(other) ?? other.regions[0] ?? this.#d.config.aws.region,
        });
      },
      log: this.#d.log.child({ runId: run.id, runbook: run.runbook }),
      signal,
      approvedAt: approvedAt === null ? null : new Date(approvedAt),
      now: () => new Date(this.#d.now()),
      progress: (text: string) => this.#d.notifier.reply(run, text).catch(() => undefined),
      ledger: createRunLedger(this.#d.store, this.#d.now),
      // The runbook's own config fragment, as validated for this account.
      config: accountSetting(account, this.#d.runbooks.find((r) => r.id === run.runbook)?.config?.key),
    };
  }

  #account(run: RunRecord): AccountConfig {
    const account = this.#d.config.accounts.find((a) => a.id === run.accountId);
    if (!account)
      throw new NotAllowedError(
        `Account ${run.accountId} is no longer configured; nothing runs against it.`,
        'accounts',
      );
    return account;
  }

  #runbookOf(run: RunRecord): AnyRunbook {
    const runbook = this.#d.runbooks.find((r) => r.id === run.runbook);
    if (!runbook) throw new RunStateConflictError(`Runbook \`${run.runbook}\` is no longer available.`);
    return runbook;
  }

  /** A run by id wherever it was requested (App Home, where approvers act on runs of every channel). */
  async #knownRun(runId: string): Promise<RunRecord> {
    if (!isRunId(runId)) throw new RunNotFoundError(runId.slice(0, 20));
    const run = await this.#d.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    return run;
  }

  async #visibleRun(runId: string, channel: string): Promise<RunRecord> {
    if (!isRunId(runId)) throw new RunNotFoundError(runId.slice(0, 20));
    const run = await this.#d.store.getRun(runId);
    if (!run || run.channel !== channel) throw new RunNotFoundError(runId);
    return run;
  }

  async #mustGet(runId: string): Promise<RunRecord> {
    const run = await this.#d.store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    return run;
  }

  /** Shows the run's current state on its card; calls for one run are applied in order. */
  #show(run: RunRecord): Promise<void> {
    const previous = this.#showChains.get(run.id) ?? Promise.resolve();
    const next = previous.then(() => this.#showNow(run.id, run));
    this.#showChains.set(run.id, next);
    void next.finally(() => {
      if (this.#showChains.get(run.id) === next) this.#showChains.delete(run.id);
    });
    return this.#track(next);
  }

  async #showNow(runId: string, fallback: RunRecord): Promise<void> {
    try {
      // Always the latest state (and the card's ts, once an earlier call has posted it).
      const run = (await this.#d.store.getRun(runId)) ?? fallback;
      const ts = await this.#d.notifier.showRun({
        run,
        decisions: await this.#d.store.listDecisions(run.id),
        runbook: this.#runbookOf(run),
      });
      if (ts && ts !== run.messageTs) await this.#d.store.patchRun(run.id, { messageTs: ts }, this.#d.now());
    } catch (err) {
      this.#d.log.warn({ err, runId }, 'could not show the run');
    }
  }

  async #refuse(runId: string, requester: Requester, error: unknown): Promise<void> {
    this.#confirmations.delete(runId);
    const e = asQuellError(error);
    let text = e.message;
    if (e.code === ErrorCode.Unknown || e.code === ErrorCode.Storage) {
      // Unexpected: the user gets a reference, the log gets the same reference and the cause.
      const ref = createErrorRef();
      this.#d.log.error({ err: error, runId, ref }, 'run could not start');
      text = `${e.message} (reference \`${ref}\`)`;
    }
    await this.#d.audit
      .record({
        type: 'command.rejected',
        runId,
        actor: requester.user,
        data: { code: e.code, message: e.message },
      })
      .catch((err: unknown) => this.#d.log.error({ err, runId }, 'could not audit a refusal'));
    await this.#d.notifier.tell(requester, text).catch(() => undefined);
  }

  #track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    work.then(
      () => this.#inFlight.delete(work),
      () => this.#inFlight.delete(work),
    );
    return work;
  }
}

/**
 * Fails closed on a misspelt runbook id in the configuration: a typo under `approvals.runbooks` would
 * otherwise silently drop that runbook's `requesters` restriction or approval count.
 */
export function assertConfigNamesKnownRunbooks(config: Config, runbooks: readonly AnyRunbook[]): void {
  const known = new Set(runbooks.map((r) => r.id));
  const problems: string[] = [];
  for (const id of Object.keys(config.approvals.runbooks)) {
    if (!known.has(id))
      problems.push(`approvals.runbooks.${id}: unknown runbook "${id}" (known: ${[...known].join(', ')})`);
  }
  for (const [channel, rule] of Object.entries(config.channels)) {
    rule.runbooks.forEach((id, i) => {
      if (id !== '*' && !known.has(id))
        problems.push(`channels.${channel}.runbooks.${i}: unknown runbook "${id}"`);
    });
  }
  if (problems.length > 0) throw new ConfigInvalidError('the configuration', problems);
}

/** An account's value of a runbook's config fragment (`undefined` when it sets none). */
function accountSetting(account: AccountConfig, key: string | undefined): unknown {
  return key === undefined ? undefined : (account as Record<string, unknown>)[key];
}

/** The top-level fields of two material objects that differ, as `field: before → after`. */
export function diffMaterial(before: Json, after: Json): string[] {
  const a = (before ?? {}) as Record<string, Json>;
  const b = (after ?? {}) as Record<string, Json>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const short = (v: Json | undefined) => {
    const text = v === undefined ? 'absent' : typeof v === 'string' ? v : canonicalJson(v);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  };
  const diffs = keys
    .filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null))
    .map((k) => `${k}: ${short(a[k])} → ${short(b[k])}`);
  return diffs.length > 0 ? diffs : ['the plan differs'];
}

/** What an undo plans from: the original run's stored plan and execution result. */
function undoSource(parent: RunRecord): { plan: Plan; result: Outcome } {
  const result = (parent.result as { execute?: Outcome } | null)?.execute;
  if (!parent.plan || !result)
    throw new RunStateConflictError(`Run \`${parent.id}\` has no recorded result to undo.`);
  return { plan: parent.plan as unknown as Plan, result };
}

function errorJson(error: QuellError): Json {
  return { code: error.code, message: error.message };
}
