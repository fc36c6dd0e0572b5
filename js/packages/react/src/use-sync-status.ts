// useSyncStatus(): what a status bar shows. `pending` counts the operations the server has
// not acknowledged yet (getStats().pending + inFlight); `failed` the ones it refused for
// good; `conflicts` the unresolved ones; `syncing` a sync under way in this tab or another;
// `lastResult` the last sync's result (null before the first).
//
// The counts are re-read after every change of the local store (local writes, push answers,
// pulled pages, resolutions, other tabs) and every start and end of a sync.

import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { QueueStats, SmartSync, SyncEngineState, SyncResult } from '@smartsync/client';
import { LiveQuery } from './live-query.js';
import { useSmartSync } from './provider.js';

export interface SyncStatusValue {
  pending: number;
  failed: number;
  conflicts: number;
  syncing: boolean;
  lastResult: SyncResult | null;
}

const NO_STATS: QueueStats = Object.freeze({ pending: 0, inFlight: 0, failed: 0, conflicts: 0 });
const SERVER_ENGINE: SyncEngineState = Object.freeze({ syncing: false, lastResult: null });

/** Invalidates on every change of the local store and every sync start and end. */
export function watchSync(client: SmartSync, invalidate: () => void): () => void {
  const stopStore = client.store.subscribe(() => invalidate());
  const stopEngine = client.syncEngine.subscribe(() => invalidate());
  return () => {
    stopStore();
    stopEngine();
  };
}

export function useSyncStatus(): SyncStatusValue {
  const client = useSmartSync();
  const stats = useMemo(
    () =>
      new LiveQuery<QueueStats>({
        initial: NO_STATS,
        load: () => client.syncQueueStorage.getStats(),
        watch: (invalidate) => watchSync(client, invalidate),
      }),
    [client],
  );
  const counts = useSyncExternalStore(stats.subscribe, stats.getSnapshot, stats.getServerSnapshot).data;
  const engine = client.syncEngine;
  const subscribe = useCallback((listener: () => void) => engine.subscribe(() => listener()), [engine]);
  const getState = useCallback(() => engine.getState(), [engine]);
  const state = useSyncExternalStore(subscribe, getState, getServerEngineState);
  return useMemo(
    () => ({
      pending: counts.pending + counts.inFlight,
      failed: counts.failed,
      conflicts: counts.conflicts,
      syncing: state.syncing,
      lastResult: state.lastResult,
    }),
    [counts, state],
  );
}

function getServerEngineState(): SyncEngineState {
  return SERVER_ENGINE;
}
