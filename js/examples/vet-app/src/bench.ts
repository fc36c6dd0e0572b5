// The page bench/bench_client_browser.sh drives in Chromium: a first sync of a large entity
// type into IndexedDB through @smartsync/client, and the same pull pages read by a bare fetch
// loop (the baseline: network, server and JSON, no IndexedDB).

import { createSmartSync, httpTransport } from '@smartsync/client';

interface Claims {
  tenant_id: string;
  client_id: string;
  practice_id: number;
  sub: string;
}

function claims(token: string): Claims {
  const part = token.split('.')[1]!;
  return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Claims;
}

/** The first sync of one entity type into an empty IndexedDB; resolves with what it took. */
async function firstSync(token: string, entityType: string, pullLimit: number): Promise<{ ms: number; pulled: number; stored: number; pages: number }> {
  const c = claims(token);
  let pages = 0;
  const fetchCounting: typeof fetch = (input, init) => {
    if (String(input).includes('/pull')) pages += 1;
    return fetch(input, init);
  };
  const sync = createSmartSync({
    transport: httpTransport({ baseUrl: '/api/sync', getToken: () => token, fetch: fetchCounting }),
    tenantId: c.tenant_id,
    practiceId: c.practice_id,
    userId: c.sub,
    deviceId: c.client_id,
    entityTypes: [entityType],
    pullLimit,
  });
  const started = performance.now();
  const result = await sync.getSyncEngine().sync();
  const ms = performance.now() - started;
  if (result.error) throw new Error(`sync failed: ${result.error.message}`);
  const stored = await sync.store.count(entityType);
  sync.close();
  return { ms, pulled: result.pulled, stored, pages };
}

/** The baseline: the same pages, fetched and parsed, then dropped. */
async function bareFetch(token: string, entityType: string, pullLimit: number): Promise<{ ms: number; pulled: number; pages: number }> {
  const started = performance.now();
  let cursor: string | undefined;
  let pulled = 0;
  let pages = 0;
  for (;;) {
    const query = new URLSearchParams({ limit: String(pullLimit), entityTypes: entityType });
    if (cursor) query.set('cursor', cursor);
    const response = await fetch(`/api/sync/pull?${query}`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
    if (!response.ok) throw new Error(`pull ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { changes: unknown[]; hasMore: boolean; cursor: string };
    pulled += page.changes.length;
    pages += 1;
    cursor = page.cursor;
    if (!page.hasMore) break;
  }
  return { ms: performance.now() - started, pulled, pages };
}

Object.assign(window, { smartsyncBench: { firstSync, bareFetch } });
