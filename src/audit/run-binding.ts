/**
 * What binds the rows execution reads to the audit chain: the digest of a run's stored plan together with
 * the run fields execution acts on (who asked, which account and region, how many approvals), of each
 * approval decision, and of a finished run's stored result (what an undo plans from). The engine records
 * each digest in a chained entry when it writes the row, and recomputes it from the row before it acts:
 * a row edited or forged in the database alone no longer matches anything the chain holds.
 */
import { createHash } from 'node:crypto';
import type { DecisionRecord, Json, RunRecord } from '../store/store.ts';
import { canonicalJson } from './chain.ts';

/** The run fields a plan's digest covers: everything execution reads from the row besides the state. */
export type BoundRunFields = Pick<
  RunRecord,
  | 'id'
  | 'runbook'
  | 'kind'
  | 'parentRunId'
  | 'source'
  | 'requester'
  | 'channel'
  | 'input'
  | 'accountAlias'
  | 'accountId'
  | 'region'
  | 'requiredApprovals'
  | 'plan'
  | 'planHash'
>;

/**
 * The digest of a value as the store keeps it: JSON round-tripped first (so a Date, an undefined field or
 * a NaN hash as they will read back), then canonical JSON (so key order never matters), then SHA-256.
 */
export function digestStored(value: unknown): string {
  const stored = JSON.parse(JSON.stringify(value ?? null)) as Json;
  return createHash('sha256').update(canonicalJson(stored)).digest('hex');
}

/** The digest of a run's stored plan and of the fields execution acts on (recorded in `plan.created`). */
export function digestRunPlan(run: BoundRunFields): string {
  return digestStored({
    id: run.id,
    runbook: run.runbook,
    kind: run.kind,
    parentRunId: run.parentRunId,
    source: run.source,
    requester: run.requester,
    channel: run.channel,
    input: run.input,
    accountAlias: run.accountAlias,
    accountId: run.accountId,
    region: run.region,
    requiredApprovals: run.requiredApprovals,
    plan: run.plan,
    planHash: run.planHash,
  });
}

/** The digest of one decision: run, person, approve or deny, and when (recorded in `approval.intent`). */
export function digestDecision(decision: DecisionRecord): string {
  return digestStored({
    runId: decision.runId,
    userId: decision.userId,
    decision: decision.decision,
    at: decision.at,
  });
}

/** The digest of a finished run's stored result (recorded in `run.finished`). */
export function digestResult(result: Json | null): string {
  return digestStored(result);
}
