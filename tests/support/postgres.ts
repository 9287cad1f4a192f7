/**
 * A fresh database in the run's throwaway PostgreSQL cluster (started by global-setup.ts), so that each
 * test file (or each test) starts empty and files running in parallel never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** One database: its URL with the password, the same without it (for config files), and the password. */
export interface TestDatabase {
  name: string;
  url: string;
  /** The URL without the password: what a config file holds; the password goes in PGPASSWORD. */
  urlWithoutPassword: string;
  password: string;
  drop(): Promise<void>;
}

/** The cluster's superuser URL with `database` instead of `postgres`. */
function urlFor(database: string): URL {
  const url = new URL(inject('postgresUrl'));
  url.pathname = `/${database}`;
  return url;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('postgresUrl'), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database with a random name. */
export async function createTestDatabase(prefix = 'quell'): Promise<TestDatabase> {
  const name = `${prefix.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = urlFor(name);
  const password = decodeURIComponent(url.password);
  const bare = new URL(url);
  bare.password = '';
  return {
    name,
    url: url.toString(),
    urlWithoutPassword: bare.toString(),
    password,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
