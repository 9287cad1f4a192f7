/**
 * The engine's voice in a terminal (the break-glass CLI): the run's progress and outcome on stdout,
 * refusals on stderr, result files written next to the operator instead of uploaded to a thread.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OutcomeFile } from '../runbooks/define-runbook.ts';
import type { Requester, RunNotifier, RunView } from '../runbooks/engine/run-notifier.ts';
import { TERMINAL_STATES } from '../store/store.ts';
import { formatOutcomeText, terminalSafe } from './format-run-text.ts';

/** Where the CLI prints. */
export interface TerminalIo {
  out(text: string): void;
  err(text: string): void;
}

/** Creates the terminal RunNotifier; result files go to `outDir`. */
export function createTerminalNotifier(io: TerminalIo, outDir: string): RunNotifier {
  const printed = new Map<string, string>();
  return {
    async showRun(view: RunView) {
      const { run } = view;
      if (printed.get(run.id) === run.state) return undefined;
      printed.set(run.id, run.state);
      if (run.state === 'approved' && run.breakGlass)
        io.out('Break-glass: running now without approval; the run owes a review by an approver.\n');
      else if (run.state === 'running') io.out('Running…\n');
      else if (TERMINAL_STATES.includes(run.state)) io.out(formatOutcomeText(view));
      return undefined;
    },
    async reply(_run, text) {
      io.out(`  · ${terminalSafe(text, 3000)}\n`);
    },
    async tell(_requester: Requester, text: string) {
      io.err(`quell: ${terminalSafe(text, 3000)}\n`);
    },
    async upload(run, files: OutcomeFile[]) {
      for (const file of files) {
        const name = `${run.id}-${file.filename.replace(/[^\w.-]/g, '_')}`;
        const path = join(outDir, name);
        writeFileSync(path, file.content, { flag: 'wx' });
        io.out(
          `  result file: ${path} (${Buffer.byteLength(file.content)} bytes) — ${terminalSafe(file.title, 200)}\n`,
        );
      }
    },
  };
}
