/**
 * The approval state machine, as one pure function the store runs inside its transaction:
 * awaiting_approval → approved (N distinct approvals) | denied (any deny, final) | expired.
 * Nobody decides on their own request; a person counts once; a closed run takes no more decisions.
 */
import type { DecisionEvaluator } from '../store/store.ts';

/** Judges a decision. See DecisionEvaluator. */
export const evaluateDecision: DecisionEvaluator = (run, decisions, decision) =>
  judgeDecision(run, decisions, decision, new Set());

/**
 * Judges a decision where the approvals of `departed` (earlier approvers who are no longer in the approver
 * group, looked up just before) do not count toward the quorum. Their decisions stay on record.
 */
export function evaluateDecisionWithout(departed: ReadonlySet<string>): DecisionEvaluator {
  return (run, decisions, decision) => judgeDecision(run, decisions, decision, departed);
}

function judgeDecision(
  run: Parameters<DecisionEvaluator>[0],
  decisions: Parameters<DecisionEvaluator>[1],
  decision: Parameters<DecisionEvaluator>[2],
  departed: ReadonlySet<string>,
): ReturnType<DecisionEvaluator> {
  if (run.state !== 'awaiting_approval') {
    return {
      outcome: { kind: 'rejected', reason: 'closed', state: run.state },
      nextState: null,
      record: false,
    };
  }
  if (run.expiresAt !== null && decision.at >= run.expiresAt) {
    return {
      outcome: { kind: 'rejected', reason: 'expired', state: 'expired' },
      nextState: 'expired',
      record: false,
    };
  }
  if (decision.userId === run.requester) {
    return {
      outcome: { kind: 'rejected', reason: 'self', state: run.state },
      nextState: null,
      record: false,
    };
  }
  if (decisions.some((d) => d.userId === decision.userId)) {
    return {
      outcome: { kind: 'rejected', reason: 'duplicate', state: run.state },
      nextState: null,
      record: false,
    };
  }
  if (decision.decision === 'deny') {
    return { outcome: { kind: 'denied' }, nextState: 'denied', record: true };
  }
  const approvals = new Set(
    decisions.filter((d) => d.decision === 'approve' && !departed.has(d.userId)).map((d) => d.userId),
  );
  approvals.add(decision.userId);
  const required = run.requiredApprovals;
  if (approvals.size >= required) {
    return {
      outcome: { kind: 'approved', approvals: approvals.size, required },
      nextState: 'approved',
      record: true,
    };
  }
  return {
    outcome: { kind: 'recorded', approvals: approvals.size, required },
    nextState: null,
    record: true,
  };
}
