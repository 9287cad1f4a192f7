/**
 * `quell audit verify`: recomputes the hash chain and, when `audit.checkpoints` is configured, checks it
 * against every signed checkpoint in the bucket. Exit 0 only when the chain is consistent, every
 * checkpoint is genuine and the chain still matches each one; otherwise exit 1, naming the first entry
 * after the last good checkpoint. Without checkpoints it says plainly that the chain is unanchored.
 */
import { parseArgs } from 'node:util';
import { type AuditAnchor, createAuditAnchor } from '../audit/s3-checkpoint-anchor.ts';
import { type AnchoredVerdict, verifyAnchoredChain } from '../audit/verify-anchored-chain.ts';
import type { Config } from '../config.ts';
import { openExistingStore, redactDatabaseUrl } from '../open-store.ts';
import type { AuditRecord } from '../store/store.ts';

export const AUDIT_VERIFY_USAGE = 'usage: quell audit verify [--db URL]\n';

const UNANCHORED_NOTE =
  'this checked only that the chain is consistent with itself: anyone who can write to the database can rewrite or delete entries and re-hash the rest without this check noticing. Configure audit.checkpoints (docs/audit.md).';

/** The report of a verdict, one line per finding. */
export function describeAnchoredVerdict(verdict: AnchoredVerdict): string[] {
  const lines: string[] = [];
  const { chain, anchoring } = verdict;
  if (!chain.ok) lines.push(`audit chain BROKEN at entry #${chain.badSeq}: ${chain.reason}`);
  for (const f of verdict.forged) {
    lines.push(
      `FORGED checkpoint ${f.key}${f.versionId ? ` (version ${f.versionId})` : ''}${f.seq !== null ? ` claiming entry #${f.seq}` : ''}: ${f.reason}; ignored`,
    );
  }
  for (const m of verdict.mismatches) {
    lines.push(
      `audit chain BROKEN: checkpoint #${m.checkpoint.seq} (signed ${new Date(m.checkpoint.at).toISOString()}, hash ${m.checkpoint.hash}) no longer matches: ${m.reason}`,
    );
  }
  if (chain.ok && verdict.mismatches.length === 0) {
    lines.push(`audit chain ok: ${verdict.entries} entries, head ${verdict.head?.hash ?? '(empty)'}`);
  }
  if (!anchoring.enabled) {
    lines.push(`UNANCHORED: no audit checkpoints are configured, so ${UNANCHORED_NOTE}`);
    return lines;
  }
  if (!verdict.ok && verdict.firstSuspectSeq !== null) {
    lines.push(
      `first entry after the last good checkpoint: #${verdict.firstSuspectSeq}${
        anchoring.lastGood
          ? ` (last good checkpoint #${anchoring.lastGood.seq}, signed ${new Date(anchoring.lastGood.at).toISOString()})`
          : ' (no checkpoint matches: no entry is vouched for)'
      }`,
    );
  }
  const last = anchoring.lastCheckpoint;
  lines.push(
    last
      ? `checkpoints: ${anchoring.checkpoints} genuine in ${anchoring.location} (signatures checked with ${anchoring.signer}); newest #${last.seq} signed ${new Date(last.at).toISOString()}`
      : `checkpoints: none yet in ${anchoring.location}`,
  );
  if (verdict.head) {
    const from = (last?.seq ?? 0) + 1;
    lines.push(
      `not yet anchored (${anchoring.unanchored} entries)${anchoring.unanchored > 0 ? `: #${from}–#${verdict.head.seq}` : ''}`,
    );
  }
  lines.push(verdict.ok ? 'verdict: ok' : 'verdict: TAMPERED');
  return lines;
}

/** Runs `quell audit verify`; resolves to the exit code. `config` is undefined when it could not be read. */
export async function verifyAudit(
  args: string[],
  config: Config | undefined,
  configProblem: string | undefined,
  out: (text: string) => void,
): Promise<number> {
  let values: { db?: string | undefined };
  try {
    ({ values } = parseArgs({ args, options: { db: { type: 'string' } }, strict: true }));
  } catch (error) {
    out(`${(error as Error).message}\n${AUDIT_VERIFY_USAGE}`);
    return 2;
  }
  const url = values.db ?? config?.storage.url;
  if (!url) {
    out(
      `cannot find the audit log: ${configProblem ?? 'no configuration'}; give --db\n${AUDIT_VERIFY_USAGE}`,
    );
    return 2;
  }
  // Verifying must not create (and report as fine) an empty database at a mistyped location.
  let store: Awaited<ReturnType<typeof openExistingStore>>;
  try {
    store = await openExistingStore(url);
  } catch (error) {
    out(`cannot open the audit log at ${redactDatabaseUrl(url)}: ${(error as Error).message}\n`);
    return 1;
  }
  let entries: AuditRecord[];
  try {
    entries = await store.listAudit();
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    out(
      `cannot read the audit log at ${redactDatabaseUrl(url)}: ${cause instanceof Error ? cause.message : String(error)}\n`,
    );
    return 1;
  } finally {
    await store.close();
  }

  const settings = config?.audit.checkpoints;
  let anchor: AuditAnchor | undefined;
  try {
    if (settings) anchor = await createAuditAnchor(settings, config.aws.region);
    const verdict = await verifyAnchoredChain(
      entries,
      anchor && settings
        ? { store: anchor.store, signer: anchor.signer, chainId: settings.chainId }
        : undefined,
    );
    const lines = describeAnchoredVerdict(verdict);
    if (!config) {
      // Say what was not checked: without the configuration there is no list of checkpoints to check against.
      const i = lines.findIndex((l) => l.startsWith('UNANCHORED'));
      lines[i] =
        `UNANCHORED: the configuration could not be read (${configProblem ?? 'unknown'}), so no checkpoints were checked, and ${UNANCHORED_NOTE}`;
    }
    out(`${lines.join('\n')}\n`);
    return verdict.ok ? 0 : 1;
  } catch (error) {
    out(
      `cannot check the audit checkpoints${settings ? ` in s3://${settings.bucket}/${settings.prefix}${settings.chainId}/` : ''}: ${(error as Error).name}${
        (error as Error).name === 'SecretMissingError' ? ` (${(error as Error).message})` : ''
      }. Nothing is verified: the chain may be fine, but this cannot say so.\n`,
    );
    return 1;
  } finally {
    anchor?.destroy();
  }
}
