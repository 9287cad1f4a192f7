/**
 * The hook through which every AWS call is reported (to the audit log, by the engine). The intent of a
 * mutating call is reported and awaited before the call is sent.
 */

/** One AWS call as reported. Parameters are reported for intents only, and sanitised by the receiver. */
export interface AwsCall {
  runId: string;
  service: string;
  operation: string;
  accountId: string;
  region: string;
  roleArn: string | undefined;
  mutating: boolean;
  params?: Record<string, unknown>;
}

/** What happened to a call. */
export interface AwsCallOutcome extends AwsCall {
  outcome: 'ok' | 'error';
  errorCode?: string | undefined;
  requestId?: string | undefined;
  httpStatus?: number | undefined;
  attempts?: number | undefined;
  durationMs: number;
}

/** Receives call reports. `intent` is awaited before a mutating call is sent. */
export interface AwsCallRecorder {
  intent(call: AwsCall): Promise<void>;
  done(outcome: AwsCallOutcome): Promise<void>;
}

// Operations that change nothing. Everything else counts as mutating and has its intent written first.
const READ_ONLY_OPERATION =
  /^(Get|List|Describe|Lookup|Head|Search|Simulate|Decode|Generate(Credential|ServiceLastAccessed)Report|AssumeRole)/;

/** Whether an operation can change anything in the account. */
export function isMutatingOperation(operation: string): boolean {
  return !READ_ONLY_OPERATION.test(operation);
}
