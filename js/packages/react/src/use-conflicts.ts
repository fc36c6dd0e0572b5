// useConflicts(): the unresolved conflicts (each with the device's and the server's data
// side by side, the fields that differ, severity) and resolve(id, {strategy, resolvedData}),
// the spec's resolveConflict. The list is re-read after every change of the local store and
// every sync, and after each resolve however it ended.

import { useCallback, useMemo, useSyncExternalStore } from 'react';
import type { ConflictRecord, ResolveConflictResult, ResolveOptions } from '@smartsync/client';
import { LiveQuery } from './live-query.js';
import { useSmartSync } from './provider.js';
import { watchSync } from './use-sync-status.js';

export interface ConflictsValue {
  /** Unresolved conflicts, oldest first (also those whose resolution waits for the network). */
  conflicts: readonly ConflictRecord[];
  loading: boolean;
  error: Error | null;
  /** The spec's resolveConflict(conflictId, {strategy, resolvedData, appliedAt}); offline it is kept and sent by the next sync. */
  resolve: (conflictId: number, options: ResolveOptions) => Promise<ResolveConflictResult>;
}

const NONE: readonly ConflictRecord[] = Object.freeze([]);

export function useConflicts(): ConflictsValue {
  const client = useSmartSync();
  const query = useMemo(
    () =>
      new LiveQuery<readonly ConflictRecord[]>({
        initial: NONE,
        load: () => client.conflictStorage.getUnresolvedConflicts(),
        watch: (invalidate) => watchSync(client, invalidate),
      }),
    [client],
  );
  const snapshot = useSyncExternalStore(query.subscribe, query.getSnapshot, query.getServerSnapshot);
  const resolve = useCallback(
    async (conflictId: number, options: ResolveOptions): Promise<ResolveConflictResult> => {
      try {
        return await client.resolveConflict(conflictId, options);
      } finally {
        query.refresh();
      }
    },
    [client, query],
  );
  return useMemo(() => ({ conflicts: snapshot.data, loading: snapshot.loading, error: snapshot.error, resolve }), [snapshot, resolve]);
}
