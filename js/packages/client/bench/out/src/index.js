// @smartsync/client: the browser half of smartsync. See the README's "Client" section.
export { configureSmartSync, getSmartSync, syncQueueStorage, conflictStorage, getSyncEngine, resolveConflict, initializeNetworkMonitoring, getNetworkMonitor, localStore } from './spec-api.js';
export { createSmartSync } from './smartsync.js';
export { httpTransport } from './http-transport.js';
export { postgrestTransport } from './postgrest-transport.js';
export { SmartSyncError, ValidationError, NotConfiguredError, ClosedError, StorageError, StorageQuotaError, StorageBlockedError, StorageUnavailableError, HttpError, NetworkError, ProtocolError, isTransient, isAuthError, isMustRefetch, } from './errors.js';
export { SyncQueue } from './sync-queue.js';
export { ConflictStore } from './conflict-store.js';
export { LocalStore } from './local-store.js';
export { SyncEngine } from './sync-engine.js';
export { NetworkMonitor } from './network-monitor.js';
export { reduceNetwork, initialNetworkState } from './network-state.js';
export { browserOnlineSignal, browserVisibilitySignal, browserConnectionSignal, manualOnlineSignal, manualVisibilitySignal, } from './signals.js';
export { backoffDelay } from './backoff.js';
export { systemClock } from './clock.js';
export { attemptMerge } from './merge.js';
export { createTempId, isTempId, uuidv7, TEMP_ID_PREFIX } from './uuid.js';
