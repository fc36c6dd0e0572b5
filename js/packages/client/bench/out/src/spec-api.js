// The spec's module-level API, with the spec's names: configureSmartSync() once, then
// syncQueueStorage, conflictStorage, getSyncEngine(), resolveConflict(),
// initializeNetworkMonitoring() and the local store, all bound to that default instance.
import { NotConfiguredError } from './errors.js';
import { createSmartSync } from './smartsync.js';
let instance = null;
function current() {
    if (!instance)
        throw new NotConfiguredError();
    return instance;
}
/**
 * Configures the default instance (the spec's modules use it). Calling it again closes the
 * previous instance first. Returns the instance.
 */
export function configureSmartSync(options) {
    const next = createSmartSync(options);
    instance?.close();
    instance = next;
    return next;
}
/** The default instance, or null before configureSmartSync(). */
export function getSmartSync() {
    return instance;
}
/** The spec's syncQueueStorage. */
export const syncQueueStorage = {
    queueOperation(operation) {
        return current().syncQueueStorage.queueOperation(operation);
    },
    getStats() {
        return current().syncQueueStorage.getStats();
    },
    getOperations() {
        return current().syncQueueStorage.getOperations();
    },
    retryFailed(ids) {
        return current().syncQueueStorage.retryFailed(ids);
    },
    removeOperation(id) {
        return current().syncQueueStorage.removeOperation(id);
    },
};
/** The spec's conflictStorage. */
export const conflictStorage = {
    getUnresolvedConflicts() {
        return current().conflictStorage.getUnresolvedConflicts();
    },
    getConflict(conflictId) {
        return current().conflictStorage.getConflict(conflictId);
    },
};
/** The spec's getSyncEngine(). */
export function getSyncEngine() {
    return current().getSyncEngine();
}
/** The spec's resolveConflict(conflictId, {strategy, resolvedData, appliedAt}). */
export function resolveConflict(conflictId, options) {
    return current().resolveConflict(conflictId, options);
}
/** The spec's initializeNetworkMonitoring({syncOnReconnect, autoSyncEnabled}); returns the monitor. */
export function initializeNetworkMonitoring(options = {}) {
    return current().initializeNetworkMonitoring(options);
}
/** The default instance's network monitor. */
export function getNetworkMonitor() {
    return current().networkMonitor;
}
/** The default instance's local store. */
export const localStore = {
    get(entityType, id) {
        return current().store.get(entityType, id);
    },
    list(entityType, filter, options) {
        return current().store.list(entityType, filter, options);
    },
    count(entityType) {
        return current().store.count(entityType);
    },
    subscribe(a, b) {
        const store = current().store;
        return typeof a === 'function' ? store.subscribe(a) : store.subscribe(a, b);
    },
    create(entityType, data, options) {
        return current().store.create(entityType, data, options);
    },
    update(entityType, id, data, options) {
        return current().store.update(entityType, id, data, options);
    },
    delete(entityType, id, options) {
        return current().store.delete(entityType, id, options);
    },
};
