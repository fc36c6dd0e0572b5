// One IndexedDB database per tenant, through idb, with the spec's "verified connection
// pattern": one cached connection, every operation first checks that the stores it needs
// exist in that very connection (and upgrades the schema when a new entity type or index
// was configured), so no "object store not found" can happen. A connection another tab
// needs to upgrade is closed at once and reopened on next use. Quota and blocked-upgrade
// failures become StorageQuotaError and StorageBlockedError.
//
// Stores:
//   queue          the sync queue, key: operation id (UUIDv7, creation order);
//                  indexes: entity [entityType, entityId], tempRefs (multiEntry)
//   conflicts      conflicts, key: the server's conflict id; index: status
//   idmap          temporary id -> real id, key: tempId
//   meta           small values: the pull cursor, the last sync result
//   entity:<type>  one per entity type, key: id; indexes: status, tempRefs (multiEntry),
//                  and `data.<field>` for each configured index
//   chunks:<type>  one per entity type: rows a listing brought, many to a record (chunks.ts);
//                  key: generated; index: ids (multiEntry). A transaction over an entity
//                  store always includes its chunk store.

import { wrap, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { StorageBlockedError, StorageError, StorageQuotaError, StorageUnavailableError, SmartSyncError } from './errors.js';

export const QUEUE = 'queue';
export const CONFLICTS = 'conflicts';
export const IDMAP = 'idmap';
export const META = 'meta';

/** The name of an entity type's store. */
export function entityStore(entityType: string): string {
  return `entity:${entityType}`;
}

/** The name of an entity type's chunk store (chunks.ts). */
export function chunkStore(entityType: string): string {
  return `chunks:${entityType}`;
}

const ENTITY_PREFIX = 'entity:';

/** The name of the index on a data field. */
export function fieldIndex(field: string): string {
  return `data.${field}`;
}

export interface EntityTypeSchema {
  name: string;
  indexes: string[];
}

export interface DatabaseOptions {
  name: string;
  entityTypes: EntityTypeSchema[];
  /** The IndexedDB factory (globalThis.indexedDB by default; fake-indexeddb in tests). */
  indexedDB?: IDBFactory | undefined;
}

export type Db = IDBPDatabase<unknown>;
export type Tx = IDBPTransaction<unknown, string[], 'readwrite'>;

interface StoreSpec {
  name: string;
  /** null: out-of-line keys, generated (autoIncrement). */
  keyPath: string | null;
  indexes: { name: string; keyPath: string | string[]; multiEntry?: boolean }[];
}

/** The database of one tenant. */
export class Database {
  private connection: Promise<Db> | null = null;
  private current: Db | null = null;
  private closed = false;
  private readonly specs: StoreSpec[];

  constructor(private readonly options: DatabaseOptions) {
    this.specs = [
      {
        name: QUEUE,
        keyPath: 'id',
        indexes: [
          { name: 'entity', keyPath: ['entityType', 'entityId'] },
          { name: 'tempRefs', keyPath: 'tempRefs', multiEntry: true },
        ],
      },
      { name: CONFLICTS, keyPath: 'id', indexes: [{ name: 'status', keyPath: 'status' }] },
      { name: IDMAP, keyPath: 'tempId', indexes: [] },
      { name: META, keyPath: 'key', indexes: [] },
      ...options.entityTypes.map((type) => ({
        name: entityStore(type.name),
        keyPath: 'id',
        indexes: [
          { name: 'status', keyPath: 'status' },
          { name: 'tempRefs', keyPath: 'tempRefs', multiEntry: true },
          ...type.indexes.map((field) => ({ name: fieldIndex(field), keyPath: `data.${field}` })),
        ],
      })),
      ...options.entityTypes.map((type) => ({
        name: chunkStore(type.name),
        keyPath: null,
        indexes: [{ name: 'ids', keyPath: 'ids', multiEntry: true }],
      })),
    ];
  }

  get name(): string {
    return this.options.name;
  }

  /** The entity stores, in configuration order. */
  get entityStores(): string[] {
    return this.options.entityTypes.map((type) => entityStore(type.name));
  }

  /** The verified connection: cached, every configured store and index present. */
  async db(): Promise<Db> {
    if (this.closed) throw new StorageError(`database ${this.options.name} is closed`);
    if (!this.connection) {
      const opening = this.open();
      this.connection = opening;
      opening.catch(() => {
        if (this.connection === opening) this.connection = null;
      });
    }
    const db = await this.connection;
    this.current = db;
    // the spec's check, on the very connection the operation will use (indexes were
    // checked when it opened, and cannot change without a versionchange that drops it)
    if (!this.specs.every((spec) => db.objectStoreNames.contains(spec.name))) {
      this.drop(db);
      return this.db();
    }
    return db;
  }

  /**
   * Runs fn in one transaction over the stores (an entity store's chunk store included) and
   * waits until it commits; maps storage errors.
   */
  async transaction<T>(stores: string[], mode: IDBTransactionMode, fn: (tx: Tx) => Promise<T>, durability: IDBTransactionDurability = 'default'): Promise<T> {
    const db = await this.db();
    const scope = stores.some((store) => store.startsWith(ENTITY_PREFIX))
      ? [...new Set(stores.flatMap((store) => (store.startsWith(ENTITY_PREFIX) ? [store, chunkStore(store.slice(ENTITY_PREFIX.length))] : [store])))]
      : stores;
    let tx: Tx;
    try {
      tx = db.transaction(scope, mode as 'readwrite', { durability }) as unknown as Tx;
    } catch (error) {
      throw toStorageError(error);
    }
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
      await tx.done.catch(() => undefined);
      // a request that failed aborted the transaction (and made fn fail): report its error
      throw toStorageError(tx.error ?? error);
    }
    try {
      await tx.done;
    } catch (error) {
      throw toStorageError(error ?? tx.error);
    }
    return result;
  }

  /** Closes the connection; later calls fail. */
  close(): void {
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    connection?.then((db) => db.close()).catch(() => undefined);
  }

  private drop(db: Db): void {
    try {
      db.close();
    } catch {
      // closed already
    }
    this.forget(db);
  }

  private forget(db: Db): void {
    if (this.current === db || this.current === null) {
      this.current = null;
      this.connection = null;
    }
  }

  private missing(db: Db): StoreSpec[] {
    const names = db.objectStoreNames;
    const missing: StoreSpec[] = [];
    const present: StoreSpec[] = [];
    for (const spec of this.specs) (names.contains(spec.name) ? present : missing).push(spec);
    if (missing.length > 0 || present.length === 0) return missing;
    // every store is there: check the indexes, in one read-only transaction
    const tx = db.transaction(present.map((spec) => spec.name), 'readonly');
    for (const spec of present) {
      const indexNames = tx.objectStore(spec.name).indexNames;
      if (spec.indexes.some((index) => !indexNames.contains(index.name))) missing.push(spec);
    }
    return missing;
  }

  private async open(): Promise<Db> {
    const factory = this.options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!factory) throw new StorageUnavailableError('IndexedDB is not available here');
    // open at the current version; a new database is created with every store
    let db = await this.request(factory, undefined);
    const missing = this.missing(db);
    if (missing.length > 0) {
      const version = db.version + 1;
      db.close();
      db = await this.request(factory, version);
    }
    return db;
  }

  /** One open request, with the schema upgrade, blocked and versionchange handling. */
  private request(factory: IDBFactory, version: number | undefined): Promise<Db> {
    return new Promise<Db>((resolve, reject) => {
      let request: IDBOpenDBRequest;
      try {
        request = version === undefined ? factory.open(this.options.name) : factory.open(this.options.name, version);
      } catch (error) {
        reject(toStorageError(error));
        return;
      }
      let blocked = false;
      request.addEventListener('upgradeneeded', () => {
        const raw = request.result;
        const upgradeTx = request.transaction;
        if (!upgradeTx) return;
        for (const spec of this.specs) {
          const store = raw.objectStoreNames.contains(spec.name)
            ? upgradeTx.objectStore(spec.name)
            : raw.createObjectStore(spec.name, spec.keyPath === null ? { autoIncrement: true } : { keyPath: spec.keyPath });
          for (const index of spec.indexes) {
            if (!store.indexNames.contains(index.name)) {
              store.createIndex(index.name, index.keyPath, { multiEntry: index.multiEntry ?? false });
            }
          }
        }
      });
      request.addEventListener('blocked', () => {
        blocked = true;
        reject(
          new StorageBlockedError(
            `database ${this.options.name} needs an upgrade to version ${version ?? '?'} but another tab keeps an older version open: close or reload the other tabs`,
          ),
        );
      });
      wrap(request).then(
        (db) => {
          const connection = db as unknown as Db;
          if (blocked) {
            // we gave up waiting; the upgrade went through later: do not keep a stray connection
            connection.close();
            return;
          }
          connection.addEventListener('versionchange', () => {
            // another tab upgrades the schema: let it, and reopen on next use
            this.drop(connection);
          });
          // the browser closed it (storage cleared, a crash): reopen on next use
          connection.addEventListener('close', () => this.forget(connection));
          resolve(connection);
        },
        (error: unknown) => reject(toStorageError(error ?? request.error)),
      );
    });
  }
}

/**
 * Requests issued without waiting for each answer (IndexedDB runs a transaction's requests
 * in order anyway): a browser then handles a page's puts without a round trip per row.
 * done() waits for all of them and fails with the first failure.
 */
export class Pipeline {
  private readonly pending: Promise<unknown>[] = [];

  add(request: Promise<unknown>): void {
    request.catch(() => undefined); // awaited in done(); no unhandled rejection if the transaction aborts first
    this.pending.push(request);
  }

  async done(): Promise<void> {
    await Promise.all(this.pending.splice(0));
  }
}

/** Maps an IndexedDB error to the package's typed storage errors; other errors pass unchanged. */
export function toStorageError(error: unknown): unknown {
  if (error instanceof SmartSyncError) return error;
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'QuotaExceededError') {
    return new StorageQuotaError(`the browser refused to store more data (quota exceeded): ${message}`, { cause: error });
  }
  if (
    typeof name === 'string' &&
    ['AbortError', 'ConstraintError', 'DataError', 'DataCloneError', 'InvalidStateError', 'NotFoundError', 'ReadOnlyError', 'TransactionInactiveError', 'UnknownError', 'VersionError', 'InvalidAccessError'].includes(name)
  ) {
    return new StorageError(`IndexedDB ${name}: ${message}`, { cause: error });
  }
  return error;
}
