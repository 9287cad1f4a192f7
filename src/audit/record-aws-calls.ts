/** Writes every AWS call to the audit log: the intent of a mutating call before it is sent, every outcome after. */
import type { AwsCall, AwsCallOutcome, AwsCallRecorder } from '../aws/call-recorder.ts';
import type { AuditLog } from './audit-log.ts';

/** A recorder that appends `aws.intent` and `aws.call` entries. */
export function createAuditCallRecorder(audit: AuditLog): AwsCallRecorder {
  const describe = (call: AwsCall) => ({
    service: call.service,
    operation: call.operation,
    account: call.accountId,
    region: call.region,
    role: call.roleArn ?? null,
    mutating: call.mutating,
  });
  return {
    async intent(call: AwsCall) {
      await audit.record({
        type: 'aws.intent',
        runId: call.runId,
        data: { ...describe(call), params: call.params ?? {} },
      });
    },
    async done(outcome: AwsCallOutcome) {
      await audit.record({
        type: 'aws.call',
        runId: outcome.runId,
        data: {
          ...describe(outcome),
          outcome: outcome.outcome,
          errorCode: outcome.errorCode ?? null,
          requestId: outcome.requestId ?? null,
          httpStatus: outcome.httpStatus ?? null,
          attempts: outcome.attempts ?? null,
          durationMs: outcome.durationMs,
        },
      });
    },
  };
}
