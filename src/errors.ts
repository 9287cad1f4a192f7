/**
 * Every failure quell reports, as data. Each error carries a stable `code`, a message that says what
 * went wrong and what to do next (safe to show in Slack), and optionally the underlying cause (only
 * ever logged, never shown). Modelled on Bolt's `src/errors.ts`.
 */

/** Stable codes, used in logs, audit entries and tests. */
export const ErrorCode = {
  InputInvalid: 'quell_input_invalid',
  NotAllowed: 'quell_not_allowed',
  RunNotFound: 'quell_run_not_found',
  RunStateConflict: 'quell_run_state_conflict',
  ApprovalExpired: 'quell_approval_expired',
  PlanChanged: 'quell_plan_changed',
  PlanRefused: 'quell_plan_refused',
  VerifyFailed: 'quell_verify_failed',
  AwsAccessDenied: 'quell_aws_access_denied',
  AwsResourceNotFound: 'quell_aws_resource_not_found',
  AwsThrottled: 'quell_aws_throttled',
  AwsCallFailed: 'quell_aws_call_failed',
  ConfigInvalid: 'quell_config_invalid',
  SecretMissing: 'quell_secret_missing',
  SlackUnavailable: 'quell_slack_unavailable',
  Storage: 'quell_storage',
  RunInterrupted: 'quell_run_interrupted',
  RunUnbound: 'quell_run_unbound',
  Unknown: 'quell_unknown',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class: `message` is for humans and safe to show; `cause` is for the log only. */
export class QuellError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The user's input does not parse; `usage` shows the correct form. */
export class InputInvalidError extends QuellError {
  readonly problems: string[];
  readonly usage: string | undefined;
  constructor(problems: string[], usage?: string) {
    super(ErrorCode.InputInvalid, problems.join('; '));
    this.problems = problems;
    this.usage = usage;
  }
}

/**
 * A policy (channel guardrail, approver list, self-approval rule, …) refuses the action. `rule` names the
 * configuration key (or built-in rule) that refused; `contacts` are the Slack users and user groups who
 * can change it, shown as "who can change it" (empty for rules nobody can change).
 */
export class NotAllowedError extends QuellError {
  readonly rule: string;
  readonly contacts: readonly string[];
  constructor(message: string, rule: string, contacts: readonly string[] = []) {
    super(ErrorCode.NotAllowed, message);
    this.rule = rule;
    this.contacts = contacts;
  }
}

/** A run id that does not exist (or is not visible from where it was used). */
export class RunNotFoundError extends QuellError {
  constructor(runId: string) {
    super(
      ErrorCode.RunNotFound,
      `No run \`${runId}\` here. Check the id with \`status <run-id>\` in the channel where it was requested.`,
    );
  }
}

/** The run is no longer in a state that accepts this action (already decided, denied, running, …). */
export class RunStateConflictError extends QuellError {
  constructor(message: string) {
    super(ErrorCode.RunStateConflict, message);
  }
}

/** The approval window closed before enough approvals arrived (or, for a retry, since the approval). */
export class ApprovalExpiredError extends QuellError {
  constructor(runId: string, message?: string) {
    super(
      ErrorCode.ApprovalExpired,
      message ?? `Run \`${runId}\` expired before it was approved. Request it again if it is still needed.`,
    );
  }
}

/** The world changed between approval and execution: the recomputed plan differs from the approved one. */
export class PlanChangedError extends QuellError {
  readonly differences: string[];
  constructor(differences: string[]) {
    super(
      ErrorCode.PlanChanged,
      `The plan changed since it was approved (${differences.join('; ')}); nothing was executed.`,
    );
    this.differences = differences;
  }
}

/** The runbook looked at the target and refuses to plan (for example a temporary ASIA key). */
export class PlanRefusedError extends QuellError {
  constructor(message: string) {
    super(ErrorCode.PlanRefused, message);
  }
}

/** Execution finished but the read-back does not show the intended state. */
export class VerifyFailedError extends QuellError {
  constructor(message: string) {
    super(ErrorCode.VerifyFailed, message);
  }
}

/** AWS refused a call; `action` is the IAM action the role is missing. */
export class AwsAccessDeniedError extends QuellError {
  readonly action: string;
  readonly roleArn: string | undefined;
  constructor(action: string, roleArn: string | undefined, options?: { cause?: unknown }) {
    super(
      ErrorCode.AwsAccessDenied,
      `AWS denied \`${action}\`${roleArn ? ` to \`${roleArn}\`` : ''}. Add \`${action}\` to that role's policy (\`quell iam-policy\` prints the full policy).`,
      options,
    );
    this.action = action;
    this.roleArn = roleArn;
  }
}

/** The resource named in the request does not exist in the account. */
export class AwsResourceNotFoundError extends QuellError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.AwsResourceNotFound, message, options);
  }
}

/** AWS kept throttling after the SDK's retries. */
export class AwsThrottledError extends QuellError {
  constructor(operation: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.AwsThrottled,
      `AWS throttled \`${operation}\` after every retry. Wait a minute and try again.`,
      options,
    );
  }
}

/** Any other AWS failure, with the service's error code and request id. */
export class AwsCallFailedError extends QuellError {
  readonly awsCode: string;
  readonly requestId: string | undefined;
  constructor(
    operation: string,
    awsCode: string,
    requestId: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      ErrorCode.AwsCallFailed,
      `\`${operation}\` failed with \`${awsCode}\`${requestId ? ` (request id ${requestId})` : ''}.`,
      options,
    );
    this.awsCode = awsCode;
    this.requestId = requestId;
  }
}

/** The configuration file does not validate; `problems` lists every issue by path and line. */
export class ConfigInvalidError extends QuellError {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(ErrorCode.ConfigInvalid, `${source} is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** A required secret (Slack token, signing secret) is not in the environment. */
export class SecretMissingError extends QuellError {
  constructor(message: string) {
    super(ErrorCode.SecretMissing, message);
  }
}

/** At start, Slack refused the bot token or could not be reached; the message says what to check. */
export class SlackUnavailableError extends QuellError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.SlackUnavailable, message, options);
  }
}

/** The store failed; quell fails closed and runs nothing. */
export class StorageError extends QuellError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Storage, `${message} Nothing was run; try again once storage is back.`, options);
  }
}

/**
 * The replica executing a run died mid-run; nobody can tell whether its last AWS call took effect, so the
 * run waits for an operator instead of being retried. `message` says what is known (see orphaned-runs.ts).
 */
export class RunInterruptedError extends QuellError {
  constructor(message: string) {
    super(ErrorCode.RunInterrupted, message);
  }
}

/**
 * A row execution would read (a run's plan, its decisions, the result an undo plans from) does not match
 * what the audit chain recorded when it was written: edited or forged in the database. Nothing is run.
 */
export class RunUnboundError extends QuellError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(
      ErrorCode.RunUnbound,
      `The stored run does not match the audit log, so nothing was run: ${problems.join('; ')}. Someone may have changed the database; check it and \`quell audit verify\`, then request the run again.`,
    );
    this.problems = problems;
  }
}

/** Anything unexpected, wrapped so that the cause is kept for the log but never shown. */
export class UnknownError extends QuellError {
  constructor(cause: unknown) {
    super(
      ErrorCode.Unknown,
      'Something unexpected went wrong. Nothing further was run; see the reference in the log.',
      {
        cause,
      },
    );
  }
}

/** Wraps anything thrown into a QuellError, keeping the original as `cause`. */
export function asQuellError(error: unknown): QuellError {
  return error instanceof QuellError ? error : new UnknownError(error);
}
