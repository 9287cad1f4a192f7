/**
 * Session policies: the `Policy` quell passes with each AssumeRole, so that a run's session can do only
 * what its plan said (the effective permissions are the intersection of the role's policy and this one;
 * IAM User Guide, "Session policies"). A runbook declares grants — actions, the ARNs they act on and the
 * conditions that narrow them — and this file packs them into the smallest document that says the same.
 */
import { PlanRefusedError } from '../errors.ts';

/** IAM condition block: operator → key → value(s), as in a policy statement. */
export type PolicyConditions = Record<string, Record<string, string | string[]>>;

/**
 * What a run's session may do: `actions` on `resources` (ARNs, IAM wildcards allowed; `*` only for actions
 * AWS authorises on no resource, such as `ec2:Describe*`), when `conditions` hold. `broad`: the same
 * permission in fewer characters (ARN wildcards kept to the plan's VPC, tag or path by a condition), used
 * only when the exact grants do not fit in a session policy.
 */
export interface SessionGrant {
  actions: readonly string[];
  resources: readonly string[];
  conditions?: PolicyConditions | undefined;
  broad?: { resources: readonly string[]; conditions?: PolicyConditions | undefined } | undefined;
}

/** Where a session acts: the partition of its role, the account, the region of the run. */
export interface SessionTarget {
  partition: string;
  accountId: string;
  region: string;
}

/**
 * The longest `Policy` AssumeRole accepts, in plaintext characters (STS API Reference, AssumeRole: "The
 * plaintext that you use for both inline and managed session policies can't exceed 2,048 characters").
 */
export const MAX_SESSION_POLICY_CHARS = 2048;

/** The session policy of a session that may do nothing. */
export const DENY_EVERYTHING = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Deny', Action: '*', Resource: '*' }],
});

/** The partition of an ARN (`arn:aws-us-gov:…` → `aws-us-gov`). */
export function partitionOf(arn: string): string {
  return arn.split(':')[1] || 'aws';
}

function statementOf(actions: Set<string>, resources: readonly string[], conditions?: PolicyConditions) {
  const list = (values: Iterable<string>) => {
    const sorted = [...new Set(values)].sort();
    return sorted.length === 1 ? sorted[0] : sorted;
  };
  return {
    Effect: 'Allow',
    Action: list(actions),
    Resource: list(resources),
    ...(conditions && Object.keys(conditions).length > 0 ? { Condition: conditions } : {}),
  };
}

/** Grants with the same resources and conditions become one statement (fewer characters, same meaning). */
function pack(
  grants: readonly {
    actions: readonly string[];
    resources: readonly string[];
    conditions?: PolicyConditions | undefined;
  }[],
): string {
  const merged = new Map<
    string,
    { actions: Set<string>; resources: readonly string[]; conditions?: PolicyConditions | undefined }
  >();
  for (const grant of grants) {
    if (grant.actions.length === 0) continue;
    if (grant.actions.some((a) => a === '*' || a.endsWith(':*')))
      throw new PlanRefusedError(
        `A session policy names actions one by one; \`${grant.actions.join(', ')}\` is a wildcard. Declare the runbook's actions in its \`iam\` and \`sessionGrants\`.`,
      );
    const resources = [...new Set(grant.resources)].sort();
    const key = JSON.stringify([resources, grant.conditions ?? null]);
    const existing = merged.get(key);
    if (existing) for (const action of grant.actions) existing.actions.add(action);
    else merged.set(key, { actions: new Set(grant.actions), resources, conditions: grant.conditions });
  }
  const statements = [...merged.values()].map((g) => statementOf(g.actions, g.resources, g.conditions));
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

/**
 * The session policy for `grants`, compact JSON of at most MAX_SESSION_POLICY_CHARS characters: the exact
 * grants when they fit, else each grant's `broad` form. Refuses (nothing runs) when even that is too long.
 * A run that declares no action gets a session that may do nothing (not one without a policy, which would
 * have the whole role).
 */
export function buildSessionPolicy(grants: readonly SessionGrant[]): string {
  if (grants.every((g) => g.actions.length === 0)) return DENY_EVERYTHING;
  const exact = pack(grants);
  if (exact.length <= MAX_SESSION_POLICY_CHARS) return exact;
  const broad = pack(grants.map((g) => (g.broad ? { actions: g.actions, ...g.broad } : g)));
  if (broad.length <= MAX_SESSION_POLICY_CHARS) return broad;
  throw new PlanRefusedError(
    `The plan touches too many resources for one session policy (${broad.length} characters; AWS allows ${MAX_SESSION_POLICY_CHARS}). Split the run, or give the runbook's grants a \`broad\` form.`,
  );
}

/** A grant of `actions` on every resource: for actions AWS authorises on no resource, or runbooks that name none. */
export function grantEverywhere(actions: readonly string[]): SessionGrant {
  return { actions, resources: ['*'] };
}
