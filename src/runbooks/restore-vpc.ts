/**
 * restore-vpc: the stand-alone form of isolate-vpc's Undo. Puts every subnet quell isolated in the VPC
 * back on the network ACL it had before (from the associations recorded in the store before each move)
 * and deletes the quarantine ACL once no subnet uses it. It works for any isolation, including one whose
 * run was superseded or only partly applied.
 */
import { z } from 'zod';
import {
  AccountOptionSchema,
  defineRunbook,
  ReasonOptionSchema,
  RegionOptionSchema,
} from './define-runbook.ts';
import {
  executeRestore,
  NETWORK_ACL_RATE_LIMITS,
  NETWORK_ACL_ROLE_LIMITS,
  planRestore,
  recheckRestore,
  restoreGrants,
  VpcIdSchema,
  verifyRestore,
} from './isolate-vpc.ts';

const RestoreVpcInputSchema = z
  .object({
    positional: z.tuple([VpcIdSchema], { error: 'give exactly one VPC id' }),
    options: z
      .object({ account: AccountOptionSchema, region: RegionOptionSchema, reason: ReasonOptionSchema })
      .strict(),
  })
  .transform(({ positional: [vpcId], options }) => ({
    vpcId,
    account: options.account,
    region: options.region,
    reason: options.reason,
  }));

/** The runbook. */
export const restoreVpc = defineRunbook({
  id: 'restore-vpc',
  title: 'Restore a VPC isolated by isolate-vpc',
  risk: 'mutating',
  description:
    'put every subnet isolate-vpc moved back on its previous network ACL and delete the quarantine ACL',
  usage: 'restore-vpc vpc-0abc… [account=prod] [region=eu-west-1] [reason="…"]',
  input: RestoreVpcInputSchema,
  access: 'respond',
  iam: {
    plan: ['ec2:DescribeNetworkAcls'],
    execute: ['ec2:DescribeNetworkAcls', 'ec2:ReplaceNetworkAclAssociation', 'ec2:DeleteNetworkAcl'],
    limits: [NETWORK_ACL_ROLE_LIMITS.deleteQuarantine],
  },
  // It moves every subnet back at once, as isolate-vpc moved them.
  rateLimits: NETWORK_ACL_RATE_LIMITS,
  plan: (ctx, input) => planRestore(ctx, input.vpcId),
  recheck: recheckRestore,
  execute: executeRestore,
  verify: verifyRestore,
  sessionGrants: restoreGrants,
  // Undoing a restore means isolating again: that is a new isolate-vpc run, with its own (destructive) approval.
  undo: 'irreversible',
});
