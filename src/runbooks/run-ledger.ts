/**
 * The run ledger as runbooks see it: a store-backed RunLedger with the clock bound, and a typed view of
 * one runbook's entries whose values are checked by its own schema when read back.
 */
import type { z } from 'zod';
import { RunStateConflictError } from '../errors.ts';
import type { Json, Store } from '../store/store.ts';
import type { LedgerEntry, RunLedger } from './define-runbook.ts';

/** The ledger over `store`, stamping writes with `now()`. */
export function createRunLedger(
  store: Pick<Store, 'putLedgerEntries' | 'updateLedgerEntries' | 'listLedgerEntries'>,
  now: () => number = Date.now,
): RunLedger {
  return {
    put: (entries) => (entries.length === 0 ? Promise.resolve() : store.putLedgerEntries(entries, now())),
    update: (entries) =>
      entries.length === 0 ? Promise.resolve() : store.updateLedgerEntries(entries, now()),
    list: (filter) => store.listLedgerEntries(filter),
  };
}

/**
 * A runbook's typed view of the ledger: values are checked by `schema` when read, so an entry that is
 * not what the runbook wrote fails closed (RunStateConflictError) instead of being trusted.
 */
export function typedLedger<V extends Json>(ledger: RunLedger, schema: z.ZodType<V>): RunLedger<V> {
  return {
    put: (entries) => ledger.put(entries),
    update: (entries) => ledger.update(entries),
    async list(filter) {
      return (await ledger.list(filter)).map((entry): LedgerEntry<V> => {
        const parsed = schema.safeParse(entry.value);
        if (!parsed.success) {
          throw new RunStateConflictError(
            `Run \`${entry.runId}\` has a ledger entry (${entry.key}) that is not in the shape its runbook wrote; nothing is done from it.`,
          );
        }
        return { ...entry, value: parsed.data };
      });
    },
  };
}
