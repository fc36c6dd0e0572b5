// Temporary id -> real id, everywhere on the device, inside the transaction that applies
// a push answer: each created row itself (re-keyed), every row whose data refers to one
// (found through the `tempRefs` index), every queued operation that names one, and the id
// map. All remaps of one answer are applied together: each store's rows that still hold
// temporary ids are read once, whatever the number of creates.

import { IDMAP, Pipeline, QUEUE, entityStore, type Tx } from './database.js';
import { readRow } from './chunks.js';
import { replaceDeep } from './validate.js';
import type { EntityData, EntityId, EntityRecord, IdMapping, QueuedOperation } from './types.js';

export interface Remap {
  entityType: string;
  tempId: string;
  realId: EntityId;
  operationId: string;
  /** When the row was created on the device. */
  createdAt: number;
  syncedAt: number;
  /** The version the server gave the row. */
  version?: number | undefined;
  /** The row's status now: synced, or pending when later operations of it wait in the queue. */
  status?: 'synced' | 'pending';
}

/**
 * Applies remaps in tx (which must cover the queue, the id map and every entity store).
 * Returns the entity types whose rows changed, and the queued operations it rewrote.
 */
export async function applyRemaps(tx: Tx, remaps: readonly Remap[], entityTypes: readonly string[]): Promise<{ types: Set<string>; ops: QueuedOperation[] }> {
  const types = new Set<string>();
  if (remaps.length === 0) return { types, ops: [] };
  const real = new Map(remaps.map((remap) => [remap.tempId, remap.realId]));
  const idmap = tx.objectStore(IDMAP);
  const writes = new Pipeline();
  for (const remap of remaps) {
    writes.add(idmap.put({
      tempId: remap.tempId,
      realId: remap.realId,
      entityType: remap.entityType,
      createdAt: remap.createdAt,
      syncedAt: remap.syncedAt,
      operationId: remap.operationId,
    } satisfies IdMapping));
  }

  // the rows: re-keyed under their real ids
  for (const remap of remaps) {
    const own = tx.objectStore(entityStore(remap.entityType));
    const record = (await own.get(remap.tempId)) as EntityRecord | undefined;
    if (!record) continue;
    await own.delete(remap.tempId);
    await readRow(tx, remap.entityType, remap.realId); // a listing may have brought the real id meanwhile: one row, here
    record.id = remap.realId;
    if (remap.version !== undefined) record.version = remap.version;
    if (remap.status !== undefined) record.status = remap.status;
    await own.put(rewriteRecord(record, real, remap.tempId));
    types.add(remap.entityType);
  }

  // rows that refer to them (a pet's client_id), through the index of temporary ids: one
  // range read per store, from the smallest to the largest id mapped (UUIDv7 ids sort by
  // creation, so the range holds little else), then filtered
  const sorted = [...real.keys()].sort();
  const range = IDBKeyRange.bound(sorted[0]!, sorted[sorted.length - 1]!);
  for (const entityType of entityTypes) {
    const store = tx.objectStore(entityStore(entityType));
    const seen = new Set<EntityId>();
    for (const row of (await store.index('tempRefs').getAll(range)) as EntityRecord[]) {
      if (seen.has(row.id)) continue; // a row with two temporary ids is in the index twice
      seen.add(row.id);
      if (!(row.tempRefs ?? []).some((ref) => real.has(ref))) continue;
      writes.add(store.put(rewriteRecord(row, real)));
      types.add(entityType);
    }
  }

  // queued operations that name them, as their entity or in their data
  const queue = tx.objectStore(QUEUE);
  const ops: QueuedOperation[] = [];
  const seen = new Set<string>();
  for (const op of (await queue.index('tempRefs').getAll(range)) as QueuedOperation[]) {
    if (seen.has(op.id)) continue;
    seen.add(op.id);
    if (!op.tempRefs.some((ref) => real.has(ref))) continue;
    for (const ref of op.tempRefs) {
      const to = real.get(ref);
      if (to === undefined) continue;
      if (op.entityId === ref) op.entityId = to;
      if (op.data) op.data = replaceDeep(op.data, ref, to);
    }
    op.tempRefs = op.tempRefs.filter((ref) => !real.has(ref));
    writes.add(queue.put(op));
    ops.push(op);
  }
  await writes.done();
  return { types, ops };
}

function rewriteRecord(record: EntityRecord, real: ReadonlyMap<string, EntityId>, ownTempId?: string): EntityRecord {
  let data: EntityData = record.data;
  let base = record.base;
  const refs = record.tempRefs ?? [];
  for (const ref of refs) {
    const to = real.get(ref);
    if (to === undefined) continue;
    data = replaceDeep(data, ref, to);
    if (base) base = replaceDeep(base, ref, to);
  }
  // its own former temporary id may appear in its data (an `id` field the app wrote)
  if (ownTempId !== undefined) data = replaceDeep(data, ownTempId, record.id);
  const out: EntityRecord = { ...record, data, tempRefs: refs.filter((ref) => !real.has(ref)) };
  if (base !== undefined) out.base = base;
  return out;
}
