// @smartsync/client: the browser half of smartsync. See the README's "Client" section.

export { configureSmartSync, getSmartSync, syncQueueStorage, conflictStorage, getSyncEngine, resolveConflict, initializeNetworkMonitoring, getNetworkMonitor, localStore } from './spec-api.js';
export { createSmartSync, type SmartSync, type SmartSyncOptions, type EntityTypeOptions } from './smartsync.js';
export { httpTransport, type HttpTransportOptions } from './http-transport.js';
export { postgrestTransport, type PostgrestTransportOptions } from './postgrest-transport.js';
export type { Transport, TransportOptions, FetchLike, GetToken, LiveHandlers, LiveParams, ChangedParams } from './transport.js';
export {
  SmartSyncError,
  ValidationError,
  NotConfiguredError,
  ClosedError,
  StorageError,
  StorageQuotaError,
  StorageBlockedError,
  StorageUnavailableError,
  HttpError,
  NetworkError,
  ProtocolError,
  isTransient,
  isAuthError,
  isMustRefetch,
  type ValidationCode,
  type ErrorBody,
} from './errors.js';
export { SyncQueue, type QueueStats } from './sync-queue.js';
export { ConflictStore, type ResolveOptions, type ResolveConflictResult } from './conflict-store.js';
export { LocalStore, type EntityRow, type StoreChange, type ListFilter, type ListOptions, type WriteOptions } from './local-store.js';
export { SyncEngine, type SyncResult, type SyncEngineState, type AutoSyncOptions, type SyncEngineOptions } from './sync-engine.js';
export { NetworkMonitor, type NetworkMonitorOptions } from './network-monitor.js';
export { reduceNetwork, initialNetworkState, type NetworkState, type NetworkStatus, type NetworkEvent } from './network-state.js';
export {
  browserOnlineSignal,
  browserVisibilitySignal,
  browserConnectionSignal,
  manualOnlineSignal,
  manualVisibilitySignal,
  type OnlineSignal,
  type VisibilitySignal,
  type ConnectionSignal,
  type ConnectionInfo,
} from './signals.js';
export type { LockManagerLike, BroadcastChannelLike } from './tab-coordinator.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { systemClock, type Clock } from './clock.js';
export { attemptMerge } from './merge.js';
export { createTempId, isTempId, uuidv7, TEMP_ID_PREFIX } from './uuid.js';
export type { QueueOperationInput } from './validate.js';
export type {
  EntityId,
  EntityData,
  OperationType,
  Priority,
  PushOperation,
  PushRequest,
  PushResponse,
  PushResult,
  PullChange,
  PullResponse,
  PullParams,
  ResolutionStrategy,
  ResolveResponse,
  QueuedOperation,
  EntityRecord,
  EntitySyncStatus,
  ConflictRecord,
  ConflictData,
  ConflictType,
  Severity,
  IdMapping,
} from './types.js';
