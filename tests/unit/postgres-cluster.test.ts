/** The test cluster's set-up fails with what to install, never silently, when PostgreSQL is missing. */
import { describe, expect, it } from 'vitest';
import { findPostgresBin } from '../support/postgres-cluster.ts';

describe('findPostgresBin', () => {
  it('finds the binaries of Debian’s postgresql-15 package, or says what to install', () => {
    expect(() => findPostgresBin({ QUELL_PG_BIN: '/nonexistent/pg/bin' })).toThrow(
      /PostgreSQL 15 server binaries not found in \/nonexistent\/pg\/bin.*apt-get install postgresql-15.*QUELL_PG_BIN/,
    );
    expect(findPostgresBin({})).toBe('/usr/lib/postgresql/15/bin');
  });
});
