// Temporary id -> real id, everywhere on the device, inside the transaction that applies
// the push result: the row itself (re-keyed), every row whose data refers to it (found
// through the `tempRefs` index, so the cost follows the references, not the store size),
// every queued operation that names it, and the id map.

import { IDMAP, QUEUE, entityStore, type Tx } from './database.js';
import { replaceDeep } from './validate.js';
import type { EntityId, EntityRecord, IdMapping, QueuedOperation } from './types.js';

export interface Remap {
  entityType: string;
  tempId: string;
  realId: EntityId;
  operationId: string;
  /** When the row was created on the device. */
  createdAt: number;
  syncedAt: number;
}

/** Applies one remap in tx (which must cover the queue, the id map and every entity store); returns the entity types whose rows changed. */
export async function applyRemap(tx: Tx, remap: Remap, entityTypes: readonly string[]): Promise<Set<string>> {
  const { tempId, realId } = remap;
  const touched = new Set<string>();
  await tx.objectStore(IDMAP).put({
    tempId,
    realId,
    entityType: remap.entityType,
    createdAt: remap.createdAt,
    syncedAt: remap.syncedAt,
    operationId: remap.operationId,
  } satisfies IdMapping);

  // the row: re-keyed under its real id
  const own = tx.objectStore(entityStore(remap.entityType));
  const record = (await own.get(tempId)) as EntityRecord | undefined;
  if (record) {
    await own.delete(tempId);
    record.id = realId;
    record.data = replaceDeep(record.data, tempId, realId);
    record.tempRefs = record.tempRefs.filter((ref) => ref !== tempId);
    await own.put(record);
    touched.add(remap.entityType);
  }

  // rows that refer to it (a pet's client_id)
  for (const entityType of entityTypes) {
    const store = tx.objectStore(entityStore(entityType));
    const referring = (await store.index('tempRefs').getAll(tempId)) as EntityRecord[];
    for (const row of referring) {
      row.data = replaceDeep(row.data, tempId, realId);
      if (row.base) row.base = replaceDeep(row.base, tempId, realId);
      row.tempRefs = row.tempRefs.filter((ref) => ref !== tempId);
      await store.put(row);
      touched.add(entityType);
    }
  }

  // queued operations that name it, as their entity or in their data
  const queue = tx.objectStore(QUEUE);
  const ops = (await queue.index('tempRefs').getAll(tempId)) as QueuedOperation[];
  for (const op of ops) {
    if (op.entityId === tempId) op.entityId = realId;
    if (op.data) op.data = replaceDeep(op.data, tempId, realId);
    op.tempRefs = op.tempRefs.filter((ref) => ref !== tempId);
    await queue.put(op);
  }
  return touched;
}
