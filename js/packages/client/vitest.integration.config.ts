import { defineConfig } from 'vitest/config';

// Integration tests: a real PostgreSQL with smartsync (the PG* environment; see
// test/integration/run.sh), one file at a time (setup_postgrest() creates cluster-wide roles).
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    environment: 'node',
    setupFiles: ['fake-indexeddb/auto'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
