/**
 * Verifies the audit chain against the signed checkpoints kept outside the database. The chain alone only
 * proves it is internally consistent: whoever can write to the database can rewrite an entry and re-hash
 * every later one, or delete the newest entries, and the chain still adds up. A checkpoint signed with a
 * key the database writer does not hold, in a bucket they cannot change, pins (seq, hash) pairs: each must
 * still be in the chain. The first entry after the last checkpoint that still matches is where trust ends.
 */
import type { AuditRecord } from '../store/store.ts';
import { type ChainVerdict, verifyAuditChain } from './chain.ts';
import {
  type CheckpointClaim,
  type CheckpointSigner,
  type CheckpointStore,
  checkCheckpointSignature,
  parseCheckpointDocument,
} from './checkpoint.ts';

/** The checkpoints to verify against. */
export interface ChainAnchor {
  store: CheckpointStore;
  signer: CheckpointSigner;
  chainId: string;
}

/** A stored object that is not a genuine checkpoint of this chain. */
export interface ForgedCheckpoint {
  key: string;
  versionId: string | null;
  /** The entry it claims to anchor, when it parses. */
  seq: number | null;
  reason: string;
}

/** A genuine checkpoint the chain no longer matches. */
export interface CheckpointMismatch {
  checkpoint: CheckpointClaim;
  /** The hash the chain has at that entry now; null when the entry is gone. */
  found: string | null;
  reason: string;
}

/** The result of `verifyAnchoredChain`. */
export interface AnchoredVerdict {
  ok: boolean;
  entries: number;
  head: { seq: number; hash: string } | null;
  /** The chain's own consistency (links and hashes). */
  chain: ChainVerdict;
  /** Off when no checkpoints are configured: then only `chain` was checked. */
  anchoring:
    | { enabled: false }
    | {
        enabled: true;
        location: string;
        signer: string;
        /** Genuine checkpoints (distinct entries). */
        checkpoints: number;
        /** The newest genuine checkpoint. */
        lastCheckpoint: CheckpointClaim | null;
        /** The newest genuine checkpoint that the chain matches, with every one before it. */
        lastGood: CheckpointClaim | null;
        /** Entries newer than the newest checkpoint ("not yet anchored"). */
        unanchored: number;
      };
  forged: ForgedCheckpoint[];
  mismatches: CheckpointMismatch[];
  /**
   * When something is wrong, the first entry after the last good checkpoint (with anchoring off, the first
   * entry that breaks the chain); null when all is well.
   */
  firstSuspectSeq: number | null;
}

/** Checks `records` (the whole chain, in order) on its own and, with `anchor`, against every checkpoint. */
export async function verifyAnchoredChain(
  records: readonly AuditRecord[],
  anchor?: ChainAnchor,
): Promise<AnchoredVerdict> {
  const chain = verifyAuditChain(records);
  const last = records.at(-1);
  const head = last ? { seq: last.seq, hash: last.hash } : null;
  const base = { entries: records.length, head, chain, forged: [], mismatches: [] };
  if (!anchor) {
    return {
      ...base,
      ok: chain.ok,
      anchoring: { enabled: false },
      firstSuspectSeq: chain.ok ? null : chain.badSeq,
    };
  }

  const forged: ForgedCheckpoint[] = [];
  const genuine = new Map<string, CheckpointClaim>();
  for (const stored of await anchor.store.list()) {
    const parsed = parseCheckpointDocument(stored.body);
    if (!parsed.ok) {
      forged.push({ key: stored.key, versionId: stored.versionId, seq: null, reason: parsed.reason });
      continue;
    }
    const doc = parsed.document;
    if (!(await checkCheckpointSignature(doc, anchor.signer, anchor.chainId))) {
      forged.push({
        key: stored.key,
        versionId: stored.versionId,
        seq: doc.seq,
        reason:
          doc.chainId !== anchor.chainId
            ? `belongs to chain "${doc.chainId}", not "${anchor.chainId}"`
            : `its signature does not verify with ${anchor.signer.label}`,
      });
      continue;
    }
    genuine.set(`${doc.seq}:${doc.hash}`, { chainId: doc.chainId, seq: doc.seq, hash: doc.hash, at: doc.at });
  }
  const checkpoints = [...genuine.values()].sort((a, b) => a.seq - b.seq || a.at - b.at);

  const bySeq = new Map(records.map((r) => [r.seq, r]));
  const mismatches: CheckpointMismatch[] = [];
  let lastGood: CheckpointClaim | null = null;
  for (const checkpoint of checkpoints) {
    const entry = bySeq.get(checkpoint.seq);
    if (!entry) {
      mismatches.push({
        checkpoint,
        found: null,
        reason:
          head && checkpoint.seq > head.seq
            ? `the chain ends at #${head.seq}: entries after it were deleted (truncated)`
            : 'the entry is missing (deleted)',
      });
    } else if (entry.hash !== checkpoint.hash) {
      mismatches.push({
        checkpoint,
        found: entry.hash,
        reason: 'the entry has a different hash now (it, or an entry before it, was rewritten and re-hashed)',
      });
    } else if (mismatches.length === 0 && (chain.ok || checkpoint.seq < chain.badSeq)) {
      lastGood = checkpoint;
    }
  }
  const lastCheckpoint = checkpoints.at(-1) ?? null;
  const ok = chain.ok && mismatches.length === 0 && forged.length === 0;
  const afterGood = (lastGood?.seq ?? 0) + 1;
  return {
    ...base,
    ok,
    anchoring: {
      enabled: true,
      location: anchor.store.location,
      signer: anchor.signer.label,
      checkpoints: checkpoints.length,
      lastCheckpoint,
      lastGood,
      unanchored: head ? Math.max(0, head.seq - (lastCheckpoint?.seq ?? 0)) : 0,
    },
    forged,
    mismatches,
    // Where trust ends: the first entry after the last checkpoint the chain still matches.
    firstSuspectSeq: ok ? null : afterGood,
  };
}
