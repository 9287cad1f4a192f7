/**
 * release-instance: the stand-alone form of isolate-instance's Undo. Puts every network interface quell
 * moved back on the security groups it had, associates the instance profile again, starts the instance if
 * the isolation stopped it, removes quell's tags and deletes the quarantine group once nothing uses it —
 * all from what the isolating runs recorded in their ledger before each change, never from a message. It
 * works for any isolation of the instance, including one that was superseded or only partly applied.
 */
import { z } from 'zod';
import {
  AccountOptionSchema,
  defineRunbook,
  ReasonOptionSchema,
  RegionOptionSchema,
} from './define-runbook.ts';
import {
  executeRelease,
  INSTANCE_ROLE_LIMITS,
  InstanceIdSchema,
  planRelease,
  RELEASE_IAM,
  recheckRelease,
  verifyRelease,
} from './isolate-instance.ts';

const ReleaseInstanceInputSchema = z
  .object({
    positional: z.tuple([InstanceIdSchema], { error: 'give exactly one instance id' }),
    options: z
      .object({ account: AccountOptionSchema, region: RegionOptionSchema, reason: ReasonOptionSchema })
      .strict(),
  })
  .transform(({ positional: [instanceId], options }) => ({
    instanceId,
    account: options.account,
    region: options.region,
    reason: options.reason,
  }));

/** The runbook. */
export const releaseInstance = defineRunbook({
  id: 'release-instance',
  title: 'Release an EC2 instance isolated by isolate-instance',
  risk: 'mutating',
  description:
    'put every network interface isolate-instance moved back on its security groups and associate the instance profile again',
  usage: 'release-instance i-0abc… [account=prod] [region=eu-west-1] [reason="…"]',
  input: ReleaseInstanceInputSchema,
  access: 'respond',
  iam: {
    plan: [
      'ec2:DescribeInstances',
      'ec2:DescribeIamInstanceProfileAssociations',
      'ec2:DescribeSecurityGroups',
      'ec2:DescribeNetworkInterfaces',
    ],
    execute: RELEASE_IAM,
    limits: INSTANCE_ROLE_LIMITS,
  },
  plan: (ctx, input) => planRelease(ctx, input.instanceId),
  recheck: recheckRelease,
  execute: executeRelease,
  verify: verifyRelease,
  // Undoing a release means isolating again: a new isolate-instance run, with its own (destructive) approval.
  undo: 'irreversible',
});
