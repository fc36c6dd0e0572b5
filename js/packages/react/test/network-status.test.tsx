// useNetworkStatus(): the spec's hook, used exactly as the spec's MyComponent uses it.

import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { MissingProviderError, useNetworkStatus } from '../src/index.js';
import { makeClient, providing, type TestClient } from './helpers.js';

let client: TestClient;
afterEach(() => {
  cleanup();
  client?.sync.close();
});

// The spec's component, as the spec writes it.
function MyComponent() {
  const { status, isOnline, isOffline, isSlow, timeSinceOnline, triggerSync } =
    useNetworkStatus();

  return (
    <div>
      Status: {status}
      {isOffline && `Offline for ${Math.floor(timeSinceOnline / 1000)}s`}
      <button onClick={triggerSync}>Sync Now</button>
      <span hidden>{String(isOnline && !isSlow)}</span>
    </div>
  );
}

describe('useNetworkStatus', () => {
  it('returns exactly the spec’s fields', () => {
    client = makeClient();
    const { result } = renderHook(() => useNetworkStatus(), { wrapper: providing(client) });
    expect(Object.keys(result.current).sort()).toEqual(['isOffline', 'isOnline', 'isSlow', 'status', 'timeSinceOnline', 'triggerSync']);
    expect(result.current).toMatchObject({ status: 'online', isOnline: true, isOffline: false, isSlow: false, timeSinceOnline: 0 });
  });

  it('MyComponent shows offline with the time offline, and online again when the server answers', async () => {
    client = makeClient({ network: { tickMs: 50 } });
    client.sync.initializeNetworkMonitoring({ syncOnReconnect: true, autoSyncEnabled: false });
    render(<MyComponent />, { wrapper: providing(client) });
    await waitFor(() => expect(screen.getByText(/Status: online/)).toBeTruthy());

    act(() => client.online.set(false));
    expect(screen.getByText(/Status: offline/)).toBeTruthy();
    expect(screen.getByText(/Offline for 0s/)).toBeTruthy();
    // timeSinceOnline counts while offline (the monitor ticks while a component watches)
    await waitFor(() => expect(screen.getByText(/Offline for 1s/)).toBeTruthy(), { timeout: 3000 });

    act(() => client.online.set(true)); // the browser says online: confirmed by a heartbeat first
    await waitFor(() => expect(screen.getByText(/Status: online/)).toBeTruthy());
    expect(screen.queryByText(/Offline for/)).toBeNull();
  });

  it('the Sync Now button syncs', async () => {
    client = makeClient();
    client.server.write('clients', 1, { name: 'Ann' });
    render(<MyComponent />, { wrapper: providing(client) });
    fireEvent.click(screen.getByText('Sync Now'));
    await waitFor(() => expect(client.transport.calls).toContain('pull'));
    await waitFor(async () => expect(await client.sync.store.get('clients', 1)).toMatchObject({ data: { name: 'Ann' } }));
  });

  it('triggerSync resolves with the sync’s result, and with undefined once the client is closed', async () => {
    client = makeClient();
    const { result } = renderHook(() => useNetworkStatus(), { wrapper: providing(client) });
    await expect(result.current.triggerSync()).resolves.toMatchObject({ synced: 0, failed: 0, pulled: 0 });
    client.sync.close();
    await expect(result.current.triggerSync()).resolves.toBeUndefined();
  });

  it('keeps the same object while nothing changes (no needless re-render)', () => {
    client = makeClient();
    const { result, rerender } = renderHook(() => useNetworkStatus(), { wrapper: providing(client) });
    const first = result.current;
    rerender();
    expect(result.current).toBe(first);
  });

  it('throws MissingProviderError outside a SmartSyncProvider', () => {
    expect(() => renderHook(() => useNetworkStatus())).toThrow(MissingProviderError);
  });
});
