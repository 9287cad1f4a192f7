/**
 * `quell audit export`: the chain as JSON lines, in objects of at most `chunkEntries` entries, for a SIEM.
 * Each line is one entry exactly as stored (with `prevHash` and `hash`, plus `time` in ISO 8601), so the
 * receiver can recompute every hash with the rule in docs/audit.md and link each object to the one before.
 */
import type { Store } from '../store/store.ts';

/** Where and how much to export. */
export interface ExportOptions {
  /** Key prefix, ending in `/` (or empty). */
  prefix: string;
  chainId: string;
  /** The first entry to export (1 for the whole chain). */
  fromSeq: number;
  /** Entries per object. */
  chunkEntries: number;
}

/** What was written. */
export interface ExportResult {
  entries: number;
  firstSeq: number | null;
  lastSeq: number | null;
  keys: string[];
}

/** The object key of the chunk holding entries `first`–`last`: zero-padded so keys list in chain order. */
export function exportKey(prefix: string, chainId: string, first: number, last: number): string {
  return `${prefix}${chainId}/${String(first).padStart(20, '0')}-${String(last).padStart(20, '0')}.jsonl`;
}

/** Reads the chain from `fromSeq` a chunk at a time and hands each chunk to `write`. */
export async function exportAuditChain(
  store: Store,
  write: (key: string, body: string) => Promise<void>,
  options: ExportOptions,
): Promise<ExportResult> {
  const result: ExportResult = { entries: 0, firstSeq: null, lastSeq: null, keys: [] };
  let afterSeq = Math.max(0, options.fromSeq - 1);
  for (;;) {
    const page = await store.listAudit({ afterSeq, limit: options.chunkEntries });
    const first = page[0];
    const last = page.at(-1);
    if (!first || !last) break;
    const body = page
      .map(
        (r) =>
          `${JSON.stringify({
            seq: r.seq,
            at: r.at,
            time: new Date(r.at).toISOString(),
            runId: r.runId,
            type: r.type,
            actor: r.actor,
            data: r.data,
            prevHash: r.prevHash,
            hash: r.hash,
          })}\n`,
      )
      .join('');
    const key = exportKey(options.prefix, options.chainId, first.seq, last.seq);
    await write(key, body);
    result.keys.push(key);
    result.entries += page.length;
    result.firstSeq ??= first.seq;
    result.lastSeq = last.seq;
    afterSeq = last.seq;
    if (page.length < options.chunkEntries) break;
  }
  return result;
}
