/**
 * A small IAM policy evaluator, for tests only: moto does not enforce IAM, so what a session may do is
 * proved by evaluating the documents quell sends. It follows the IAM User Guide's evaluation logic for
 * identity policies and session policies ("Policy evaluation logic"): an explicit Deny wins; otherwise a
 * request is allowed only when the role's policy AND the session policy (when one was passed) allow it.
 * Supported: Effect, Action/NotAction, Resource/NotResource with `*` and `?` wildcards (case-insensitive
 * actions, case-sensitive ARNs), and the condition operators quell's policies use: StringEquals,
 * StringLike, StringNotEquals, ArnEquals, ArnLike, DateLessThan, the `ForAllValues:` prefix and missing
 * keys (a condition on a key absent from the request does not match).
 */

/** One request to authorise: the action, the resource ARN, and the request context's keys. */
export interface EvaluatedRequest {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

interface Statement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** A policy document (parsed or as the JSON text sent). */
export type PolicyInput = string | { Statement: unknown[] };

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

function wildcard(pattern: string, value: string, caseInsensitive = false): boolean {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, caseInsensitive ? 'i' : '').test(value);
}

function conditionHolds(
  operator: string,
  key: string,
  expected: string[],
  context: Record<string, string | string[]>,
): boolean {
  const forAll = operator.startsWith('ForAllValues:');
  const op = operator.replace(/^ForAllValues:/, '');
  const actual = context[key];
  if (actual === undefined) return forAll; // ForAllValues of nothing is true; anything else is false
  const test = (value: string): boolean => {
    switch (op) {
      case 'StringEquals':
        return expected.includes(value);
      case 'StringNotEquals':
        return !expected.includes(value);
      case 'StringLike':
      case 'ArnLike':
        return expected.some((p) => wildcard(p, value));
      case 'ArnEquals':
        return expected.includes(value);
      case 'DateLessThan':
        return expected.some((e) => Date.parse(value) < Date.parse(e));
      default:
        throw new Error(`iam-evaluator: unsupported condition operator ${operator}`);
    }
  };
  const values = list(actual);
  return forAll ? values.every(test) : values.some(test);
}

function matches(statement: Statement, request: EvaluatedRequest): boolean {
  const actionMatch = (patterns: string[]) => patterns.some((p) => wildcard(p, request.action, true));
  if (statement.Action !== undefined && !actionMatch(list(statement.Action))) return false;
  if (statement.NotAction !== undefined && actionMatch(list(statement.NotAction))) return false;
  const resourceMatch = (patterns: string[]) => patterns.some((p) => wildcard(p, request.resource));
  if (statement.Resource !== undefined && !resourceMatch(list(statement.Resource))) return false;
  if (statement.NotResource !== undefined && resourceMatch(list(statement.NotResource))) return false;
  for (const [operator, keys] of Object.entries(statement.Condition ?? {}))
    for (const [key, expected] of Object.entries(keys))
      if (!conditionHolds(operator, key, list(expected), request.context ?? {})) return false;
  return true;
}

function statementsOf(policy: PolicyInput): Statement[] {
  const parsed = typeof policy === 'string' ? (JSON.parse(policy) as { Statement: unknown }) : policy;
  const statements = parsed.Statement;
  return (Array.isArray(statements) ? statements : [statements]) as Statement[];
}

/** One policy's verdict: 'deny' (explicit), 'allow', or 'none' (implicit deny). */
export function verdictOf(policy: PolicyInput, request: EvaluatedRequest): 'allow' | 'deny' | 'none' {
  const hits = statementsOf(policy).filter((s) => matches(s, request));
  if (hits.some((s) => s.Effect === 'Deny')) return 'deny';
  return hits.some((s) => s.Effect === 'Allow') ? 'allow' : 'none';
}

/**
 * Whether a role session may make `request`: the role's permissions policy must allow it, and so must
 * the session policy when one was passed (undefined: no session policy, the role's permissions alone).
 */
export function isAllowed(
  rolePolicy: PolicyInput,
  sessionPolicy: PolicyInput | undefined,
  request: EvaluatedRequest,
): boolean {
  const role = verdictOf(rolePolicy, request);
  if (role !== 'allow') return false;
  if (sessionPolicy === undefined) return true;
  return verdictOf(sessionPolicy, request) === 'allow';
}
