/**
 * A run as terminal text: the same plan the Slack card shows (summary, facts, the exact API calls,
 * notes) and the same outcome, for the break-glass CLI. Pure, so tests can assert on it. Control
 * characters from AWS or the input are replaced, so nothing can rewrite the operator's terminal.
 */
import type { Outcome, Plan } from '../runbooks/define-runbook.ts';
import type { PlanChange, RunView } from '../runbooks/engine/run-notifier.ts';

/** Text safe to print: no control characters or escape sequences. */
export function terminalSafe(text: string, max = 2000): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** What changed between the plan an operator confirmed and the one the re-check found, as a list. */
export function formatPlanChange(change: PlanChange): string {
  const lines = [
    `The world changed after you confirmed run ${change.supersedes}; nothing of it was run. What changed:`,
    ...change.differences.map((d) => `  - ${terminalSafe(d, 300)}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The plan of a run, as the approval card shows it. */
export function formatPlanText(view: RunView): string {
  const { run, runbook } = view;
  const plan = run.plan as unknown as Plan | null;
  const lines = [`${runbook.id}: ${runbook.title} (${runbook.risk}) — run ${run.id}`];
  if (!plan) return `${lines.join('\n')}\n`;
  lines.push('', `  ${terminalSafe(plan.summary, 300)}`, '');
  const width = Math.max(0, ...plan.facts.map(([label]) => label.length));
  for (const [label, value] of plan.facts)
    lines.push(`  ${terminalSafe(label, 50).padEnd(width)}  ${terminalSafe(value, 300)}`);
  lines.push(`  ${'Requested by'.padEnd(width)}  ${terminalSafe(run.requester, 64)} (CLI)`);
  if (run.reason) lines.push(`  ${'Reason'.padEnd(width)}  ${terminalSafe(run.reason, 500)}`);
  if (plan.calls.length > 0) {
    lines.push('', '  API calls:');
    for (const c of plan.calls)
      lines.push(
        `    ${terminalSafe(
          `${c.action} ${Object.entries(c.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
          500,
        )}`,
      );
  }
  if (plan.notes.length > 0) {
    lines.push('', '  Notes:');
    for (const n of plan.notes) lines.push(`    - ${terminalSafe(n, 500)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The outcome of a finished run: state, result and verification with their facts, or the error. */
export function formatOutcomeText(view: RunView): string {
  const { run } = view;
  const result = run.result as { execute?: Outcome; verify?: Outcome } | null;
  const lines = [`run ${run.id}: ${run.state.replace(/_/g, ' ')}`];
  for (const part of [result?.execute, result?.verify]) {
    if (!part) continue;
    lines.push(`  ${terminalSafe(part.summary, 1000)}`);
    for (const [label, value] of part.facts)
      lines.push(`    ${terminalSafe(label, 50)}: ${terminalSafe(value, 300)}`);
  }
  const error = run.error as { message?: string } | null;
  if (error?.message) lines.push(`  ${terminalSafe(error.message, 1000)}`);
  if (run.breakGlass)
    lines.push(
      `  Break-glass: ran without approval; a review by an approver is owed (${run.reviewState === 'reviewed' ? 'reviewed' : 'pending'}).`,
    );
  return `${lines.join('\n')}\n`;
}
