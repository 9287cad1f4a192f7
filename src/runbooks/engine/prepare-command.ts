/**
 * Before a run exists: which runbooks a user may start in a channel, and turning a parsed slash command
 * into a PreparedCommand (its runbook, its validated input, the channel's guardrail passed). Free of I/O
 * except the user-group look-ups of `listRunbooksAllowedFor`.
 */
import {
  type ApproverDirectory,
  assertChannelAllows,
  assertRequester,
} from '../../approvals/approval-policy.ts';
import type { Config } from '../../config.ts';
import { ConfigInvalidError, InputInvalidError } from '../../errors.ts';
import { type AnyRunbook, type CommonInput, parseRunbookInput } from '../define-runbook.ts';
import { BUILTIN_COMMANDS, suggestRunbook } from '../registry.ts';
import type { CommandArgs } from './command-grammar.ts';
import { guardedByChannel, type PreparedCommand, type Requester } from './run-notifier.ts';

/** Runbooks the channel's guardrail lets anyone start there (for `help`). */
export function listRunbooksAllowedIn(
  config: Config,
  runbooks: readonly AnyRunbook[],
  channel: string,
): AnyRunbook[] {
  const rule = config.channels[channel];
  if (!rule) return [];
  return runbooks.filter((r) => rule.runbooks.includes('*') || rule.runbooks.includes(r.id));
}

/** Runbooks this user may start in the channel: the channel's guardrail and per-runbook requesters. */
export async function listRunbooksAllowedFor(
  config: Config,
  runbooks: readonly AnyRunbook[],
  directory: ApproverDirectory,
  user: string,
  channel: string,
): Promise<AnyRunbook[]> {
  // `help` answers in the ack: every user group is looked up once, all at the same time, instead of
  // once per runbook one after another.
  const lookups = new Map<string, Promise<ReadonlySet<string>>>();
  const once: ApproverDirectory = {
    groupMembers: (group) => {
      const known = lookups.get(group);
      if (known) return known;
      const lookup = directory.groupMembers(group);
      lookups.set(group, lookup);
      return lookup;
    },
  };
  const candidates = listRunbooksAllowedIn(config, runbooks, channel);
  const listed = await Promise.all(
    candidates.map((runbook) =>
      assertRequester(config, once, runbook.id, user).then(
        () => true,
        () => false, // not listed as a requester of this runbook
      ),
    ),
  );
  return candidates.filter((_, i) => listed[i]);
}

/**
 * Parses the command and checks the channel's guardrail. Synchronous and free of I/O, so Slack
 * handlers can answer bad input in the acknowledgement itself.
 */
export function prepareCommand(
  config: Config,
  runbooks: readonly AnyRunbook[],
  name: string,
  args: CommandArgs,
  requester: Requester,
): PreparedCommand {
  const runbook = runbooks.find((r) => r.id === name);
  if (!runbook) {
    const suggestion = suggestRunbook(name, runbooks);
    const known = [...runbooks.map((r) => r.id), ...BUILTIN_COMMANDS].map((n) => `\`${n}\``).join(', ');
    throw new InputInvalidError([
      `\`${name}\` is not a runbook.${suggestion ? ` Did you mean \`${suggestion}\`?` : ''} Known: ${known}.`,
    ]);
  }
  const input = parseRunbookInput<CommonInput>(runbook, args);
  if (input.account !== undefined && !config.accounts.some((a) => a.alias === input.account)) {
    throw new InputInvalidError(
      [
        `unknown account \`${input.account}\`; configured: ${config.accounts.map((a) => `\`${a.alias}\``).join(', ')}`,
      ],
      runbook.usage,
    );
  }
  if (input.account === undefined && config.accounts.length > 1 && !runbook.locateAccount) {
    throw new InputInvalidError(
      [
        `several accounts are configured: add \`account=\` (${config.accounts.map((a) => a.alias).join(', ')})`,
      ],
      runbook.usage,
    );
  }
  if (guardedByChannel(requester)) assertChannelAllows(config, requester.channel, runbook.id, input.account);
  return { runbook, input };
}

/**
 * Fails closed on a misspelt runbook id in the configuration: a typo under `approvals.runbooks` would
 * otherwise silently drop that runbook's `requesters` restriction or approval count.
 */
export function assertConfigNamesKnownRunbooks(config: Config, runbooks: readonly AnyRunbook[]): void {
  const known = new Set(runbooks.map((r) => r.id));
  const problems: string[] = [];
  for (const id of Object.keys(config.approvals.runbooks)) {
    if (!known.has(id))
      problems.push(`approvals.runbooks.${id}: unknown runbook "${id}" (known: ${[...known].join(', ')})`);
  }
  for (const [channel, rule] of Object.entries(config.channels)) {
    rule.runbooks.forEach((id, i) => {
      if (id !== '*' && !known.has(id))
        problems.push(`channels.${channel}.runbooks.${i}: unknown runbook "${id}"`);
    });
  }
  if (problems.length > 0) throw new ConfigInvalidError('the configuration', problems);
}
