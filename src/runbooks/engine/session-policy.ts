/**
 * The session policy of each role session a run asks for (src/aws/build-session-policy.ts): the session
 * that runs an approved plan may do only what that plan's procedure declares, on the resources the plan
 * names; every other session of the run (planning, finding the account) only the runbook's declared
 * actions of the role it uses. Nothing a session may do is wider than the runbook's `iam` declaration.
 */
import {
  buildSessionPolicy,
  grantEverywhere,
  partitionOf,
  type SessionGrant,
} from '../../aws/build-session-policy.ts';
import type { RoleTier } from '../../aws/sessions.ts';
import type { AccountConfig } from '../../config.ts';
import type { RunRecord } from '../../store/store.ts';
import type { AnyRunbook, Plan } from '../define-runbook.ts';
import { procedureOf } from './run-procedure.ts';

/** The actions a runbook declares for one role tier (what `quell iam-policy` gives that role for it). */
export function declaredActions(runbook: AnyRunbook, tier: RoleTier, kind: RunRecord['kind']): string[] {
  const { plan, execute, undo = [] } = runbook.iam;
  if (tier === 'read') return [...new Set(runbook.access === 'read' ? [...plan, ...execute] : plan)];
  // The session that executes also re-checks (or plans again) and verifies: the plan's reads are in it.
  return [...new Set(kind === 'undo' ? [...plan, ...undo] : [...plan, ...execute])];
}

/**
 * The grants of a run's session with `tier` in `account`: the procedure's own, from the stored plan, for
 * the session that executes it (the runbook's access tier, once a plan is stored); else the declared
 * actions of that tier.
 */
export function sessionGrantsOf(
  run: Pick<RunRecord, 'kind' | 'plan' | 'region'>,
  runbook: AnyRunbook,
  tier: RoleTier,
  account: AccountConfig,
  region: string,
): SessionGrant[] {
  const executing = tier === runbook.access && run.plan !== null && run.plan !== undefined;
  if (executing) {
    const procedure = procedureOf(run as RunRecord, runbook);
    if (procedure.sessionGrants) {
      return procedure.sessionGrants(run.plan as unknown as Plan, {
        partition: partitionOf(account.roles[tier]),
        accountId: account.id,
        region,
      });
    }
  }
  return [grantEverywhere(declaredActions(runbook, tier, executing ? run.kind : 'run'))];
}

/** The session policy (compact JSON) of a run's session with `tier` in `account`, acting in `region`. */
export function sessionPolicyOf(
  run: Pick<RunRecord, 'kind' | 'plan' | 'region'>,
  runbook: AnyRunbook,
  tier: RoleTier,
  account: AccountConfig,
  region: string,
): string {
  return buildSessionPolicy(sessionGrantsOf(run, runbook, tier, account, region));
}
