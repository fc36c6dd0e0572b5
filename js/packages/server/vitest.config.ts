import { defineConfig } from "vitest/config";

// Integration tests against a real PostgreSQL with smartsync (test/global-setup.ts
// prepares a database in the server that PG* names; test/run.mjs starts a
// throwaway cluster with pg_virtualenv when none is named).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
