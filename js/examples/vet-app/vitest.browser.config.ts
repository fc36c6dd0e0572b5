import { defineConfig } from 'vitest/config';

// The browser tests: real PostgreSQL, real @smartsync/server, Debian's Chromium. One file at
// a time (each starts a browser; the machine has two cores).
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
