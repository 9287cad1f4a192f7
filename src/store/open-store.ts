/** Chooses the store implementation from `storage.url`. */
import { PostgresStore } from './postgres-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

/** Whether `url` names a PostgreSQL database. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(url);
}

/**
 * Opens and migrates the store named by `url`: `sqlite:<path>` (embedded, one process) or
 * `postgres://…` / `postgresql://…` (several replicas; the password comes from PGPASSWORD when the URL
 * has none). `migrate: false` opens without changing the schema (for read-only tools such as
 * `quell audit verify`).
 */
export async function openStore(url: string, options: { migrate?: boolean } = {}): Promise<Store> {
  const store = isPostgresUrl(url) ? new PostgresStore(url) : new SqliteStore(url);
  if (options.migrate === false) return store;
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/** The URL with any password replaced, for logs and messages. */
export function redactDatabaseUrl(url: string): string {
  if (!isPostgresUrl(url)) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    for (const key of [...parsed.searchParams.keys()]) {
      if (/password|sslkey|sslpassword/i.test(key)) parsed.searchParams.set(key, 'redacted');
    }
    return parsed.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
