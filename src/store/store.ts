/**
 * The storage interface: runs, approval decisions and the audit chain. Every state change that must
 * happen exactly once (a decision, claiming a run for execution) is one transaction in the store, never
 * an in-memory lock, so that concurrent clicks, Slack retries and several replicas agree.
 */

/** Where a run is in its lifecycle. Terminal states never change again. */
export type RunState =
  | 'planning'
  | 'awaiting_approval'
  | 'approved'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'denied'
  | 'expired'
  | 'superseded'
  | 'plan_failed'
  /** Some changes were made and some were not; waits for a retry (same approval) or an undo. */
  | 'partial'
  /** The replica executing it died mid-run: nobody can tell whether its AWS calls happened. */
  | 'needs_operator';

export const TERMINAL_STATES: readonly RunState[] = [
  'succeeded',
  'failed',
  'denied',
  'expired',
  'superseded',
  'plan_failed',
  'needs_operator',
];

/** A JSON value as stored. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One runbook run (or the undo of one). */
export interface RunRecord {
  id: string;
  runbook: string;
  kind: 'run' | 'undo';
  parentRunId: string | null;
  state: RunState;
  /** Who asked: a person in Slack, an operator at the CLI, or a scheduled reminder. */
  source: 'slack' | 'cli' | 'schedule';
  requester: string;
  channel: string;
  reason: string | null;
  input: Json;
  accountAlias: string | null;
  accountId: string | null;
  region: string | null;
  plan: Json | null;
  planHash: string | null;
  requiredApprovals: number;
  breakGlass: boolean;
  reviewState: 'pending' | 'reviewed' | null;
  expiresAt: number | null;
  approvedAt: number | null;
  messageTs: string | null;
  result: Json | null;
  error: Json | null;
  createdAt: number;
  updatedAt: number;
  /** The replica working on the run while it is in flight (planning, executing); see `heartbeatRuns`. */
  executor?: string | null;
  /** When that replica last showed it is alive (ms since the epoch). */
  heartbeatAt?: number | null;
}

/** One person's decision on a run. At most one per person and run. */
export interface DecisionRecord {
  runId: string;
  userId: string;
  decision: 'approve' | 'deny';
  at: number;
}

/** What a decision did, as judged inside the transaction. */
export type DecisionOutcome =
  | { kind: 'recorded'; approvals: number; required: number }
  | { kind: 'approved'; approvals: number; required: number }
  | { kind: 'denied' }
  | { kind: 'rejected'; reason: 'self' | 'duplicate' | 'closed' | 'expired'; state: RunState };

/**
 * Judges a decision against the run and its existing decisions. Pure; the store calls it inside the
 * transaction that holds the run's row, and applies `next` only when the outcome accepts the decision.
 */
export type DecisionEvaluator = (
  run: RunRecord,
  decisions: DecisionRecord[],
  decision: DecisionRecord,
) => { outcome: DecisionOutcome; nextState: RunState | null; record: boolean };

/** One audit entry before it is chained. */
export interface AuditInput {
  at: number;
  runId: string | null;
  type: string;
  actor: string | null;
  data: Json;
}

/** One audit entry as stored, hash-chained to the previous one. */
export interface AuditRecord extends AuditInput {
  seq: number;
  prevHash: string;
  hash: string;
}

/** The fields that may be changed together with a state transition. */
export type RunPatch = Partial<
  Pick<
    RunRecord,
    | 'plan'
    | 'planHash'
    | 'requiredApprovals'
    | 'expiresAt'
    | 'approvedAt'
    | 'messageTs'
    | 'result'
    | 'error'
    | 'accountAlias'
    | 'accountId'
    | 'region'
    | 'breakGlass'
    | 'reviewState'
    | 'executor'
    | 'heartbeatAt'
  >
>;

/** One slot of a schedule (a cron time), claimed by one process so that it runs exactly once. */
export interface ScheduleSlot {
  scheduleId: string;
  /** The slot's scheduled time (ms since the epoch). */
  slot: number;
  claimedBy: string;
  claimedAt: number;
  finishedAt: number | null;
  summary: Json | null;
}

/** A snoozed credential-age finding: not reminded about until `until`. */
export interface SnoozeRecord {
  accountId: string;
  keyId: string;
  until: number;
  reason: string;
  by: string;
  at: number;
}

/** One entry of a run's ledger: state a runbook keeps between execute and undo (see RunLedger). */
export interface LedgerRecord {
  runId: string;
  /** The runbook's own key, unique within the run. */
  key: string;
  value: Json;
  recordedAt: number;
  updatedAt: number;
}

/** A ledger entry to write. */
export interface LedgerRecordWrite {
  runId: string;
  key: string;
  value: Json;
}

/**
 * A security finding taken from the findings queue (GuardDuty, Security Hub), kept so that the card is
 * posted once whatever the number of replicas and however often the queue delivers it.
 */
export interface FindingRecord {
  /** The finding's own id (GuardDuty's `id`, the ASFF `Id`): at most one card per id. */
  id: string;
  /** The short reference the card's buttons carry (never the finding's content). */
  ref: string;
  /** The finding as quell shows and acts on it. */
  finding: Json;
  /** Where its card is (or is being) posted. */
  channel: string;
  /** The replica posting (or that posted) its card, and when it claimed it. */
  claimedBy: string;
  claimedAt: number;
  postedAt: number | null;
  messageTs: string | null;
}

/** What a claim on a finding found: this caller posts it, it was posted, or another replica is posting it. */
export type FindingClaim = 'claimed' | 'posted' | 'held';

/** Which runs to list. */
export interface RunFilter {
  requester?: string;
  channel?: string;
  parentRunId?: string;
  states?: readonly RunState[];
  limit: number;
}

/** The store every part of quell talks to. */
export interface Store {
  /** Applies pending migrations; safe to call when another process does the same. */
  migrate(): Promise<void>;
  /** Cheap liveness check for the health endpoint. */
  ping(): Promise<void>;
  createRun(run: RunRecord): Promise<void>;
  getRun(id: string): Promise<RunRecord | undefined>;
  /** Runs of a requester or channel, newest first. */
  listRuns(filter: RunFilter): Promise<RunRecord[]>;
  /**
   * Every break-glass run whose post-hoc review is still owed (`reviewState` pending), newest first,
   * however many newer runs there are.
   */
  listOwedReviews(): Promise<RunRecord[]>;
  /** Changes the state only if it is currently one of `from`; returns whether it did. */
  transition(
    id: string,
    from: readonly RunState[],
    to: RunState,
    patch?: RunPatch,
    now?: number,
  ): Promise<boolean>;
  /** Updates fields that are not the state (the card's message ts, the review state). */
  patchRun(id: string, patch: RunPatch, now?: number): Promise<void>;
  /** Records a decision atomically: loads the run and its decisions, evaluates, writes. */
  decide(
    decision: DecisionRecord,
    evaluate: DecisionEvaluator,
  ): Promise<{ outcome: DecisionOutcome; run: RunRecord }>;
  listDecisions(runId: string): Promise<DecisionRecord[]>;
  /** Appends to the audit chain; `chain` computes the entry's hash from the previous hash, in the transaction. */
  appendAudit(
    entry: AuditInput,
    chain: (prevHash: string, seq: number, entry: AuditInput) => string,
  ): Promise<AuditRecord>;
  /** Audit entries in chain order. */
  listAudit(filter?: { runId?: string; afterSeq?: number; limit?: number }): Promise<AuditRecord[]>;
  /**
   * Claims a schedule slot for `owner`. True for exactly one caller per slot, except that a slot
   * claimed more than `leaseMs` ago and never finished may be taken over (its claimer died).
   */
  claimScheduleSlot(
    scheduleId: string,
    slot: number,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<boolean>;
  /** Marks a claimed slot finished, with a summary of what it did. */
  finishScheduleSlot(scheduleId: string, slot: number, summary: Json, now: number): Promise<void>;
  /** The most recent slot of a schedule (claimed or finished), if any. */
  lastScheduleSlot(scheduleId: string): Promise<ScheduleSlot | undefined>;
  /**
   * Refreshes the heartbeat of the runs `owner` is working on right now (`ids`), where it is still their
   * executor and they are still in flight. A run is in flight while some replica must still act on it:
   * planning, approved (not yet claimed), running, or awaiting approval with no card yet.
   */
  heartbeatRuns(owner: string, ids: readonly string[], now: number): Promise<number>;
  /** In-flight runs whose heartbeat and last change are both older than `staleBefore` (their replica died). */
  listOrphanedRuns(staleBefore: number, limit: number): Promise<RunRecord[]>;
  /**
   * Takes over an orphaned run for `owner`: true for exactly one caller, and only while the run is still in
   * flight and still stale (a conditional update, so replicas sweeping at once cannot both win).
   */
  claimOrphanedRun(id: string, owner: string, now: number, staleBefore: number): Promise<boolean>;
  /** Stores a snooze (replacing an earlier one for the same key). */
  putSnooze(snooze: SnoozeRecord): Promise<void>;
  /** Snoozes still in force at `now`. */
  activeSnoozes(now: number): Promise<SnoozeRecord[]>;
  /**
   * Writes ledger entries in one transaction. An entry that exists for the same run and key is left
   * exactly as it is (the first write holds the original value).
   */
  putLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void>;
  /** Replaces the values of existing ledger entries, in one transaction; missing ones are not created. */
  updateLedgerEntries(entries: readonly LedgerRecordWrite[], now: number): Promise<void>;
  /** Ledger entries of one run (or of every run) whose key starts with `prefix`; oldest first. */
  listLedgerEntries(filter: { runId?: string; prefix?: string }): Promise<LedgerRecord[]>;
  /**
   * Claims a finding's card for `owner`: `claimed` for exactly one caller per finding id, `posted` once
   * its card exists, `held` while another claim is younger than `leaseMs` (a claim older than that,
   * never posted, is taken over: its replica died or could not post).
   */
  claimFinding(
    finding: Pick<FindingRecord, 'id' | 'ref' | 'finding' | 'channel'>,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<FindingClaim>;
  /** Records that `owner` posted the finding's card; false when the claim is no longer its own. */
  markFindingPosted(id: string, owner: string, messageTs: string, now: number): Promise<boolean>;
  /** Gives up `owner`'s claim on a finding whose card could not be posted, so the next delivery posts it. */
  releaseFinding(id: string, owner: string): Promise<void>;
  /** A finding by the reference its card's buttons carry. */
  getFindingByRef(ref: string): Promise<FindingRecord | undefined>;
  close(): Promise<void>;
}
