/**
 * One declaration per runbook: id, risk, zod input (the only parser of user input), IAM actions, and
 * plan / execute / verify / undo. The engine drives the lifecycle; a runbook only talks to AWS through
 * the scoped clients in its context.
 */
import { z } from 'zod';
import type { Risk } from '../approvals/approval-policy.ts';
import type { RoleLimit } from '../aws/build-iam-policies.ts';
import type { SessionGrant, SessionTarget } from '../aws/build-session-policy.ts';
import type { ScopedAws } from '../aws/client-factory.ts';
import type { RateLimit } from '../aws/rate-limits.ts';
import type { RoleTier } from '../aws/sessions.ts';
import type { AccountConfig, ConfigFragment } from '../config.ts';
import { AccountAliasSchema, AwsRegionSchema } from '../config-fields.ts';
import { InputInvalidError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Json, LedgerRecord, LedgerRecordWrite, RunRecord } from '../store/store.ts';
import type { CommandArgs } from './engine/command-grammar.ts';

export type { Risk } from '../approvals/approval-policy.ts';
export type { RoleLimit } from '../aws/build-iam-policies.ts';
export type { SessionGrant, SessionTarget } from '../aws/build-session-policy.ts';

/** Options every runbook may take. */
export interface CommonInput {
  account?: string | undefined;
  region?: string | undefined;
  reason?: string | undefined;
}

/** Shared option schemas, so every runbook words the same errors the same way. */
export const AccountOptionSchema = AccountAliasSchema.optional();
export const RegionOptionSchema = AwsRegionSchema.optional();
export const ReasonOptionSchema = z
  .string()
  .min(3, 'reason must be at least 3 characters')
  .max(500, 'reason must be at most 500 characters')
  .optional();
/** `force=true` overrides a refusal the plan explains (default VPC, rotation already in progress, …). */
export const ForceOptionSchema = z
  .enum(['true', 'false'], { error: 'force is `true` or `false`' })
  .transform((value) => value === 'true')
  .optional();

/** One entry a run keeps in its ledger: `key` is the runbook's own (`acl/<account>/<region>/…`). */
export type LedgerEntry<V extends Json = Json> = Omit<LedgerRecord, 'value'> & { value: V };

/** An entry to write: which run it belongs to, its key, its value. */
export type LedgerWrite<V extends Json = Json> = Omit<LedgerRecordWrite, 'value'> & { value: V };

/**
 * The part of the store a runbook may write: state it must keep between execute and undo (isolate-vpc
 * records each subnet's network ACL before moving it, so that restore can put it back). Entries belong
 * to a run and are keyed by the runbook; `typedLedger` gives a runbook its own value type, checked on read.
 */
export interface RunLedger<V extends Json = Json> {
  /**
   * Writes entries in one transaction, before the change they describe. An entry that already exists for
   * the same run and key is left exactly as it is: the first write holds the original, a retry cannot
   * overwrite it.
   */
  put(entries: readonly LedgerWrite<V>[]): Promise<void>;
  /** Replaces the values of existing entries (of any run: an undo settles its parent's), in one transaction. */
  update(entries: readonly LedgerWrite<V>[]): Promise<void>;
  /** Entries of one run (or of every run) whose key starts with `prefix`, oldest first. */
  list(filter: { runId?: string; prefix?: string }): Promise<LedgerEntry<V>[]>;
}

/**
 * A button a runbook's succeeded run offers (not its undo): it starts another run, of `runbook`, with
 * arguments read from the stored run. The button carries only the run id; the clicker is the requester,
 * and the new run goes through the same guardrails and approvals as the typed command.
 */
export interface FollowUp {
  /**
   * The button's Slack action id, unique among every runbook's buttons. Keep it once released: cards
   * already posted carry it.
   */
  actionId: string;
  label: string;
  /** The runbook the button starts. */
  runbook: string;
  /**
   * Whether `run` offers this button (default: every succeeded run of the runbook), read from the stored
   * run. A click on a button the run does not offer is refused, whatever the message carried.
   */
  offered?(run: RunRecord): boolean;
  /** The button's text for `run`, when it names something of the run (default: `label`). */
  labelFor?(run: RunRecord): string;
  /**
   * The command arguments, from the stored run (never from the message). Throws RunStateConflictError
   * when the run has nothing to start from.
   */
  args(run: RunRecord): CommandArgs;
}

/** What a runbook's code sees: the run, its AWS scope, a logger, an abort signal. */
export interface RunContext {
  runId: string;
  runbook: string;
  /** The requester (Slack user id or CLI operator). */
  actor: string;
  account: AccountConfig;
  region: string;
  aws: ScopedAws;
  /**
   * The run's AWS access in another configured account (same role tier, run id and source identity),
   * for a run that reads several accounts at once (a scheduled reminder). Refused for an account the
   * run's channel may not use. The caller disposes the scope.
   */
  scopeFor(accountAlias: string): ScopedAws;
  log: Logger;
  signal: AbortSignal;
  /** When the run was approved (or started, for break-glass and read-only runs). */
  approvedAt: Date | null;
  now(): Date;
  /** Posts a progress line in the run's thread. */
  progress(text: string): Promise<void>;
  /** Records kept beside the run in the store. */
  ledger: RunLedger;
  /**
   * The runbook's own settings for this account (its `config` fragment, validated with the rest of the
   * configuration); `undefined` when the account does not set them or the runbook declares none.
   */
  config: unknown;
}

/** One API call the plan will make, shown verbatim on the approval card. */
export interface PlannedCall {
  action: string;
  params: Record<string, string>;
}

/** A read-only dry run: what will change, and the facts it is based on. */
export interface Plan<D extends Json = Json> {
  summary: string;
  /** Label/value rows for the card (account, key, owner, last use…). */
  facts: [string, string][];
  calls: PlannedCall[];
  /** Things the approver should know (already inactive, …). */
  notes: string[];
  /** The facts that must be unchanged at execution time; hashed and compared after approval. */
  material: Json;
  /** Everything execute needs. */
  data: D;
}

/** A file attached to the run's thread (a full result too long for a message). Never stored. */
export interface OutcomeFile {
  filename: string;
  title: string;
  content: string;
}

/** What a runbook's `evidence` returns: named sections of what it read (secret-named fields are dropped). */
export type EvidenceDocument = { [section: string]: Json };

/** What execute or verify reports. */
export interface Outcome<R extends Json = Json> {
  ok: boolean;
  summary: string;
  facts: [string, string][];
  data: R;
  /** Files for the run's thread; the engine uploads them and does not store them. */
  files?: OutcomeFile[];
  /**
   * With `ok: false`: some changes were made and some were not. The run is kept as `partial`, from where
   * it can be retried (under the same approval, so `recheck` must treat the run's own changes as
   * unchanged) or undone.
   */
  partial?: boolean;
}

/** The three steps that change the world, for a run or its undo. */
export interface Procedure<P, D extends Json, R extends Json> {
  plan(ctx: RunContext, from: P): Promise<Plan<D>>;
  /**
   * Re-reads just the facts the approval rests on, right before execution, and returns them in the shape
   * of `plan.material`. Without it the engine recomputes the whole plan.
   */
  recheck?(ctx: RunContext, plan: Plan<D>): Promise<Json>;
  execute(ctx: RunContext, plan: Plan<D>): Promise<Outcome<R>>;
  verify(ctx: RunContext, plan: Plan<D>, result: Outcome<R>): Promise<Outcome>;
  /**
   * What the session that runs this plan may do, at most: every call of recheck (or the plan made again),
   * execute and verify, each on the ARNs of the resources this plan names. The engine passes them to
   * AssumeRole as the session policy. Without it the session gets the runbook's declared `iam` actions of
   * this procedure (never `*` actions) on every resource.
   */
  sessionGrants?(plan: Plan<D>, target: SessionTarget): SessionGrant[];
}

/** What an undo plans from: the original run's plan and result. */
export interface UndoSource<D extends Json, R extends Json> {
  plan: Plan<D>;
  result: Outcome<R>;
}

/** Finding the account when the user did not name one and several are configured. */
export interface LocateContext {
  accounts: AccountConfig[];
  scopeFor(account: AccountConfig): ScopedAws;
}

/** A runbook. */
export interface Runbook<
  I extends CommonInput,
  D extends Json,
  R extends Json,
  UD extends Json = Json,
  UR extends Json = Json,
> extends Procedure<I, D, R> {
  id: string;
  title: string;
  risk: Risk;
  /** One line for `help`. */
  description: string;
  /** The command form, without the slash command (`disable-key AKIA… [account=…]`). */
  usage: string;
  input: z.ZodType<I, CommandArgs>;
  /** The role tier execute uses; plans always use the read role. */
  access: RoleTier;
  /**
   * IAM actions called by plan (read role and respond role) and by execute/verify/undo (respond role).
   * `limits`: some of them narrowed in the role policy itself (by resource ARN pattern, tag or name
   * condition), for every run — `quell iam-policy` gives each limit a statement of its own.
   */
  iam: { plan: string[]; execute: string[]; undo?: string[]; limits?: RoleLimit[] };
  /** Finds the one account the input belongs to, when the user did not say. */
  locateAccount?(ctx: LocateContext, input: I): Promise<AccountConfig>;
  /** The region to use when none is given (default: the account's first region). */
  defaultRegion?(account: AccountConfig): string;
  /** Buttons a succeeded run offers, each starting another runbook (see FollowUp). */
  followUps?: readonly FollowUp[];
  /** The runbook's own settings: a field of each account, validated by its schema (see ConfigFragment). */
  config?: ConfigFragment;
  /**
   * Pacing for the AWS APIs the runbook calls, by `service` or `service:Operation` (the published limit
   * of an API it calls in bursts). Merged into the process-wide limiter table, so every runbook calling
   * the same API is paced by it; two runbooks declaring one key must agree.
   */
  rateLimits?: Record<string, RateLimit>;
  /**
   * Evidence before containment: a read-only snapshot of what the responder will need later (the key's
   * CloudTrail, the VPC's ACLs…), taken by the engine after the approval and the re-check and before
   * `execute`, with the run's execute scope. The engine hashes the document, records its SHA-256 in the
   * audit chain, attaches it to the thread and keeps it in the evidence bucket when one is configured. A
   * failure never blocks the containment: the run goes ahead and the card says the evidence is missing.
   * Its AWS calls are declared in `iam.execute`.
   */
  evidence?(ctx: RunContext, plan: Plan<D>): Promise<EvidenceDocument>;
  undo: (Procedure<UndoSource<D, R>, UD, UR> & { title: string }) | 'irreversible';
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds runbooks of every input and plan type
export type AnyRunbook = Runbook<any, any, any, any, any>;

/** Declares a runbook (an identity function that fixes its types). */
export function defineRunbook<
  I extends CommonInput,
  D extends Json,
  R extends Json,
  UD extends Json = Json,
  UR extends Json = Json,
>(runbook: Runbook<I, D, R, UD, UR>): Runbook<I, D, R, UD, UR> {
  return runbook;
}

/** Declares a runbook's config fragment (an identity function that fixes its type for `readConfig`). */
export function defineConfig<C>(fragment: ConfigFragment<C>): ConfigFragment<C> {
  return fragment;
}

/**
 * The runbook's validated settings for the run's account: the engine puts the account's value of the
 * runbook's own fragment in `ctx.config`; this gives it the fragment's type.
 */
export function readConfig<C>(ctx: Pick<RunContext, 'config'>, _fragment: ConfigFragment<C>): C | undefined {
  return ctx.config as C | undefined;
}

/** Parses command arguments with a runbook's schema; errors list every problem and show the usage. */
export function parseRunbookInput<I extends CommonInput>(
  runbook: Pick<AnyRunbook, 'input' | 'usage'>,
  args: CommandArgs,
): I {
  const parsed = (runbook.input as z.ZodType<I, CommandArgs>).safeParse(args);
  if (parsed.success) return parsed.data;
  throw new InputInvalidError(parsed.error.issues.map(describeIssue), runbook.usage);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const [where, ...rest] = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `\`${k}=\``).join(', ')}`;
  }
  if (where === 'options' && rest[0]) return `\`${rest[0]}=\`: ${issue.message}`;
  if (where === 'positional') {
    if (issue.code === 'too_big') return 'too many positional arguments';
    return rest[0] !== undefined ? `argument ${Number(rest[0]) + 1}: ${issue.message}` : issue.message;
  }
  return issue.message;
}
