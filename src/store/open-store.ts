/** Chooses the store implementation from `storage.url`. */
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

/** Opens and migrates the store named by `url` (`sqlite:<path>`). */
export async function openStore(url: string): Promise<Store> {
  const store = new SqliteStore(url);
  await store.migrate();
  return store;
}
