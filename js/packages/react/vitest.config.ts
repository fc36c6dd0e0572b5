import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// React Testing Library in happy-dom, the client on fake-indexeddb and an in-memory fake
// server (the client's unit-test model of the protocol); the server-rendering test runs in
// plain Node (its own @vitest-environment line).
export default defineConfig({
  resolve: {
    alias: { '@smartsync/client': fileURLToPath(new URL('../client/src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.{ts,tsx}'],
    environment: 'happy-dom',
    setupFiles: ['fake-indexeddb/auto'],
  },
});
