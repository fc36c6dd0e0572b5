// useSyncStatus(): the queue's counts, a sync under way, and the last result.

import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { useSyncStatus } from '../src/index.js';
import { makeClient, providing, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => {
  cleanup();
  client?.sync.close();
});

describe('useSyncStatus', () => {
  it('counts what is queued, shows the sync under way, then its result', async () => {
    client = makeClient();
    const { result } = renderHook(() => useSyncStatus(), { wrapper: providing(client) });
    await waitFor(() => expect(result.current).toEqual({ pending: 0, failed: 0, conflicts: 0, syncing: false, lastResult: null }));

    await act(async () => {
      await client.sync.store.create('clients', { name: 'Ann' });
      await client.sync.store.create('clients', { name: 'Bea' });
    });
    await waitFor(() => expect(result.current.pending).toBe(2));
    expect(result.current.pending).toBe((await client.sync.syncQueueStorage.getStats()).pending);

    // hold the push to look at the state in the middle of the sync
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    client.server.beforePush = async () => {
      await held;
      return undefined;
    };
    let done!: Promise<unknown>;
    act(() => {
      done = client.sync.getSyncEngine().sync();
    });
    await waitFor(() => expect(result.current).toMatchObject({ syncing: true, pending: 2 }));
    await act(async () => {
      release();
      await done;
    });
    await waitFor(() => expect(result.current).toMatchObject({ syncing: false, pending: 0, lastResult: { synced: 2, failed: 0, conflicts: 0 } }));
  });

  it('counts operations the server refused for good as failed', async () => {
    client = makeClient();
    client.server.beforePush = (request) => ({
      success: false,
      results: request.operations.map((op) => ({ operationId: op.id, success: false, error: 'permission denied', code: '42501', retryable: false })),
    });
    const { result } = renderHook(() => useSyncStatus(), { wrapper: providing(client) });
    await act(async () => {
      await client.sync.store.create('clients', { name: 'Ann' });
      await client.sync.getSyncEngine().sync();
    });
    await waitFor(() => expect(result.current).toMatchObject({ pending: 0, failed: 1, lastResult: { failed: 1 } }));
  });
});
