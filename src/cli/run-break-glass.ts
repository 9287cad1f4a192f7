/**
 * `quell run <runbook> <args…>`: the break-glass path for when Slack is down. The same grammar, the
 * same engine, plan and sessions (SourceIdentity is the operator as AWS knows them: the name in the ARN
 * STS GetCallerIdentity returns for the base credentials; `--as` is only a note), the same audit log — every entry of the run is under the run id, marked as coming from the CLI, and a run
 * that changes something is break-glass: it runs without approval after a y/N confirmation at the
 * terminal (`--yes` for scripts) and owes an approver's review afterwards (App Home, or the card).
 */

import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { ApproverDirectory } from '../approvals/approval-policy.ts';
import { type OperatorIdentity, operatorOf } from '../aws/operator-identity.ts';
import { composeCore } from '../compose-core.ts';
import type { Config } from '../config.ts';
import { InputInvalidError, QuellError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { parseCommandText } from '../runbooks/engine/command-grammar.ts';
import { Engine } from '../runbooks/engine/engine.ts';
import type { PlanChange, Requester, RunView } from '../runbooks/engine/run-notifier.ts';
import { formatPlanChange, formatPlanText, terminalSafe } from './format-run-text.ts';
import { createTerminalNotifier, type TerminalIo } from './terminal-notifier.ts';

/** The terminal the CLI talks to (injectable for tests). */
export interface BreakGlassIo extends TerminalIo {
  /** Whether stdin is a terminal a person can answer on. */
  isTty: boolean;
  /** Asks a question and resolves to the line typed. */
  ask(question: string): Promise<string>;
}

/** The channel a CLI run is recorded under (it is in none; the guardrails do not apply). */
export const CLI_CHANNEL = 'cli';

export const RUN_USAGE = `usage: quell run <runbook> [arguments…] [--as NAME] [--yes] [--db URL] [--out DIR]

  The same grammar as the slash command, e.g.
    quell run disable-key AKIAIOSFODNN7EXAMPLE account=prod reason="key in a public gist"
    quell run key-age account=dev

  --as NAME   a note recorded with the run (your Slack user id, like U0ONCALL); who is acting is proved
              by your AWS credentials (STS GetCallerIdentity) and is the sessions' SourceIdentity
  --yes       confirm without asking (for scripts); without it a terminal is required
  --db URL    the store holding the audit log (default: storage.url of the configuration)
  --out DIR   where result files (CSV/JSON) are written (default: the current directory)
`;

const OPERATOR = /^[\w+=,.@-]{2,64}$/;

/** Quotes argv tokens back into command text, so the shell's splitting and the grammar's agree. */
export function toCommandText(tokens: readonly string[]): string {
  return tokens
    .map((token) => {
      const eq = token.indexOf('=');
      const [key, value] = eq > 0 ? [token.slice(0, eq + 1), token.slice(eq + 1)] : ['', token];
      if (value === '' && key === '') return '""';
      return /[\s"\\]/.test(value) || (key !== '' && value === '')
        ? `${key}"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
        : `${key}${value}`;
    })
    .join(' ');
}

/** Runs `quell run …`; resolves to the exit code (0 succeeded, 1 refused/failed/cancelled, 2 usage). */
export async function runBreakGlass(args: string[], config: Config, io: BreakGlassIo): Promise<number> {
  let parsed: ReturnType<typeof parseRunArgs>;
  try {
    parsed = parseRunArgs(args);
  } catch (error) {
    io.err(`${(error as Error).message}\n${RUN_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    io.out(RUN_USAGE);
    return values.help ? 0 : 2;
  }
  const osUser = safeOsUser();
  const note = values.as;
  if (note !== undefined && !OPERATOR.test(note)) {
    io.err(
      `quell: \`${terminalSafe(note, 64)}\` cannot be recorded as --as: give 2–64 letters, digits or + = , . @ _ - (your Slack user id, like U0ONCALL). It is a note only: who acts is proved by your AWS credentials.\n`,
    );
    return 2;
  }

  let command: ReturnType<typeof parseCommandText>;
  try {
    command = parseCommandText(toCommandText(positionals));
    if (command.name === 'help' || command.name === 'status')
      throw new InputInvalidError([`\`${command.name}\` is a Slack command; give a runbook to run`]);
  } catch (error) {
    io.err(`quell: ${error instanceof QuellError ? error.message : String(error)}\n${RUN_USAGE}`);
    return 2;
  }

  // Logs go to stderr, quietly: stdout is the run's own output.
  const log = createLogger({ level: process.env.QUELL_LOG_LEVEL ?? 'warn', destination: process.stderr });
  const { store, audit, sessions, limiters, aws } = await composeCore(config, log, {
    ...(values.db ? { storageUrl: values.db } : {}),
  });
  // Who acts is what the base credentials prove, never a name typed on the command line.
  let operator: OperatorIdentity;
  try {
    operator = operatorOf(await sessions.callerIdentity());
  } catch (error) {
    io.err(
      `quell: cannot prove who you are with STS GetCallerIdentity: ${error instanceof QuellError ? error.message : String(error)}\n`,
    );
    await limiters.stop();
    sessions.destroy();
    await store.close();
    return 1;
  }
  io.out(
    `Acting as ${terminalSafe(operator.name, 64)} (${terminalSafe(operator.arn, 200)}, from your AWS credentials)${note ? `; --as ${note} is recorded as a note` : ''}.\n`,
  );
  // Slack is down: user groups cannot be resolved, so a group-only requester list refuses (fail closed).
  const directory: ApproverDirectory = { groupMembers: async () => new Set<string>() };
  const engine = new Engine({
    config,
    store,
    audit,
    aws,
    directory,
    notifier: createTerminalNotifier(io, values.out ?? process.cwd()),
    log,
  });
  const requester: Requester = {
    user: operator.name,
    channel: CLI_CHANNEL,
    source: 'cli',
    awsIdentity: operator.arn,
  };
  try {
    let prepared: ReturnType<Engine['prepare']>;
    try {
      prepared = engine.prepare(command.name, command.args, requester);
    } catch (error) {
      io.err(`quell: ${error instanceof QuellError ? error.message : String(error)}\n`);
      if (error instanceof InputInvalidError && error.usage) io.err(`usage: quell run ${error.usage}\n`);
      return error instanceof InputInvalidError ? 2 : 1;
    }
    let cancelled = false;
    /** The run the operator last confirmed: a superseded run's replacement, once they confirmed it. */
    let confirmedRunId: string | undefined;
    const confirm = async (view: RunView, changed?: PlanChange): Promise<boolean> => {
      if (changed) io.out(`\n${formatPlanChange(changed)}\n`);
      io.out(formatPlanText(view));
      const changes = view.run.requiredApprovals > 0;
      let how: 'read-only' | '--yes' | 'prompt';
      if (!changes) how = 'read-only';
      else if (changed) {
        // --yes confirmed the plan that was shown; a different one needs a person at a terminal.
        if (!io.isTty) {
          io.err(
            'quell: the plan changed after it was confirmed and stdin is not a terminal: nothing more was run (--yes confirms only the plan shown). Run it again if it is still needed.\n',
          );
          cancelled = true;
          return false;
        }
        const answer = await io.ask(
          `\nThe plan CHANGED since you confirmed it (see above). Run the NEW plan now WITHOUT approval (break-glass: an approver must review it afterwards)? [y/N] `,
        );
        if (!/^y(es)?$/i.test(answer.trim())) {
          cancelled = true;
          return false;
        }
        how = 'prompt';
      } else if (values.yes) {
        how = '--yes';
        io.out('\nBreak-glass: --yes given, running without approval.\n');
      } else if (!io.isTty) {
        io.err('quell: this run changes AWS and stdin is not a terminal: give --yes to confirm it.\n');
        cancelled = true;
        return false;
      } else {
        const answer = await io.ask(
          `\nRun this now WITHOUT approval (break-glass: an approver must review it afterwards)? [y/N] `,
        );
        if (!/^y(es)?$/i.test(answer.trim())) {
          cancelled = true;
          return false;
        }
        how = 'prompt';
      }
      await audit.record({
        type: 'run.confirmed',
        runId: view.run.id,
        actor: operator.name,
        data: {
          source: 'cli',
          breakGlass: changes,
          how,
          osUser,
          host: hostname(),
          operator: operator.name,
          awsIdentity: operator.arn,
          ...(note ? { as: note } : {}),
          ...(changed ? { supersedes: changed.supersedes, differences: changed.differences } : {}),
        },
      });
      confirmedRunId = view.run.id;
      return true;
    };
    const run = await engine.start(prepared, requester, { confirm });
    await engine.idle();
    if (cancelled) {
      io.out('Cancelled: nothing was run.\n');
      return 1;
    }
    if (!run) return 1;
    // A superseded run ends in its replacement, the run the operator confirmed last.
    const runId = confirmedRunId ?? run.id;
    const final = await store.getRun(runId);
    io.out(`\nAudit: quell audit show --run ${runId}\n`);
    return final?.state === 'succeeded' ? 0 : 1;
  } finally {
    await engine.idle();
    await audit.close();
    await limiters.stop();
    sessions.destroy();
    await store.close();
  }
}

function parseRunArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      as: { type: 'string' },
      yes: { type: 'boolean' },
      db: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
}

function safeOsUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME;
  }
}
