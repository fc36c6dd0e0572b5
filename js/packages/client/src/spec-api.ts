// The spec's module-level API, with the spec's names: configureSmartSync() once, then
// syncQueueStorage, conflictStorage, getSyncEngine(), resolveConflict(),
// initializeNetworkMonitoring() and the local store, all bound to that default instance.

import type { ResolveConflictResult, ResolveOptions } from './conflict-store.js';
import { NotConfiguredError } from './errors.js';
import type { ListFilter, ListOptions, StoreChange, WriteOptions, EntityRow } from './local-store.js';
import type { NetworkMonitor } from './network-monitor.js';
import { createSmartSync, type SmartSync, type SmartSyncOptions } from './smartsync.js';
import type { AutoSyncOptions, SyncEngine } from './sync-engine.js';
import type { QueueStats } from './sync-queue.js';
import type { ConflictRecord, EntityData, EntityId, QueuedOperation } from './types.js';
import type { QueueOperationInput } from './validate.js';

let instance: SmartSync | null = null;

function current(): SmartSync {
  if (!instance) throw new NotConfiguredError();
  return instance;
}

/**
 * Configures the default instance (the spec's modules use it). Calling it again closes the
 * previous instance first. Returns the instance.
 */
export function configureSmartSync(options: SmartSyncOptions): SmartSync {
  const next = createSmartSync(options);
  instance?.close();
  instance = next;
  return next;
}

/** The default instance, or null before configureSmartSync(). */
export function getSmartSync(): SmartSync | null {
  return instance;
}

/** The spec's syncQueueStorage. */
export const syncQueueStorage = {
  queueOperation(operation: QueueOperationInput): Promise<QueuedOperation | null> {
    return current().syncQueueStorage.queueOperation(operation);
  },
  getStats(): Promise<QueueStats> {
    return current().syncQueueStorage.getStats();
  },
  getOperations(): Promise<QueuedOperation[]> {
    return current().syncQueueStorage.getOperations();
  },
  retryFailed(ids?: string[]): Promise<number> {
    return current().syncQueueStorage.retryFailed(ids);
  },
  removeOperation(id: string): Promise<boolean> {
    return current().syncQueueStorage.removeOperation(id);
  },
};

/** The spec's conflictStorage. */
export const conflictStorage = {
  getUnresolvedConflicts(): Promise<ConflictRecord[]> {
    return current().conflictStorage.getUnresolvedConflicts();
  },
  getConflict(conflictId: number): Promise<ConflictRecord | null> {
    return current().conflictStorage.getConflict(conflictId);
  },
};

/** The spec's getSyncEngine(). */
export function getSyncEngine(): SyncEngine {
  return current().getSyncEngine();
}

/** The spec's resolveConflict(conflictId, {strategy, resolvedData, appliedAt}). */
export function resolveConflict(conflictId: number, options: ResolveOptions): Promise<ResolveConflictResult> {
  return current().resolveConflict(conflictId, options);
}

/** The spec's initializeNetworkMonitoring({syncOnReconnect, autoSyncEnabled}); returns the monitor. */
export function initializeNetworkMonitoring(options: AutoSyncOptions = {}): NetworkMonitor {
  return current().initializeNetworkMonitoring(options);
}

/** The default instance's network monitor. */
export function getNetworkMonitor(): NetworkMonitor {
  return current().networkMonitor;
}

/** The default instance's local store. */
export const localStore = {
  get<T extends EntityData = EntityData>(entityType: string, id: EntityId): Promise<EntityRow<T> | null> {
    return current().store.get<T>(entityType, id);
  },
  list<T extends EntityData = EntityData>(entityType: string, filter?: ListFilter<T>, options?: ListOptions): Promise<EntityRow<T>[]> {
    return current().store.list<T>(entityType, filter, options);
  },
  count(entityType: string): Promise<number> {
    return current().store.count(entityType);
  },
  subscribe(a: string | ((change: StoreChange) => void), b?: (change: StoreChange) => void): () => void {
    const store = current().store;
    return typeof a === 'function' ? store.subscribe(a) : store.subscribe(a, b as (change: StoreChange) => void);
  },
  create<T extends EntityData = EntityData>(entityType: string, data: T, options?: WriteOptions & { id?: EntityId }): Promise<EntityId> {
    return current().store.create(entityType, data, options);
  },
  update<T extends EntityData = EntityData>(entityType: string, id: EntityId, data: Partial<T>, options?: WriteOptions): Promise<void> {
    return current().store.update(entityType, id, data, options);
  },
  delete(entityType: string, id: EntityId, options?: WriteOptions): Promise<void> {
    return current().store.delete(entityType, id, options);
  },
};
