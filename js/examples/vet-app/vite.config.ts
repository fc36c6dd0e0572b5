import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The packages are read from their sources (no build step for the example); /api/sync goes
// to @smartsync/server (SMARTSYNC_SERVER_URL, default http://127.0.0.1:3000) in dev and preview.
const server = process.env.SMARTSYNC_SERVER_URL ?? 'http://127.0.0.1:3000';
const proxy = { '/api/sync': { target: server, changeOrigin: false } };

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: {
      '@smartsync/client': fileURLToPath(new URL('../../packages/client/src/index.ts', import.meta.url)),
      '@smartsync/react': fileURLToPath(new URL('../../packages/react/src/index.ts', import.meta.url)),
    },
  },
  server: { proxy },
  preview: { proxy },
  build: {
    target: 'es2022',
    sourcemap: true,
    // bench.html: the page bench/bench_client_browser.sh drives (not linked from the app)
    rollupOptions: { input: { main: fileURLToPath(new URL('index.html', import.meta.url)), bench: fileURLToPath(new URL('bench.html', import.meta.url)) } },
  },
});
