// createSmartSync(options): one client instance (one tenant, one device), holding its
// database, queue, local store, conflict store, network monitor and sync engine. The
// spec's module-level API (spec-api.ts) is one default instance of it; an app or a test
// may hold several.

import type { BackoffOptions } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { ConflictStore, type ResolveConflictResult, type ResolveOptions } from './conflict-store.js';
import { Database, type EntityTypeSchema } from './database.js';
import { ClosedError, ValidationError } from './errors.js';
import { LocalStore, type StoreChange } from './local-store.js';
import { NetworkMonitor, type NetworkMonitorOptions } from './network-monitor.js';
import {
  browserConnectionSignal,
  browserOnlineSignal,
  browserVisibilitySignal,
  type ConnectionSignal,
  type OnlineSignal,
  type VisibilitySignal,
} from './signals.js';
import { SyncEngine, type AutoSyncOptions, type SyncEngineOptions } from './sync-engine.js';
import { SyncQueue } from './sync-queue.js';
import { TabCoordinator, defaultChannel, defaultLocks, type BroadcastChannelLike, type LockManagerLike } from './tab-coordinator.js';
import type { Transport } from './transport.js';
import { TEMP_ID_PREFIX, defaultRandomBytes, uuidv7Generator, type RandomBytes } from './uuid.js';
import type { ValidationContext } from './validate.js';

/** An entity type: its name, and the data fields to index for list(type, {field: value}). */
export interface EntityTypeOptions {
  name: string;
  indexes?: string[];
}

/** The spec's configureSmartSync options, and what a program may inject. */
export interface SmartSyncOptions {
  /** httpTransport({baseUrl, getToken}) or postgrestTransport({url, getToken}). */
  transport: Transport;
  tenantId: string;
  /** This device (the server keys exactly-once delivery by it; the token's client_id must agree). */
  deviceId: string;
  /** The entity types this device syncs, parents first (clients before pets before appointments). */
  entityTypes: (string | EntityTypeOptions)[];
  practiceId?: string | number;
  userId?: string | number;
  /** Operations per push (default 50, the spec's). */
  batchSize?: number;
  /** Retries of an operation after transient failures (default 3, the spec's). */
  maxRetries?: number;
  /** Changes per pull page (default 1000). */
  pullLimit?: number;
  /** Send the entity types as the pull's filter (default true). */
  pullEntityTypesFilter?: boolean;
  /** Retry spacing (default: 1 s doubling up to 60 s, full jitter). */
  backoff?: BackoffOptions;
  network?: NetworkMonitorOptions;
  engine?: SyncEngineOptions;
  /** The IndexedDB database's name (default `smartsync_<tenantId>`). */
  dbName?: string;
  /** The prefix of temporary ids (the server's smartsync.temp_id_prefix; default `temp_`). */
  tempIdPrefix?: string;
  // injected for tests and other runtimes; real defaults
  indexedDB?: IDBFactory;
  clock?: Clock;
  /** A number in [0, 1) (Math.random by default): backoff jitter. */
  random?: () => number;
  randomBytes?: RandomBytes;
  /** navigator.locks by default; null: coordinate within this tab only. */
  locks?: LockManagerLike | null;
  /** A BroadcastChannel factory (the global one by default); null: none. */
  broadcastChannel?: ((name: string) => BroadcastChannelLike | null) | null;
  online?: OnlineSignal;
  visibility?: VisibilitySignal;
  connection?: ConnectionSignal;
}

/** One client instance. */
export interface SmartSync {
  readonly tenantId: string;
  readonly deviceId: string;
  /** The spec's syncQueueStorage. */
  readonly syncQueueStorage: SyncQueue;
  /** The spec's conflictStorage. */
  readonly conflictStorage: ConflictStore;
  /** The local store: get, list, subscribe, create, update, delete. */
  readonly store: LocalStore;
  /** The spec's network monitor. */
  readonly networkMonitor: NetworkMonitor;
  /** The spec's sync engine. */
  readonly syncEngine: SyncEngine;
  /** The spec's getSyncEngine(). */
  getSyncEngine(): SyncEngine;
  /** The spec's resolveConflict(conflictId, {strategy, resolvedData, appliedAt}). */
  resolveConflict(conflictId: number, options: ResolveOptions): Promise<ResolveConflictResult>;
  /** The spec's initializeNetworkMonitoring: starts the monitor and automatic syncing; returns the monitor. */
  initializeNetworkMonitoring(options?: AutoSyncOptions): NetworkMonitor;
  /** Stops timers, streams and listeners and closes the database. */
  close(): void;
}

/** Creates a client instance. Bad options throw a ValidationError. */
export function createSmartSync(options: SmartSyncOptions): SmartSync {
  const config = checkOptions(options);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const newId = uuidv7Generator(() => clock.now(), options.randomBytes ?? defaultRandomBytes);
  const tempIdPrefix = options.tempIdPrefix ?? TEMP_ID_PREFIX;
  const dbName = options.dbName ?? `smartsync_${options.tenantId}`;
  const types = new Map(config.entityTypes.map((type) => [type.name, type]));
  const typeNames = [...types.keys()];

  const db = new Database({ name: dbName, entityTypes: config.entityTypes, indexedDB: options.indexedDB });
  const channel = options.broadcastChannel === null ? null : (options.broadcastChannel ?? defaultChannel)(`smartsync:${dbName}`);
  const coordinator = new TabCoordinator({
    name: `smartsync:${dbName}`,
    tab: newId(),
    locks: options.locks === undefined ? defaultLocks() : options.locks,
    channel,
  });

  let engine: SyncEngine | null = null;
  let store: LocalStore | null = null;
  const emit = (change: StoreChange): void => {
    store?.changes.emit(change);
    if (change.source !== 'other-tab') coordinator.post({ type: 'changed', entityTypes: [change.entityType] });
  };
  coordinator.onMessage((message) => {
    if (message.type === 'changed') {
      for (const entityType of message.entityTypes) if (types.has(entityType)) store?.changes.emit({ entityType, ids: null, source: 'other-tab' });
    }
  });

  const context: ValidationContext = {
    entityTypes: new Set(typeNames),
    tenantId: options.tenantId,
    practiceId: options.practiceId,
    userId: options.userId,
  };
  const queue = new SyncQueue({
    db,
    clock,
    newId,
    tempIdPrefix,
    context,
    maxRetries: config.maxRetries,
    onChange: emit,
    onQueued: () => engine?.onQueued(),
  });
  store = new LocalStore(db, types, (input) => queue.queueOperation(input), tempIdPrefix);
  const conflicts = new ConflictStore({ db, transport: options.transport, clock, emit, onReleased: () => engine?.onReleased() });
  const monitor = new NetworkMonitor({
    health: (signal) => options.transport.health(signal),
    clock,
    online: options.online ?? browserOnlineSignal(),
    connection: options.connection ?? browserConnectionSignal(),
    options: options.network,
  });
  const backoff = options.backoff ?? {};
  engine = new SyncEngine({
    db,
    transport: options.transport,
    clock,
    random,
    backoff,
    queue,
    conflicts,
    monitor,
    coordinator,
    visibility: options.visibility ?? browserVisibilitySignal(),
    push: {
      db,
      transport: options.transport,
      clock,
      random,
      backoff,
      deviceId: options.deviceId,
      batchSize: config.batchSize,
      entityTypes: typeNames,
      tempIdPrefix,
      emit,
    },
    pull: {
      db,
      transport: options.transport,
      now: () => clock.now(),
      entityTypes: typeNames,
      filterEntityTypes: options.pullEntityTypesFilter ?? true,
      practiceId: options.practiceId,
      limit: config.pullLimit,
      tempIdPrefix,
      emit,
    },
    options: options.engine ?? {},
  });

  // operations a reload or a crash left in flight go back to pending (under the sync lock)
  void queue.recoverInterrupted((work) => coordinator.runExclusive(work));
  void engine.loadLastResult().catch(() => undefined); // a storage problem shows on first use
  let closed = false;
  const live = engine;
  const localStore = store;
  const guard = <T>(value: T): T => {
    if (closed) throw new ClosedError();
    return value;
  };
  return {
    tenantId: options.tenantId,
    deviceId: options.deviceId,
    syncQueueStorage: queue,
    conflictStorage: conflicts,
    store: localStore,
    networkMonitor: monitor,
    syncEngine: live,
    getSyncEngine: () => guard(live),
    resolveConflict: (conflictId, resolveOptions) => guard(conflicts).resolveConflict(conflictId, resolveOptions),
    initializeNetworkMonitoring(autoOptions = {}) {
      guard(live).start(autoOptions);
      return monitor;
    },
    close() {
      if (closed) return;
      closed = true;
      live.close();
      coordinator.close();
      db.close();
    },
  };
}

interface CheckedOptions {
  entityTypes: EntityTypeSchema[];
  batchSize: number;
  maxRetries: number;
  pullLimit: number;
}

function checkOptions(options: SmartSyncOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('invalid-option', 'createSmartSync needs an options object');
  const transport = options.transport as Partial<Transport> | undefined;
  if (!transport || typeof transport.push !== 'function' || typeof transport.pull !== 'function') {
    throw new ValidationError('invalid-option', 'transport must be httpTransport({...}) or postgrestTransport({...})', 'transport');
  }
  if (typeof options.tenantId !== 'string' || options.tenantId === '') throw new ValidationError('invalid-option', 'tenantId is a non-empty string', 'tenantId');
  if (typeof options.deviceId !== 'string' || options.deviceId === '' || options.deviceId.length > 255 || /[\u0000-\u001f]/.test(options.deviceId)) {
    throw new ValidationError('invalid-option', 'deviceId is a non-empty string of at most 255 characters without control characters', 'deviceId');
  }
  if (!Array.isArray(options.entityTypes) || options.entityTypes.length === 0) {
    throw new ValidationError('invalid-option', 'entityTypes lists the entity types to sync, parents first', 'entityTypes');
  }
  const entityTypes: EntityTypeSchema[] = [];
  for (const entry of options.entityTypes) {
    const type: EntityTypeOptions = typeof entry === 'string' ? { name: entry } : entry;
    if (!type || typeof type.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(type.name)) {
      throw new ValidationError('invalid-option', `invalid entity type ${JSON.stringify(entry)}: a name of letters, digits and _`, 'entityTypes');
    }
    if (entityTypes.some((other) => other.name === type.name)) throw new ValidationError('invalid-option', `entity type ${type.name} is listed twice`, 'entityTypes');
    const indexes = type.indexes ?? [];
    if (!Array.isArray(indexes) || indexes.some((field) => typeof field !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(field))) {
      throw new ValidationError('invalid-option', `indexes of ${type.name} must be field names`, 'entityTypes');
    }
    entityTypes.push({ name: type.name, indexes: [...new Set(indexes)] });
  }
  const positive = (value: number | undefined, fallback: number, name: string, max: number, min = 1): number => {
    if (value === undefined) return fallback;
    if (!Number.isInteger(value) || value < min || value > max) throw new ValidationError('invalid-option', `${name} must be an integer from ${min} to ${max}`, name);
    return value;
  };
  return {
    entityTypes,
    batchSize: positive(options.batchSize, 50, 'batchSize', 10_000),
    maxRetries: positive(options.maxRetries, 3, 'maxRetries', 100, 0),
    pullLimit: positive(options.pullLimit, 1000, 'pullLimit', 10_000),
  };
}
