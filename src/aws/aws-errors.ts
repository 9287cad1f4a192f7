/**
 * Turns AWS SDK errors into quell errors that say what to do: the IAM action a role is missing, the
 * resource that does not exist, or that AWS kept throttling. Raw response bodies are never kept.
 */
import {
  AwsAccessDeniedError,
  AwsCallFailedError,
  AwsResourceNotFoundError,
  AwsThrottledError,
  type QuellError,
} from '../errors.ts';

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'UnauthorizedAccess',
  'AuthorizationError',
  'NotAuthorized',
]);
const NOT_FOUND =
  /^(NoSuchEntity|ResourceNotFoundException|NotFound|.*\.NotFound|Invalid.*\.NotFound|StackNotFound|TrailNotFound)/;
const THROTTLED = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);

/** SDK clients whose IAM service prefix is not their lower-cased name. */
const SERVICE_PREFIX: Record<string, string> = { SSOAdminClient: 'sso' };

/** The IAM service prefix for an SDK client name (`IAMClient` → `iam`, `SSOAdminClient` → `sso`). */
export function servicePrefix(clientName: string): string {
  return SERVICE_PREFIX[clientName] ?? clientName.replace(/Client$/, '').toLowerCase();
}

/** The IAM action for an SDK command name (`UpdateAccessKeyCommand` → `UpdateAccessKey`). */
export function operationName(commandName: string): string {
  return commandName.replace(/Command$/, '');
}

/** Maps an SDK error to a QuellError; `action` is `service:Operation`, `roleArn` the role that called. */
export function toAwsError(error: unknown, action: string, roleArn: string | undefined): QuellError {
  const e = error as { name?: string; Code?: string; message?: string; $metadata?: { requestId?: string } };
  const code = e?.name ?? e?.Code ?? 'UnknownError';
  const requestId = e?.$metadata?.requestId;
  if (ACCESS_DENIED.has(code)) {
    // AWS usually names the action: "... is not authorized to perform: iam:UpdateAccessKey on resource ...".
    const named = /perform: ([a-z0-9-]+:[A-Za-z0-9]+)/.exec(e.message ?? '')?.[1];
    return new AwsAccessDeniedError(named ?? action, roleArn, { cause: error });
  }
  if (THROTTLED.has(code)) return new AwsThrottledError(action, { cause: error });
  if (NOT_FOUND.test(code)) {
    return new AwsResourceNotFoundError(
      `AWS says the resource does not exist (\`${action}\`: ${firstSentence(e.message)})`,
      {
        cause: error,
      },
    );
  }
  return new AwsCallFailedError(action, code, requestId, { cause: error });
}

function firstSentence(message: string | undefined): string {
  return (message ?? 'not found').split('\n')[0]?.slice(0, 300) ?? 'not found';
}
