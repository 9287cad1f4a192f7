/**
 * `quell audit show --run <id>`: one run's audit entries in chain order — who did what, when, and which
 * AWS calls were made — after checking the whole chain, so what is shown is known to be untampered.
 * `--json` prints the entries as stored.
 */
import { parseArgs } from 'node:util';
import { verifyAuditChain } from '../audit/chain.ts';
import type { Config } from '../config.ts';
import { openExistingStore } from '../open-store.ts';
import { isRunId } from '../runbooks/engine/run-id.ts';
import type { AuditRecord } from '../store/store.ts';
import { terminalSafe } from './format-run-text.ts';
import type { TerminalIo } from './terminal-notifier.ts';

export const AUDIT_SHOW_USAGE = 'usage: quell audit show --run <run-id> [--db URL] [--json]\n';

/** One entry as a line: sequence, time, type, actor, and what it says. */
export function describeAuditEntry(entry: AuditRecord): string {
  const data = (entry.data ?? {}) as Record<string, unknown>;
  const marks: string[] = [];
  if (data.source === 'cli') marks.push('[CLI]');
  if (entry.type === 'run.break_glass' || data.breakGlass === true) marks.push('[break-glass]');
  let detail: string;
  if (entry.type === 'aws.call' || entry.type === 'aws.intent') {
    detail = `${data.service}:${data.operation} account ${data.account} ${data.region}${
      entry.type === 'aws.call'
        ? ` → ${data.outcome}${data.errorCode ? ` ${data.errorCode}` : ''}${data.requestId ? ` (request ${data.requestId})` : ''}`
        : ' (intent)'
    }`;
  } else {
    const keys = ['runbook', 'summary', 'decision', 'state', 'how', 'review', 'code', 'message', 'channel'];
    detail = keys
      .filter((k) => data[k] !== undefined && data[k] !== null)
      .map((k) => `${k}=${typeof data[k] === 'string' ? data[k] : JSON.stringify(data[k])}`)
      .join(' ');
  }
  return terminalSafe(
    `#${entry.seq} ${new Date(entry.at).toISOString()} ${entry.type}${entry.actor ? ` by ${entry.actor}` : ''}${
      marks.length ? ` ${marks.join(' ')}` : ''
    }${detail ? ` — ${detail}` : ''}`,
    1000,
  );
}

/** Runs `quell audit show`; resolves to the exit code. */
export async function showAudit(args: string[], config: Config | undefined, io: TerminalIo): Promise<number> {
  let values: { run?: string | undefined; db?: string | undefined; json?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { run: { type: 'string' }, db: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n${AUDIT_SHOW_USAGE}`);
    return 2;
  }
  if (!values.run || !isRunId(values.run)) {
    io.err(`quell: give --run with a run id like rabcdefghijkl\n${AUDIT_SHOW_USAGE}`);
    return 2;
  }
  const url = values.db ?? config?.storage.url;
  if (!url) {
    io.err(`quell: no configuration to find the store in; give --db\n${AUDIT_SHOW_USAGE}`);
    return 2;
  }
  const store = await openExistingStore(url);
  try {
    const verdict = verifyAuditChain(await store.listAudit());
    const entries = await store.listAudit({ runId: values.run });
    if (entries.length === 0) {
      io.err(`quell: no audit entries for run ${values.run}\n`);
      return 1;
    }
    if (values.json) {
      io.out(`${JSON.stringify(entries, null, 2)}\n`);
    } else {
      const run = await store.getRun(values.run);
      if (run)
        io.out(
          `run ${run.id}: ${run.runbook} ${run.kind} by ${terminalSafe(run.requester, 64)} via ${{ slack: 'Slack', cli: 'CLI', schedule: 'a reminder schedule' }[run.source]}${run.breakGlass ? ` · break-glass, review ${run.reviewState ?? 'pending'}` : ''} · ${run.state}\n`,
        );
      for (const entry of entries) io.out(`${describeAuditEntry(entry)}\n`);
    }
    io.out(
      verdict.ok
        ? `audit chain ok: ${verdict.entries} entries\n`
        : `audit chain BROKEN at entry #${verdict.badSeq}: ${verdict.reason}\n`,
    );
    return verdict.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}
