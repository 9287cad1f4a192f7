/** Chooses the store implementation from `storage.url`. */
import { existsSync } from 'node:fs';
import { databasePasswordFrom } from './aws/load-secrets.ts';
import { InputInvalidError } from './errors.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { Store } from './store/store.ts';

/** Whether `url` names a PostgreSQL database. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(url);
}

/**
 * Opens and migrates the store named by `url`: `sqlite:<path>` (embedded, one process) or
 * `postgres://…` / `postgresql://…` (several replicas; the password comes from PGPASSWORD, or from the
 * Secrets Manager secret PGPASSWORD_SECRET_ARN names, when the URL has none). `migrate: false` opens
 * without changing the schema (for read-only tools such as `quell audit verify`).
 */
export async function openStore(
  url: string,
  options: { migrate?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Store> {
  let store: Store;
  if (isPostgresUrl(url)) {
    const password = databasePasswordFrom(options.env ?? process.env);
    // Read once now, so an unreadable secret stops the start with its own message, not a refused login.
    await password?.();
    // pg loads only for a PostgreSQL URL: the SQLite default never needs it.
    const { PostgresStore } = await import('./store/postgres-store.ts');
    store = new PostgresStore(url, password ? { password } : {});
  } else store = new SqliteStore(url);
  if (options.migrate === false) return store;
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/**
 * Opens an existing store for reading (audit verify, audit show): a SQLite file must already exist and
 * a PostgreSQL database is never migrated, so a mistyped location fails instead of becoming an empty,
 * "valid" audit log. SQLite files are migrated only to bring an older quell's file up to date.
 */
export async function openExistingStore(url: string): Promise<Store> {
  const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : undefined;
  if (file !== undefined && file !== ':memory:' && !existsSync(file)) {
    throw new InputInvalidError([`there is no quell database at ${file}`]);
  }
  return openStore(url, { migrate: !isPostgresUrl(url) });
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
