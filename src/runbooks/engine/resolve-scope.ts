/**
 * Where a run acts and with what: the account (named, the only one, or located by the runbook), the
 * region, the assumed-role session it asks for (in the lane of its runbook's risk), and the RunContext a
 * runbook's code sees. Every scope and context of the engine is built here, so what a runbook gets
 * (its clients, its ledger) is wired in one place.
 */
import { assertChannelAllows } from '../../approvals/approval-policy.ts';
import type { ScopedAws } from '../../aws/client-factory.ts';
import type { RoleTier, SessionRequest } from '../../aws/sessions.ts';
import type { AccountConfig } from '../../config.ts';
import { InputInvalidError, NotAllowedError } from '../../errors.ts';
import type { RunRecord } from '../../store/store.ts';
import type { AnyRunbook, CommonInput, RunContext } from '../define-runbook.ts';
import { createRunLedger } from '../run-ledger.ts';
import type { EngineSettings } from './lifecycle.ts';
import { guardedByChannel, type Requester } from './run-notifier.ts';
import { sessionPolicyOf } from './session-policy.ts';
import { laneOf } from './start-lanes.ts';

/** The account a command acts on: the one it names, the only one configured, or the one the runbook finds. */
export async function resolveAccount(
  d: EngineSettings,
  runbook: AnyRunbook,
  input: CommonInput,
  runId: string,
  requester: Requester,
): Promise<AccountConfig> {
  const accounts = d.config.accounts;
  if (input.account !== undefined) {
    const account = accounts.find((a) => a.alias === input.account);
    if (!account) throw new InputInvalidError([`unknown account \`${input.account}\``], runbook.usage);
    return account;
  }
  if (accounts.length === 1 && accounts[0]) return accounts[0];
  if (!runbook.locateAccount)
    throw new InputInvalidError(['several accounts are configured: add `account=`'], runbook.usage);
  // Only the accounts this channel may use are searched (the CLI is in no channel: all of them).
  const allowed = accounts.filter((a) => {
    if (!guardedByChannel(requester)) return true;
    try {
      assertChannelAllows(d.config, requester.channel, runbook.id, a.alias);
      return true;
    } catch {
      return false;
    }
  });
  const scopes: ScopedAws[] = [];
  try {
    return await runbook.locateAccount(
      {
        accounts: allowed,
        scopeFor: (account: AccountConfig) => {
          const region = runbook.defaultRegion?.(account) ?? account.regions[0] ?? d.config.aws.region;
          const scope = d.aws.scope({
            account,
            tier: 'read',
            runId,
            runbook: runbook.id,
            sourceIdentity: requester.user,
            // No plan yet: the runbook's declared read actions.
            policy: sessionPolicyOf({ kind: 'run', plan: null, region }, runbook, 'read', account, region),
            region,
            lane: laneOf(runbook.risk),
          });
          scopes.push(scope);
          return scope;
        },
      },
      input,
    );
  } finally {
    for (const s of scopes) s.dispose();
  }
}

/** The region a command acts in: the one it names (if the account has it), or the runbook's default. */
export function resolveRegion(
  d: EngineSettings,
  runbook: AnyRunbook,
  input: CommonInput,
  account: AccountConfig,
): string {
  if (input.region !== undefined) {
    if (!account.regions.includes(input.region)) {
      throw new InputInvalidError(
        [
          `region \`${input.region}\` is not configured for account \`${account.alias}\` (${account.regions.join(', ')})`,
        ],
        runbook.usage,
      );
    }
    return input.region;
  }
  return runbook.defaultRegion?.(account) ?? account.regions[0] ?? d.config.aws.region;
}

/** The run's account as configured now; a run whose account was removed from the config runs nowhere. */
export function accountOf(d: EngineSettings, run: RunRecord): AccountConfig {
  const account = d.config.accounts.find((a) => a.id === run.accountId);
  if (!account)
    throw new NotAllowedError(
      `Account ${run.accountId} is no longer configured; nothing runs against it.`,
      'accounts',
    );
  return account;
}

/**
 * The session a run asks for with one role tier, carrying its id, runbook and requester, and its session
 * policy: once the plan is stored, the session of the runbook's access tier may do only what that plan
 * declares (session-policy.ts).
 */
export function requestSession(
  d: EngineSettings,
  run: RunRecord,
  runbook: AnyRunbook,
  tier: RoleTier,
): SessionRequest {
  const account = accountOf(d, run);
  return {
    account,
    tier,
    runId: run.id,
    runbook: runbook.id,
    sourceIdentity: run.requester,
    policy: sessionPolicyOf(run, runbook, tier, account, run.region ?? d.config.aws.region),
  };
}

/** The run's AWS scope with one role tier, paced in its runbook's lane of every AWS limit. */
export function openScope(d: EngineSettings, run: RunRecord, runbook: AnyRunbook, tier: RoleTier): ScopedAws {
  return d.aws.scope({
    ...requestSession(d, run, runbook, tier),
    account: accountOf(d, run),
    region: run.region ?? d.config.aws.region,
    lane: laneOf(runbook.risk),
  });
}

/** What a runbook's plan, execute and verify see. */
export function buildRunContext(
  d: EngineSettings,
  run: RunRecord,
  scope: ScopedAws,
  approvedAt: number | null,
  signal: AbortSignal,
): RunContext {
  return {
    runId: run.id,
    runbook: run.runbook,
    actor: run.requester,
    account: accountOf(d, run),
    region: run.region ?? d.config.aws.region,
    aws: scope,
    scopeFor: (alias: string) => {
      const other = d.config.accounts.find((a) => a.alias === alias);
      if (!other)
        throw new NotAllowedError(
          `Account \`${alias}\` is not configured; nothing runs against it.`,
          'accounts',
        );
      if (guardedByChannel(run)) assertChannelAllows(d.config, run.channel, run.runbook, alias);
      const runbook = d.runbooks.find((r) => r.id === run.runbook);
      if (!runbook) throw new NotAllowedError(`Runbook \`${run.runbook}\` is not registered.`, 'runbooks');
      const region = runbook.defaultRegion?.(other) ?? other.regions[0] ?? d.config.aws.region;
      return d.aws.scope({
        account: other,
        tier: scope.tier,
        runId: run.id,
        runbook: run.runbook,
        sourceIdentity: run.requester,
        policy: sessionPolicyOf({ ...run, region }, runbook, scope.tier, other, region),
        region,
        lane: laneOf(runbook.risk),
      });
    },
    log: d.log.child({ runId: run.id, runbook: run.runbook }),
    signal,
    approvedAt: approvedAt === null ? null : new Date(approvedAt),
    now: () => new Date(d.now()),
    progress: (text: string) => d.notifier.reply(run, text).catch(() => undefined),
    ledger: createRunLedger(d.store, d.now),
    // The runbook's own config fragment, as validated for this account.
    config: accountSetting(accountOf(d, run), d.runbooks.find((r) => r.id === run.runbook)?.config?.key),
  };
}

/** An account's value of a runbook's config fragment (`undefined` when it sets none). */
function accountSetting(account: AccountConfig, key: string | undefined): unknown {
  return key === undefined ? undefined : (account as Record<string, unknown>)[key];
}
