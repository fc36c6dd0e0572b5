// The local store: the synced data on the device, one IndexedDB store per entity type,
// plus the rows the device changed and has not pushed yet. Reads never touch the network.
// create/update/delete change the row here at once and queue the operation; a create
// answers with its temporary id, which reads (and references) may use until the server's
// real id replaces it everywhere.
import { Database, IDMAP, entityStore, fieldIndex } from './database.js';
import { Emitter } from './emitter.js';
import { ValidationError } from './errors.js';
import { isTempId } from './uuid.js';
import { checkEntityId } from './validate.js';
export class LocalStore {
    db;
    types;
    queue;
    tempIdPrefix;
    changes = new Emitter();
    constructor(db, types, queue, tempIdPrefix) {
        this.db = db;
        this.types = types;
        this.queue = queue;
        this.tempIdPrefix = tempIdPrefix;
    }
    /** The row, or null. A temporary id that the server has since replaced still finds the row. */
    async get(entityType, id) {
        const store = this.storeOf(entityType);
        checkEntityId(id);
        return this.db.transaction([store, IDMAP], 'readonly', async (tx) => {
            let record = (await tx.objectStore(store).get(id));
            if (!record && typeof id === 'string') {
                if (isTempId(id, this.tempIdPrefix)) {
                    const mapping = (await tx.objectStore(IDMAP).get(id));
                    if (mapping && mapping.entityType === entityType)
                        record = (await tx.objectStore(store).get(mapping.realId));
                }
                else if (/^-?\d{1,15}$/.test(id)) {
                    record = (await tx.objectStore(store).get(Number(id)));
                }
            }
            return record ? toRow(entityType, record) : null;
        });
    }
    /** The rows of an entity type, in id order, those matching filter. An equality filter on one indexed field uses the index. */
    async list(entityType, filter, options = {}) {
        const store = this.storeOf(entityType);
        const schema = this.types.get(entityType);
        const limit = options.limit;
        if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
            throw new ValidationError('invalid-option', 'limit must be a positive integer', 'limit');
        }
        return this.db.transaction([store], 'readonly', async (tx) => {
            const objectStore = tx.objectStore(store);
            if (filter === undefined) {
                const records = (await objectStore.getAll(undefined, limit));
                return records.map((record) => toRow(entityType, record));
            }
            if (typeof filter === 'function') {
                const rows = [];
                let cursor = await objectStore.openCursor();
                while (cursor) {
                    const row = toRow(entityType, cursor.value);
                    if (filter(row)) {
                        rows.push(row);
                        if (limit !== undefined && rows.length >= limit)
                            break;
                    }
                    cursor = await cursor.continue();
                }
                return rows;
            }
            const entries = Object.entries(filter);
            const first = entries[0];
            let records;
            if (entries.length === 1 && first && schema.indexes.includes(first[0]) && isKey(first[1])) {
                records = (await objectStore.index(fieldIndex(first[0])).getAll(first[1]));
            }
            else {
                records = (await objectStore.getAll());
            }
            const rows = [];
            for (const record of records) {
                if (entries.every(([field, value]) => record.data[field] === value)) {
                    rows.push(toRow(entityType, record));
                    if (limit !== undefined && rows.length >= limit)
                        break;
                }
            }
            return rows;
        });
    }
    /** How many rows of an entity type the device has. */
    async count(entityType) {
        const store = this.storeOf(entityType);
        return this.db.transaction([store], 'readonly', (tx) => tx.objectStore(store).count());
    }
    subscribe(a, b) {
        if (typeof a === 'function')
            return this.changes.subscribe(a);
        this.storeOf(a);
        const listener = b;
        if (typeof listener !== 'function')
            throw new ValidationError('invalid-option', 'subscribe(entityType, listener) needs a listener function');
        return this.changes.subscribe((change) => {
            if (change.entityType === a)
                listener(change);
        });
    }
    /** Creates a row here and queues its create; resolves with its id (a new temporary id unless data names one) once stored on the device. */
    async create(entityType, data, options = {}) {
        const { id, ...rest } = options;
        const input = { operation: 'create', entityType, data, ...rest };
        if (id !== undefined)
            input.entityId = id;
        const op = await this.queue(input);
        return op.entityId;
    }
    /** Changes fields of a row here and queues the update (folded into a create or update not yet sent). */
    async update(entityType, id, data, options = {}) {
        await this.queue({ operation: 'update', entityType, entityId: id, data: data, ...options });
    }
    /** Deletes a row here and queues the delete (a create not yet sent is simply dropped). */
    async delete(entityType, id, options = {}) {
        await this.queue({ operation: 'delete', entityType, entityId: id, ...options });
    }
    /** The configured entity types. */
    get entityTypes() {
        return [...this.types.keys()];
    }
    storeOf(entityType) {
        if (!this.types.has(entityType)) {
            throw new ValidationError('not-configured-entity-type', `unknown entity type ${JSON.stringify(entityType)}: configured are ${[...this.types.keys()].join(', ')}`, 'entityType');
        }
        return entityStore(entityType);
    }
}
export function toRow(entityType, record) {
    return { entityType, id: record.id, data: record.data, version: record.version, syncStatus: record.status };
}
function isKey(value) {
    return typeof value === 'string' || (typeof value === 'number' && !Number.isNaN(value)) || value instanceof Date;
}
