// @vitest-environment node
// Under server rendering: importing the package touches no browser global, and the hooks
// render their server snapshots (online, nothing loaded yet) without touching IndexedDB.

import { describe, expect, it } from 'vitest';
import { renderToString } from 'react-dom/server';

describe('server rendering', () => {
  it('imports without window and renders MyComponent and the data hooks', async () => {
    expect(typeof (globalThis as { window?: unknown }).window).toBe('undefined');
    expect(typeof (globalThis as { document?: unknown }).document).toBe('undefined');
    const { SmartSyncProvider, useNetworkStatus, useSyncStatus, useEntities, useConflicts } = await import('../src/index.js');
    const { createSmartSync } = await import('@smartsync/client');

    // a client as a server would build one for rendering: no IndexedDB here, nothing opened
    let opened = 0;
    const indexedDB = new Proxy({} as IDBFactory, {
      get() {
        opened += 1;
        throw new Error('IndexedDB touched during server rendering');
      },
    });
    const client = createSmartSync({
      transport: { kind: 'none', push: async () => ({ success: true, results: [] }), pull: async () => ({ success: true, timestamp: 0, changes: [], hasMore: false, cursor: 'c' }), resolveConflict: async () => { throw new Error('no'); }, health: async () => undefined },
      tenantId: 'happy-paws',
      deviceId: 'server',
      entityTypes: ['clients'],
      indexedDB,
      locks: null,
      broadcastChannel: null,
    });
    const openedAtCreate = opened; // createSmartSync reads the last result once (and fails quietly here)

    function MyComponent() {
      const { status, isOffline, timeSinceOnline, triggerSync } = useNetworkStatus();
      const { pending, syncing } = useSyncStatus();
      const { data: clients, loading } = useEntities('clients');
      const { conflicts } = useConflicts();
      return (
        <div>
          Status: {status}
          {isOffline && `Offline for ${Math.floor(timeSinceOnline / 1000)}s`}
          <button onClick={triggerSync}>Sync Now</button>
          <span>pending {pending}</span>
          <span>{syncing ? 'syncing' : 'idle'}</span>
          <span>{loading ? 'loading' : `${clients.length} clients`}</span>
          <span>{conflicts.length} conflicts</span>
        </div>
      );
    }

    const html = renderToString(
      <SmartSyncProvider client={client}>
        <MyComponent />
      </SmartSyncProvider>,
    );
    expect(html).toContain('Status: <!-- -->online');
    expect(html).toContain('pending <!-- -->0');
    expect(html).toContain('loading');
    expect(html).toContain('0<!-- --> conflicts');
    expect(opened).toBe(openedAtCreate);
    client.close();
  });
});
