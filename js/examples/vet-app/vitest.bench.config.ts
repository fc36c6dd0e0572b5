import { defineConfig } from 'vitest/config';

// The browser benchmark (bench/bench_client_browser.sh): figures printed, nothing asserted.
export default defineConfig({
  test: {
    include: ['test/bench/**/*.bench.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
  },
});
