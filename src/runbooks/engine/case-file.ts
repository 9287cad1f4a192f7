/**
 * The case file: everything quell knows of one incident thread — its runs (a run, its undo and the undo's
 * own descendants), their plans, the decisions with who and when, every AWS call with its request id, the
 * evidence hashes, and the audit entries with their chain positions and hashes — as a Markdown timeline
 * and a JSON document. Built from the store alone, so the bot and the CLI (`quell case`) export the same.
 * Text from AWS and from people is escaped for Markdown; secret-named fields are dropped and token-shaped
 * text scrubbed from both files.
 */
import { InputInvalidError, RunNotFoundError } from '../../errors.ts';
import { scrubSecrets } from '../../logger.ts';
import type { AuditRecord, DecisionRecord, Json, RunRecord, Store } from '../../store/store.ts';
import type { OutcomeFile, Plan } from '../define-runbook.ts';
import { scrubEvidence, sha256Hex } from './capture-evidence.ts';
import { isRunId } from './run-id.ts';

/** A Slack message ts (a thread's id within its channel), like 1700000000.000100. */
const THREAD_TS = /^\d{9,11}\.\d{6}$/;

/** How many generations of undo a case follows (a run, its undo, … never nests deeper in practice). */
const MAX_DEPTH = 8;

/** The runs of one case, with their decisions and audit entries. */
export interface CaseRecords {
  /** The run the thread started with. */
  root: RunRecord;
  /** The root and its descendants, oldest first. */
  runs: RunRecord[];
  decisions: Map<string, DecisionRecord[]>;
  /** The audit entries of those runs, in chain order. */
  audit: AuditRecord[];
}

/**
 * Finds the case a reference names: a run id (the case is the thread of its root run) or a thread ts in
 * `channel` (the run whose card started that thread). With a `channel` (Slack), only runs requested there
 * are found; anything else — a forged id, an unknown one, another channel's — is "no run here".
 */
export async function collectCase(
  store: Store,
  reference: string,
  channel: string | null,
): Promise<CaseRecords> {
  let start: RunRecord | undefined;
  if (isRunId(reference)) {
    start = await store.getRun(reference);
  } else if (THREAD_TS.test(reference)) {
    if (channel === null)
      throw new InputInvalidError(
        ['a thread ts names a thread only with its channel: give a run id'],
        'case <run-id>',
      );
    const recent = await store.listRuns({ channel, limit: 1000 });
    start = recent.find((r) => r.messageTs === reference);
  } else {
    throw new RunNotFoundError(reference.replace(/[^\w.-]/g, '').slice(0, 20));
  }
  if (!start || (channel !== null && start.channel !== channel)) throw new RunNotFoundError(reference);
  let root = start;
  for (let i = 0; i < MAX_DEPTH && root.parentRunId; i++) {
    const parent = await store.getRun(root.parentRunId);
    if (!parent) break;
    root = parent;
  }
  const runs: RunRecord[] = [root];
  let generation = [root];
  for (let depth = 0; depth < MAX_DEPTH && generation.length > 0; depth++) {
    const next: RunRecord[] = [];
    for (const run of generation) {
      const children = await store.listRuns({ parentRunId: run.id, limit: 100 });
      // Only the thread's own channel: an undo is always requested where its run is visible.
      next.push(...children.filter((c) => c.channel === root.channel && !runs.some((r) => r.id === c.id)));
    }
    runs.push(...next);
    generation = next;
  }
  runs.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  const decisions = new Map<string, DecisionRecord[]>();
  const audit: AuditRecord[] = [];
  for (const run of runs) {
    decisions.set(run.id, await store.listDecisions(run.id));
    audit.push(...(await store.listAudit({ runId: run.id })));
  }
  audit.sort((a, b) => a.seq - b.seq);
  return { root, runs, decisions, audit };
}

/** Who exported the case, and when. */
export interface CaseExport {
  generatedAt: number;
  generatedBy: string;
  reference: string;
}

/** The two files of a case, with their hashes. */
export interface CaseFiles {
  markdown: OutcomeFile;
  json: OutcomeFile;
}

type CallData = {
  service?: string;
  operation?: string;
  account?: string;
  region?: string;
  role?: string | null;
  outcome?: string;
  errorCode?: string | null;
  requestId?: string | null;
  httpStatus?: number | null;
  durationMs?: number;
  mutating?: boolean;
};

/** Builds the Markdown timeline and the JSON document of a case. */
export function buildCaseFiles(records: CaseRecords, meta: CaseExport): CaseFiles {
  const { root, runs, decisions, audit } = records;
  const runJson = runs.map((run) => describeRun(run, decisions.get(run.id) ?? [], audit));
  const document = scrubEvidence({
    quellCaseFile: 1,
    generatedAt: iso(meta.generatedAt),
    generatedBy: meta.generatedBy,
    reference: meta.reference,
    channel: root.channel,
    thread: root.messageTs,
    runs: runJson,
    audit: audit.map((e) => ({
      seq: e.seq,
      at: iso(e.at),
      runId: e.runId,
      type: e.type,
      actor: e.actor,
      prevHash: e.prevHash,
      hash: e.hash,
      data: e.data,
    })),
    chain: {
      entries: audit.length,
      firstSeq: audit[0]?.seq ?? null,
      lastSeq: audit.at(-1)?.seq ?? null,
      verify: 'quell audit verify recomputes every hash; each entry here carries its seq, prevHash and hash',
    },
  });
  const json = `${JSON.stringify(document, null, 2)}\n`;
  const markdown = buildMarkdown(records, meta);
  return {
    markdown: { filename: `case-${root.id}.md`, title: `Case file ${root.id} (timeline)`, content: markdown },
    json: { filename: `case-${root.id}.json`, title: `Case file ${root.id} (JSON)`, content: json },
  };
}

/** The SHA-256 and size of a file, as the audit entry of an export records them. */
export function describeFile(file: OutcomeFile): { filename: string; sha256: string; bytes: number } {
  return { filename: file.filename, sha256: sha256Hex(file.content), bytes: Buffer.byteLength(file.content) };
}

function describeRun(run: RunRecord, decisions: DecisionRecord[], audit: AuditRecord[]): Json {
  const plan = run.plan as unknown as Plan | null;
  const own = audit.filter((e) => e.runId === run.id);
  const result = run.result as {
    execute?: Json & { ok?: boolean; summary?: string; facts?: Json };
    verify?: Json & { ok?: boolean; summary?: string; facts?: Json };
  } | null;
  return {
    id: run.id,
    runbook: run.runbook,
    kind: run.kind,
    parentRunId: run.parentRunId,
    state: run.state,
    source: run.source,
    requester: run.requester,
    reason: run.reason,
    account: { alias: run.accountAlias, id: run.accountId },
    region: run.region,
    createdAt: iso(run.createdAt),
    approvedAt: run.approvedAt === null ? null : iso(run.approvedAt),
    breakGlass: run.breakGlass,
    reviewState: run.reviewState,
    requiredApprovals: run.requiredApprovals,
    plan: plan
      ? {
          summary: plan.summary,
          facts: plan.facts,
          calls: plan.calls as unknown as Json,
          notes: plan.notes,
          material: plan.material,
        }
      : null,
    planHash: run.planHash,
    decisions: decisions.map((d) => ({ user: d.userId, decision: d.decision, at: iso(d.at) })),
    result: result
      ? {
          execute: result.execute
            ? {
                ok: result.execute.ok ?? null,
                summary: result.execute.summary ?? null,
                facts: result.execute.facts ?? [],
              }
            : null,
          verify: result.verify
            ? {
                ok: result.verify.ok ?? null,
                summary: result.verify.summary ?? null,
                facts: result.verify.facts ?? [],
              }
            : null,
        }
      : null,
    error: run.error,
    evidence: own
      .filter((e) => e.type === 'evidence.captured' || e.type === 'evidence.missing')
      .map((e) => ({ seq: e.seq, at: iso(e.at), type: e.type, ...(e.data as Record<string, Json>) })),
    awsCalls: own
      .filter((e) => e.type === 'aws.call')
      .map((e) => {
        const c = e.data as CallData;
        return {
          seq: e.seq,
          at: iso(e.at),
          call: `${c.service}:${c.operation}`,
          account: c.account ?? null,
          region: c.region ?? null,
          role: c.role ?? null,
          mutating: c.mutating ?? null,
          outcome: c.outcome ?? null,
          errorCode: c.errorCode ?? null,
          requestId: c.requestId ?? null,
          httpStatus: c.httpStatus ?? null,
          durationMs: c.durationMs ?? null,
        };
      }),
    auditSeqs: own.map((e) => e.seq),
  };
}

function buildMarkdown(records: CaseRecords, meta: CaseExport): string {
  const { root, runs, decisions, audit } = records;
  const out: string[] = [];
  out.push(`# Case file: ${md(root.runbook)} ${md(root.id)}`, '');
  out.push(
    `Generated ${iso(meta.generatedAt)} by ${md(meta.generatedBy)} for \`${code(meta.reference)}\` · channel \`${code(root.channel)}\`${root.messageTs ? ` · thread \`${code(root.messageTs)}\`` : ''} · ${runs.length} run${runs.length === 1 ? '' : 's'} · audit entries #${audit[0]?.seq ?? '–'} to #${audit.at(-1)?.seq ?? '–'}`,
    '',
  );
  out.push('## Runs', '');
  for (const run of runs) {
    const plan = run.plan as unknown as Plan | null;
    out.push(
      `### ${md(run.id)} · ${md(run.runbook)}${run.kind === 'undo' ? ` · undo of ${md(run.parentRunId ?? '')}` : ''} · ${md(run.state)}`,
      '',
    );
    out.push(
      `- Requested by ${md(run.requester)} (${md(run.source)}) at ${iso(run.createdAt)}${run.reason ? `, reason: ${md(run.reason)}` : ''}`,
    );
    out.push(
      `- Account ${md(run.accountAlias ?? '')} (${md(run.accountId ?? '')}), region ${md(run.region ?? '')}`,
    );
    if (plan) {
      out.push(`- Plan: ${md(plan.summary)} (hash \`${code(run.planHash ?? '')}\`)`);
      for (const call of plan.calls)
        out.push(
          `  - \`${code(
            `${call.action} ${Object.entries(call.params)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ')}`,
          )}\``,
        );
    }
    const ds = decisions.get(run.id) ?? [];
    if (run.breakGlass)
      out.push(`- Break-glass: ran without approval; review ${md(run.reviewState ?? 'n/a')}`);
    for (const d of ds)
      out.push(`- ${d.decision === 'approve' ? 'Approved' : 'Denied'} by ${md(d.userId)} at ${iso(d.at)}`);
    if (run.requiredApprovals > 0 && ds.length === 0 && !run.breakGlass)
      out.push(`- No decision recorded (${run.requiredApprovals} required)`);
    for (const e of audit.filter((a) => a.runId === run.id && a.type.startsWith('evidence.'))) {
      const data = e.data as {
        sha256?: string;
        bytes?: number;
        key?: string | null;
        bucket?: string | null;
        reason?: string;
        message?: string;
      };
      out.push(
        e.type === 'evidence.captured'
          ? `- Evidence (audit #${e.seq}): SHA-256 \`${code(String(data.sha256))}\`, ${data.bytes} bytes${data.key ? `, s3://${md(String(data.bucket))}/${md(data.key)}` : ''}`
          : `- Evidence MISSING (audit #${e.seq}): ${md(String(data.message ?? ''))}`,
      );
    }
    const result = run.result as { execute?: { summary?: string }; verify?: { summary?: string } } | null;
    if (result?.execute?.summary) out.push(`- Result: ${md(result.execute.summary)}`);
    if (result?.verify?.summary) out.push(`- Verify: ${md(result.verify.summary)}`);
    const error = run.error as { message?: string } | null;
    if (error?.message) out.push(`- Error: ${md(error.message)}`);
    out.push('');
  }
  out.push(
    '## AWS calls',
    '',
    '| Audit # | Time (UTC) | Run | Call | Account / region | Outcome | Request id |',
    '|---|---|---|---|---|---|---|',
  );
  for (const e of audit.filter((a) => a.type === 'aws.call')) {
    const c = e.data as CallData;
    out.push(
      `| ${e.seq} | ${iso(e.at)} | ${md(e.runId ?? '')} | ${md(`${c.service}:${c.operation}`)} | ${md(`${c.account ?? ''} / ${c.region ?? ''}`)} | ${md(`${c.outcome ?? ''}${c.errorCode ? ` (${c.errorCode})` : ''}`)} | ${md(c.requestId ?? '–')} |`,
    );
  }
  out.push(
    '',
    '## Timeline (the audit chain)',
    '',
    '| Audit # | Time (UTC) | Run | Event | Actor | Details | Hash |',
    '|---|---|---|---|---|---|---|',
  );
  for (const e of audit) {
    out.push(
      `| ${e.seq} | ${iso(e.at)} | ${md(e.runId ?? '')} | ${md(e.type)} | ${md(e.actor ?? '')} | ${md(describeEntry(e), 300)} | \`${code(e.hash.slice(0, 16))}…\` |`,
    );
  }
  out.push(
    '',
    'Each entry is hash-chained to the one before it (full hashes and previous hashes are in the JSON file); `quell audit verify` recomputes the whole chain and checks it against the signed checkpoints.',
    '',
  );
  return out.join('\n');
}

/** One line saying what an audit entry records. */
function describeEntry(entry: AuditRecord): string {
  const data = (entry.data ?? {}) as Record<string, Json>;
  switch (entry.type) {
    case 'aws.call':
    case 'aws.intent': {
      const c = data as CallData;
      return `${c.service}:${c.operation}${entry.type === 'aws.call' ? ` ${c.outcome}${c.requestId ? ` request ${c.requestId}` : ''}` : ' (intent)'}`;
    }
    case 'approval.decision':
      return `${String(data.decision ?? '')}`;
    case 'evidence.captured':
      return `SHA-256 ${String(data.sha256)} (${String(data.bytes)} bytes)`;
    case 'evidence.missing':
      return String(data.message ?? '');
    case 'plan.created':
    case 'plan.rechecked':
      return `plan hash ${String(data.planHash ?? '')}`;
    case 'run.finished':
      return String(data.state ?? '');
    case 'execute.finished':
    case 'verify.finished':
      return String(data.summary ?? '');
    default:
      return '';
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Markdown-safe text on one line: secrets scrubbed, Markdown and HTML punctuation backslash-escaped (no
 * links, images, emphasis, HTML or table breaks injected), newlines folded.
 */
export function md(text: string, max = 1000): string {
  const one = scrubSecrets(text).replace(/[\r\n\t]+/g, ' ');
  const cut = one.length > max ? `${one.slice(0, max)}…` : one;
  return cut.replace(/[\\`*_{}[\]<>()#+\-.!|~&@:]/g, (c) => `\\${c}`);
}

/** Text for inside a code span: secrets scrubbed, backticks and newlines removed. */
function code(text: string): string {
  return scrubSecrets(text)
    .replace(/[`\r\n]/g, '')
    .slice(0, 300);
}
