/**
 * What `help` lists: the runbooks this user may run in this channel. Per-runbook requesters can name
 * user groups, whose members Slack is asked for; `help` answers in the acknowledgement, so that lookup
 * is bounded, and when Slack is slow the restricted runbooks are left out (fail closed) rather than
 * listed without a check.
 */
import { channelAllows, policyContacts } from '../approvals/approval-policy.ts';
import type { AnyRunbook } from '../runbooks/define-runbook.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import type { HelpContext } from './build-help.ts';

/** The runbooks `user` may start in `channel`, within `timeoutMs`. */
export async function listRunnableRunbooks(
  engine: Engine,
  user: string,
  channel: string,
  timeoutMs = 1_500,
): Promise<AnyRunbook[]> {
  const unrestricted = engine
    .runbooksAllowedIn(channel)
    .filter((r) => engine.config.approvals.runbooks[r.id]?.requesters === undefined);
  let timer: NodeJS.Timeout | undefined;
  const fallback = new Promise<AnyRunbook[]>((resolve) => {
    timer = setTimeout(() => resolve(unrestricted), timeoutMs);
  });
  try {
    return await Promise.race([engine.runbooksAllowedFor(user, channel), fallback]);
  } catch {
    return unrestricted;
  } finally {
    clearTimeout(timer);
  }
}

/** The channel facts `help` words its answer with. */
export function helpContext(engine: Engine, channel: string): HelpContext {
  const config = engine.config;
  const rule = config.channels[channel];
  const aliases = config.accounts.map((a) => a.alias);
  return {
    channel,
    listed: rule !== undefined,
    accounts: rule
      ? aliases.filter((alias) => rule.runbooks.length > 0 && anyRunbookAllows(engine, channel, alias))
      : [],
    contacts: policyContacts(config),
  };
}

function anyRunbookAllows(engine: Engine, channel: string, alias: string): boolean {
  return engine.runbooks.some((r) => channelAllows(engine.config, channel, r.id, alias));
}
