// @smartsync/react: React hooks over @smartsync/client, built on useSyncExternalStore.
// Importing it touches no browser global, so it is safe under server rendering.

export { SmartSyncProvider, useSmartSync, type SmartSyncProviderProps } from './provider.js';
export { useNetworkStatus, type NetworkStatusValue } from './use-network-status.js';
export { useSyncStatus, type SyncStatusValue } from './use-sync-status.js';
export { useConflicts, type ConflictsValue } from './use-conflicts.js';
export { useEntity, useEntities, type EntityValue, type EntitiesValue, type UseEntitiesOptions } from './use-entity.js';
export { LiveQuery, type LiveQueryOptions, type QuerySnapshot } from './live-query.js';
export { MissingProviderError } from './errors.js';
