/**
 * The engine's ports to people: who asked (a Requester), what they are shown (a RunView), and how the
 * engine reaches them (a RunNotifier: Slack messages, or the terminal for the CLI). The engine never
 * imports Bolt; src/slack and src/cli implement these.
 */
import type { DecisionRecord, RunRecord } from '../../store/store.ts';
import type { AnyRunbook, CommonInput, OutcomeFile } from '../define-runbook.ts';

/**
 * Who asked, and from where. A CLI requester (break-glass, when Slack is down) is in no channel: the
 * channel guardrails do not apply to it, and every run of it that changes something is break-glass.
 * A scheduled requester (`schedule`: a credential-age reminder, as SCHEDULER_USER, in the reminder's
 * channel) is authorised by its own `reminders` entry of the configuration, which names its channel and
 * accounts: neither the channel guardrails nor a runbook's `requesters` list apply to it.
 */
export interface Requester {
  user: string;
  channel: string;
  source: RunRecord['source'];
  /** The CLI operator's AWS identity (ARN) from STS GetCallerIdentity; `user` is the name it stands for. */
  awsIdentity?: string;
}

/**
 * The identity of scheduled runs: their requester, and the SourceIdentity of their AWS sessions (STS
 * allows `[\w+=,.@-]`). Not the shape of a Slack user id, so it can never be mistaken for a person.
 */
export const SCHEDULER_USER = 'quell-scheduler';

/** Whether the channel guardrails apply to the requester: people in Slack (see Requester). */
export function guardedByChannel(requester: Pick<Requester, 'source'>): boolean {
  return requester.source === 'slack';
}

/** Options of `start`. */
export interface StartOptions {
  /**
   * Asked with the plan before a run that needs no approval (read-only, break-glass) executes; false
   * cancels the run. The CLI's y/N prompt. Asked again, with `changed`, when the re-check before
   * execution found the world changed after a yes: the new plan is the one asked about.
   */
  confirm?: (view: RunView, changed?: PlanChange) => Promise<boolean>;
  /**
   * The new run's id, when the caller must name it before the run starts (a scheduled reminder audits
   * its slot under it first). A fresh `newRunId()`; anything else is refused.
   */
  runId?: string;
}

/** Why a confirmation is asked again: the run it replaces, and what changed since that was confirmed. */
export interface PlanChange {
  supersedes: string;
  differences: string[];
}

/** A run as people see it: the record, its decisions and its runbook. */
export interface RunView {
  run: RunRecord;
  decisions: DecisionRecord[];
  runbook: AnyRunbook;
}

/** How the engine talks back to people (Slack messages, or the terminal for the CLI). */
export interface RunNotifier {
  /** Posts the run's card, or updates it when it has one; returns the new message's ts when it posted. */
  showRun(view: RunView): Promise<string | undefined>;
  /** Adds a line to the run's thread. */
  reply(run: RunRecord, text: string): Promise<void>;
  /** Tells the requester privately that something could not be done. */
  tell(requester: Requester, text: string): Promise<void>;
  /** Attaches files to the run's thread. */
  upload(run: RunRecord, files: OutcomeFile[]): Promise<void>;
}

/** A command that parsed and passed the channel's guardrail. */
export interface PreparedCommand {
  runbook: AnyRunbook;
  input: CommonInput;
}
