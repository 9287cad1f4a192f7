/**
 * The approval state machine, as one pure function the store runs inside its transaction:
 * awaiting_approval → approved (N distinct approvals) | denied (any deny, final) | expired.
 * Nobody decides on their own request; a person counts once; a closed run takes no more decisions.
 */
import type { DecisionEvaluator } from '../store/store.ts';

/** Judges a decision. See DecisionEvaluator. */
export const evaluateDecision: DecisionEvaluator = (run, decisions, decision) => {
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
  const approvals = new Set(decisions.filter((d) => d.decision === 'approve').map((d) => d.userId));
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
};
