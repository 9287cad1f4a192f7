/**
 * What an approval binds to: the plan's material facts, hashed when the plan is made and again just
 * before execution; when the hashes differ the run is superseded and the differences are shown.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../audit/chain.ts';
import type { Json } from '../../store/store.ts';

/** The hash an approval binds to: the plan's material facts, canonically serialised. */
export function hashMaterial(material: Json): string {
  return createHash('sha256').update(canonicalJson(material)).digest('hex');
}

/** The top-level fields of two material objects that differ, as `field: before → after`. */
export function diffMaterial(before: Json, after: Json): string[] {
  const a = (before ?? {}) as Record<string, Json>;
  const b = (after ?? {}) as Record<string, Json>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const short = (v: Json | undefined) => {
    const text = v === undefined ? 'absent' : typeof v === 'string' ? v : canonicalJson(v);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  };
  const diffs = keys
    .filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null))
    .map((k) => `${k}: ${short(a[k])} → ${short(b[k])}`);
  return diffs.length > 0 ? diffs : ['the plan differs'];
}
