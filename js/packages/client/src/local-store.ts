// The local store: the synced data on the device, one IndexedDB store per entity type,
// plus the rows the device changed and has not pushed yet. Reads never touch the network.
// create/update/delete change the row here at once and queue the operation; a create
// answers with its temporary id, which reads (and references) may use until the server's
// real id replaces it everywhere.

import { Database, IDMAP, entityStore, fieldIndex, type EntityTypeSchema } from './database.js';
import { chunkedRows, compareIds, countChunked, findChunked } from './chunks.js';
import { Emitter } from './emitter.js';
import { ValidationError } from './errors.js';
import { isTempId } from './uuid.js';
import { checkEntityId, type QueueOperationInput } from './validate.js';
import type { EntityData, EntityId, EntityRecord, EntitySyncStatus, IdMapping, Priority, QueuedOperation } from './types.js';

/** A row as the app reads it. */
export interface EntityRow<T extends EntityData = EntityData> {
  entityType: string;
  id: EntityId;
  data: T;
  /** The server version the row is based on; null for a row created here and not yet pushed. */
  version: number | null;
  /** synced; pending (changed here, not yet pushed); conflict; failed (the server refused the change). */
  syncStatus: EntitySyncStatus;
}

/** What changed in the local store. `ids` null: many rows (a pull page, a relisting). */
export interface StoreChange {
  entityType: string;
  ids: EntityId[] | null;
  source: 'local' | 'push' | 'pull' | 'resolve' | 'other-tab';
}

/** Field equality (`{client_id: 7}`), or a predicate over rows. */
export type ListFilter<T extends EntityData = EntityData> = Partial<T> | ((row: EntityRow<T>) => boolean);

export interface ListOptions {
  /** At most this many rows. */
  limit?: number;
}

/** Options of create/update/delete, passed through to the queued operation. */
export interface WriteOptions {
  priority?: Priority;
  maxRetries?: number;
  requiredPermissions?: string[];
  /** Update, delete: the base version, when the local store does not have the row. */
  version?: number;
}

export type QueueFn = (input: QueueOperationInput) => Promise<QueuedOperation | null>;

export class LocalStore {
  readonly changes = new Emitter<StoreChange>();

  constructor(
    private readonly db: Database,
    private readonly types: ReadonlyMap<string, EntityTypeSchema>,
    private readonly queue: QueueFn,
    private readonly tempIdPrefix: string,
  ) {}

  /** The row, or null. A temporary id that the server has since replaced still finds the row. */
  async get<T extends EntityData = EntityData>(entityType: string, id: EntityId): Promise<EntityRow<T> | null> {
    const store = this.storeOf(entityType);
    checkEntityId(id);
    return this.db.transaction([store, IDMAP], 'readonly', async (tx) => {
      const find = async (key: EntityId): Promise<EntityRecord | undefined> => ((await tx.objectStore(store).get(key)) as EntityRecord | undefined) ?? findChunked(tx, entityType, key);
      let record = await find(id);
      if (!record && typeof id === 'string') {
        if (isTempId(id, this.tempIdPrefix)) {
          const mapping = (await tx.objectStore(IDMAP).get(id)) as IdMapping | undefined;
          if (mapping && mapping.entityType === entityType) record = await find(mapping.realId);
        } else if (/^-?\d{1,15}$/.test(id)) {
          record = await find(Number(id));
        }
      }
      return record ? toRow<T>(entityType, record) : null;
    });
  }

  /** The rows of an entity type, in id order, those matching filter. An equality filter on one indexed field uses the index. */
  async list<T extends EntityData = EntityData>(entityType: string, filter?: ListFilter<T>, options: ListOptions = {}): Promise<EntityRow<T>[]> {
    const store = this.storeOf(entityType);
    const schema = this.types.get(entityType)!;
    const limit = options.limit;
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
      throw new ValidationError('invalid-option', 'limit must be a positive integer', 'limit');
    }
    return this.db.transaction([store], 'readonly', async (tx) => {
      const objectStore = tx.objectStore(store);
      // rows a listing stored in chunks (chunks.ts) join the entity store's, in id order
      const chunked = (await countChunked(tx, entityType)) > 0 ? await chunkedRows(tx, entityType) : [];
      const withChunked = (records: EntityRecord[], keep?: (record: EntityRecord) => boolean): EntityRecord[] => {
        if (chunked.length === 0) return records;
        // a row is in one place; should a client of another version have stored it twice, the entity store's wins
        const own = new Set(records.map((record) => record.id));
        const more = chunked.filter((record) => !own.has(record.id) && (!keep || keep(record)));
        return [...records, ...more].sort((a, b) => compareIds(a.id, b.id));
      };
      if (filter === undefined) {
        const records = withChunked((await objectStore.getAll(undefined, limit)) as EntityRecord[]);
        return (limit !== undefined ? records.slice(0, limit) : records).map((record) => toRow<T>(entityType, record));
      }
      if (typeof filter === 'function') {
        const rows: EntityRow<T>[] = [];
        if (chunked.length > 0) {
          for (const record of withChunked((await objectStore.getAll()) as EntityRecord[])) {
            const row = toRow<T>(entityType, record);
            if (filter(row)) {
              rows.push(row);
              if (limit !== undefined && rows.length >= limit) break;
            }
          }
          return rows;
        }
        let cursor = await objectStore.openCursor();
        while (cursor) {
          const row = toRow<T>(entityType, cursor.value as EntityRecord);
          if (filter(row)) {
            rows.push(row);
            if (limit !== undefined && rows.length >= limit) break;
          }
          cursor = await cursor.continue();
        }
        return rows;
      }
      const entries = Object.entries(filter);
      const first = entries[0];
      let records: EntityRecord[];
      if (entries.length === 1 && first && schema.indexes.includes(first[0]) && isKey(first[1])) {
        const value = first[1] as IDBValidKey;
        records = withChunked((await objectStore.index(fieldIndex(first[0])).getAll(value)) as EntityRecord[], (record) => record.data[first[0]] === value);
      } else {
        records = withChunked((await objectStore.getAll()) as EntityRecord[]);
      }
      const rows: EntityRow<T>[] = [];
      for (const record of records) {
        if (entries.every(([field, value]) => record.data[field] === value)) {
          rows.push(toRow<T>(entityType, record));
          if (limit !== undefined && rows.length >= limit) break;
        }
      }
      return rows;
    });
  }

  /** How many rows of an entity type the device has. */
  async count(entityType: string): Promise<number> {
    const store = this.storeOf(entityType);
    return this.db.transaction([store], 'readonly', async (tx) => (await tx.objectStore(store).count()) + (await countChunked(tx, entityType)));
  }

  /**
   * Calls listener after every change of the local store (of one entity type, when given):
   * local writes, push results, pulled pages, resolutions, and other tabs' syncs.
   * Returns the unsubscribe function.
   */
  subscribe(listener: (change: StoreChange) => void): () => void;
  subscribe(entityType: string, listener: (change: StoreChange) => void): () => void;
  subscribe(a: string | ((change: StoreChange) => void), b?: (change: StoreChange) => void): () => void {
    if (typeof a === 'function') return this.changes.subscribe(a);
    this.storeOf(a);
    const listener = b;
    if (typeof listener !== 'function') throw new ValidationError('invalid-option', 'subscribe(entityType, listener) needs a listener function');
    return this.changes.subscribe((change) => {
      if (change.entityType === a) listener(change);
    });
  }

  /** Creates a row here and queues its create; resolves with its id (a new temporary id unless data names one) once stored on the device. */
  async create<T extends EntityData = EntityData>(entityType: string, data: T, options: WriteOptions & { id?: EntityId } = {}): Promise<EntityId> {
    const { id, ...rest } = options;
    const input: QueueOperationInput = { operation: 'create', entityType, data, ...rest };
    if (id !== undefined) input.entityId = id;
    const op = await this.queue(input);
    return op!.entityId;
  }

  /** Changes fields of a row here and queues the update (folded into a create or update not yet sent). */
  async update<T extends EntityData = EntityData>(entityType: string, id: EntityId, data: Partial<T>, options: WriteOptions = {}): Promise<void> {
    await this.queue({ operation: 'update', entityType, entityId: id, data: data as EntityData, ...options });
  }

  /** Deletes a row here and queues the delete (a create not yet sent is simply dropped). */
  async delete(entityType: string, id: EntityId, options: WriteOptions = {}): Promise<void> {
    await this.queue({ operation: 'delete', entityType, entityId: id, ...options });
  }

  /** The configured entity types. */
  get entityTypes(): string[] {
    return [...this.types.keys()];
  }

  private storeOf(entityType: string): string {
    if (!this.types.has(entityType)) {
      throw new ValidationError('not-configured-entity-type', `unknown entity type ${JSON.stringify(entityType)}: configured are ${[...this.types.keys()].join(', ')}`, 'entityType');
    }
    return entityStore(entityType);
  }
}

export function toRow<T extends EntityData>(entityType: string, record: EntityRecord): EntityRow<T> {
  return { entityType, id: record.id, data: record.data as T, version: record.version, syncStatus: record.status ?? 'synced' };
}

function isKey(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'number' && !Number.isNaN(value)) || value instanceof Date;
}
