// The spec's useNetworkStatus(): the network monitor's state and a function that syncs now.
//
//   const { status, isOnline, isOffline, isSlow, timeSinceOnline, triggerSync } = useNetworkStatus();
//
// Read with useSyncExternalStore from the client's monitor, whose state object stays the
// same until it changes (and ticks once a second while offline, so timeSinceOnline
// counts). On the server, and while hydrating, it says online: the server cannot know.

import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { NetworkState, NetworkStatus, SyncResult } from '@smartsync/client';
import { useSmartSync } from './provider.js';

/** Exactly the spec's shape. */
export interface NetworkStatusValue {
  status: NetworkStatus;
  isOnline: boolean;
  isOffline: boolean;
  isSlow: boolean;
  /** Offline: milliseconds since the device was last online; online: 0. */
  timeSinceOnline: number;
  /** Syncs now (or joins the sync under way); resolves with its result, or undefined once the client is closed. */
  triggerSync: () => Promise<SyncResult | undefined>;
}

const SERVER_STATE: Pick<NetworkState, 'status' | 'isOnline' | 'isOffline' | 'isSlow' | 'timeSinceOnline'> = Object.freeze({
  status: 'online',
  isOnline: true,
  isOffline: false,
  isSlow: false,
  timeSinceOnline: 0,
});

export function useNetworkStatus(): NetworkStatusValue {
  const client = useSmartSync();
  const monitor = client.networkMonitor;
  const subscribe = useCallback((listener: () => void) => monitor.subscribe(() => listener()), [monitor]);
  const getSnapshot = useCallback(() => monitor.getState(), [monitor]);
  const state = useSyncExternalStore(subscribe, getSnapshot, getServerState);
  const triggerSync = useCallback(async (): Promise<SyncResult | undefined> => {
    try {
      return await client.getSyncEngine().sync();
    } catch {
      return undefined; // closed (a sync's own trouble is in its result, never thrown)
    }
  }, [client]);
  return useMemo(
    () => ({
      status: state.status,
      isOnline: state.isOnline,
      isOffline: state.isOffline,
      isSlow: state.isSlow,
      timeSinceOnline: state.timeSinceOnline,
      triggerSync,
    }),
    [state.status, state.isOnline, state.isOffline, state.isSlow, state.timeSinceOnline, triggerSync],
  );
}

function getServerState(): typeof SERVER_STATE {
  return SERVER_STATE;
}
