import { defineConfig } from 'vitest/config';

// Unit tests: fake-indexeddb, fake timers, an in-memory fake server; no network, no database.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
    // IndexedDB's classes as globals (idb checks instanceof IDBRequest); each test opens its own IDBFactory
    setupFiles: ['fake-indexeddb/auto'],
  },
});
