/**
 * Who a break-glass operator is, from the ARN STS GetCallerIdentity returns for their base credentials:
 * an IAM user's name, an assumed role's session name (IAM Identity Center puts the person's user name
 * there) or a federated user's name. That name is the run's requester and its sessions' SourceIdentity;
 * the full ARN is kept in the audit log and decides who may request and review (approvals.identities).
 */
import { InputInvalidError } from '../errors.ts';
import { toSourceIdentity } from './sessions.ts';

/** A proven operator: the caller's ARN and the name it stands for. */
export interface OperatorIdentity {
  /** The ARN GetCallerIdentity returned. */
  arn: string;
  /** The name recorded as requester and SourceIdentity (STS's charset, 2–64 characters). */
  name: string;
}

const CALLER_ARN =
  /^arn:aws[a-z-]*:(?:iam::\d{12}:user\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)|sts::\d{12}:assumed-role\/[\w+=,.@-]+\/([\w+=,.@-]+)|sts::\d{12}:federated-user\/([\w+=,.@-]+))$/;

/** Looks like a Slack user or user-group id (and would be shown as that person in Slack). */
const SLACK_LIKE = /^[UWS][A-Z0-9]{2,20}$/;

/**
 * The operator an ARN names. Refuses the account root (AWS lets no root session assume a role) and any
 * name shaped like a Slack id: an assumed role's session name is chosen by whoever assumes it, and a
 * run must never be shown in Slack as requested by someone who did not request it.
 */
export function operatorOf(arn: string): OperatorIdentity {
  if (/^arn:aws[a-z-]*:iam::\d{12}:root$/.test(arn))
    throw new InputInvalidError([
      `your AWS credentials are the account root (${arn}), which cannot assume quell's roles: use an IAM user's or a role's credentials`,
    ]);
  const match = CALLER_ARN.exec(arn);
  const name = match?.[1] ?? match?.[2] ?? match?.[3];
  if (!name)
    throw new InputInvalidError([
      `quell cannot tell an operator from the AWS identity ${arn}: use an IAM user's or an assumed role's credentials`,
    ]);
  const sourceIdentity = toSourceIdentity(name);
  if (SLACK_LIKE.test(sourceIdentity))
    throw new InputInvalidError([
      `your AWS identity's name \`${sourceIdentity}\` (${arn}) looks like a Slack id, and a run must not be shown as requested by a Slack user who did not request it: use credentials whose user or role session name is not a Slack id (your login or e-mail address)`,
    ]);
  return { arn, name: sourceIdentity };
}
