// The spec's MyComponent, grown into the app's status bar: the network badge with the time
// offline, a "Sync now" button, what is queued and how the last sync went.

import { useNetworkStatus, useSyncStatus } from '@smartsync/react';

export function StatusBar() {
  const { status, isOnline, isOffline, isSlow, timeSinceOnline, triggerSync } = useNetworkStatus();
  const { pending, failed, conflicts, syncing, lastResult } = useSyncStatus();

  return (
    <div className="status-bar" role="status">
      <span data-testid="network-badge" className={`badge badge-${status}`} title={isSlow ? 'the server answers slowly' : isOnline ? 'the server answers' : 'no answer from the server'}>
        {status}
      </span>
      {isOffline && <span data-testid="offline-for">Offline for {Math.floor(timeSinceOnline / 1000)}s</span>}
      <span data-testid="pending" className={pending > 0 ? 'count count-pending' : 'count'}>
        {pending} pending
      </span>
      {failed > 0 && (
        <span data-testid="failed" className="count count-failed">
          {failed} failed
        </span>
      )}
      {conflicts > 0 && (
        <a data-testid="conflict-count" className="count count-conflict" href="#/conflicts">
          {conflicts} conflict{conflicts === 1 ? '' : 's'}
        </a>
      )}
      <span data-testid="sync-state" className="sync-state">
        {syncing
          ? 'Syncing…'
          : lastResult && lastResult.startedAt > 0
            ? `Last sync ${new Date(lastResult.startedAt + lastResult.durationMs).toLocaleTimeString()}: ${lastResult.synced} synced, ${lastResult.failed} failed, ${lastResult.pulled} pulled${lastResult.error ? ` (${lastResult.error.message})` : ''}`
            : 'Not synced yet'}
      </span>
      <button type="button" onClick={triggerSync} disabled={syncing}>
        Sync now
      </button>
    </div>
  );
}
