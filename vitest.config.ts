import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Every node process the tests start (replicas, `bin/quell.js`) compiles the same modules: V8's code
// cache, kept in one directory for the run and inherited by the workers and what they start, makes each
// start cheaper. It changes how fast node starts, nothing quell does.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'quell-test-compile-cache');

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    setupFiles: ['tests/support/setup-env.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only contend for them and for the one moto_server.
    maxWorkers: 2,
    env: {
      QUELL_LOG_LEVEL: 'silent',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
    },
  },
});
