// A push answer applied to the device, in one IndexedDB transaction. Per operation result:
//   success    removed from the queue; a create's temporary id is replaced by the real id
//              everywhere (id-remap.ts); the row takes the server's version (and its data
//              when the server sends the row); later queued operations of the entity take
//              that version as their base
//   conflict   removed from the queue (the server's ledger has it), saved in the conflict
//              store with local and server data; the entity's later operations wait for
//              the resolution
//   retryable  retried after exponential backoff with full jitter, at most maxRetries
//              times, then failed
//   otherwise  failed for good (a 4xx kind of refusal): kept, marked failed, never retried

import { backoffDelay } from './backoff.js';
import { entityKey } from './batch.js';
import { readRow } from './chunks.js';
import { CONFLICTS, IDMAP, META, QUEUE, entityStore, type Tx } from './database.js';
import { HttpError, ProtocolError, isTransient } from './errors.js';
import { applyRemaps, type Remap } from './id-remap.js';
import type { PushContext, PushOutcome, QueueView } from './push.js';
import { collectTempRefs } from './validate.js';
import { isTempId } from './uuid.js';
import type { ConflictRecord, EntityData, PushResponse, PushResult, QueuedOperation } from './types.js';

/** Set in meta when the device must list everything again at its next pull. */
export const RELIST_KEY = 'relist';

/** A whole request failed: each operation of the batch fails the same way. */
export async function applyFailures(ctx: PushContext, view: QueueView, batch: QueuedOperation[], error: unknown, outcome: PushOutcome): Promise<void> {
  const retryable = isTransient(error) || error instanceof ProtocolError;
  const failure: FailureInfo = {
    message: error instanceof Error ? error.message : String(error),
    retryable,
  };
  if (error instanceof HttpError) {
    failure.status = error.status;
    if (error.code !== undefined) failure.code = error.code;
    if (error.retryAfterMs !== undefined) failure.retryAfterMs = error.retryAfterMs;
  }
  const types = new Set<string>();
  await ctx.db.transaction([QUEUE, ...new Set(batch.map((op) => entityStore(op.entityType)))], 'readwrite', async (tx) => {
    for (const { id } of batch) {
      const op = (await tx.objectStore(QUEUE).get(id)) as QueuedOperation | undefined;
      if (!op) continue;
      if (await fail(ctx, tx, op, failure, outcome)) types.add(op.entityType);
      view.put(op);
    }
  });
  for (const entityType of types) ctx.emit({ entityType, ids: null, source: 'push' });
}

interface FailureInfo {
  message: string;
  retryable: boolean;
  code?: string;
  status?: number;
  retryAfterMs?: number;
}

/** Counts a failed attempt: a retry later, or failed for good. Returns true when the row's status changed. */
async function fail(ctx: PushContext, tx: Tx, op: QueuedOperation, failure: FailureInfo, outcome: PushOutcome): Promise<boolean> {
  const now = ctx.clock.now();
  op.attempts += 1;
  const lastError: QueuedOperation['lastError'] = { message: failure.message, retryable: failure.retryable };
  if (failure.code !== undefined) lastError.code = failure.code;
  if (failure.status !== undefined) lastError.status = failure.status;
  op.lastError = lastError;
  if (failure.retryable && op.attempts <= op.maxRetries) {
    op.status = 'pending';
    op.nextAttemptAt = now + backoffDelay(op.attempts, ctx.random, ctx.backoff, failure.retryAfterMs);
    await tx.objectStore(QUEUE).put(op);
    outcome.retrying += 1;
    return false;
  }
  op.status = 'failed';
  delete op.nextAttemptAt;
  await tx.objectStore(QUEUE).put(op);
  outcome.failed += 1;
  if (op.operation === 'delete') return false;
  const rows = tx.objectStore(entityStore(op.entityType));
  const record = await readRow(tx, op.entityType, op.entityId);
  if (!record || record.status === 'conflict') return false;
  record.status = 'failed';
  await rows.put(record);
  return true;
}

/** Applies a push response in one transaction. */
export async function applyResults(ctx: PushContext, view: QueueView, batch: QueuedOperation[], response: PushResponse, outcome: PushOutcome): Promise<void> {
  const byId = new Map<string, PushResult>();
  for (const result of response.results) {
    if (result && result.operationId !== undefined && result.operationId !== null) byId.set(String(result.operationId), result);
  }
  const stores = [QUEUE, CONFLICTS, IDMAP, META, ...ctx.entityTypes.map(entityStore)];
  const touched = new Map<string, Set<string | number> | null>();
  const touch = (entityType: string, id: string | number | null): void => {
    if (id === null) {
      touched.set(entityType, null);
      return;
    }
    const ids = touched.get(entityType);
    if (ids === null) return;
    if (ids) ids.add(id);
    else touched.set(entityType, new Set([id]));
  };

  await ctx.db.transaction(stores, 'readwrite', async (tx) => {
    const queue = tx.objectStore(QUEUE);
    // first every temporary id the answer maps, in one pass over each store
    const remaps: Remap[] = [];
    const realIds = new Map<string, string | number>();
    const inBatch = new Set(batch.map((op) => op.id));
    const waiting = new Set<string>();
    for (const op of view.ops.values()) if (!inBatch.has(op.id) && op.status !== 'failed') waiting.add(entityKey(op.entityType, op.entityId));
    for (const op of batch) {
      const result = byId.get(op.id);
      if (op.operation !== 'create' || !result?.success) continue;
      const tempId = result.tempId ?? (isTempId(op.entityId, ctx.tempIdPrefix) ? op.entityId : undefined);
      const realId = result.realId ?? result.entityId;
      if (tempId === undefined || realId === undefined || realId === tempId) continue;
      remaps.push({ entityType: op.entityType, tempId, realId, operationId: op.id, createdAt: op.timestamp, syncedAt: ctx.clock.now(), version: result.version, status: waiting.has(entityKey(op.entityType, tempId)) ? 'pending' : 'synced' });
      realIds.set(op.id, realId);
    }
    const remappedAsSynced = new Set(remaps.filter((r) => r.status === 'synced').map((r) => r.operationId));
    const remapped = await applyRemaps(tx, remaps, ctx.entityTypes);
    for (const op of remapped.ops) view.put(op);
    for (const type of remapped.types) touch(type, null);

    for (const sent of batch) {
      const result = byId.get(sent.id);
      // the operation as stored (a remap above may have rewritten it); a success or conflict only removes it
      const op = result?.success || result?.conflict ? sent : ((await queue.get(sent.id)) as QueuedOperation | undefined);
      if (!op) {
        view.delete(sent.id);
        continue;
      }
      if (!result) {
        await fail(ctx, tx, op, { message: 'the push answer has no result for this operation', retryable: true }, outcome);
        view.put(op);
      } else if (result.success) {
        const entityId = realIds.get(op.id) ?? op.entityId;
        await succeed(ctx, tx, view, op, entityId, result, remappedAsSynced.has(op.id));
        touch(op.entityType, entityId);
        outcome.synced += 1;
        if (result.resolution) outcome.resolved += 1;
      } else if (result.conflict) {
        if (await saveConflict(ctx, tx, op, result)) {
          view.delete(op.id);
          outcome.conflicts += 1;
          touch(op.entityType, op.entityId);
        } else {
          await fail(ctx, tx, op, { message: 'the server reported a conflict without a conflict id', retryable: false }, outcome);
          view.put(op);
        }
      } else {
        const failure: FailureInfo = { message: result.error ?? 'the server refused the operation', retryable: result.retryable === true };
        if (result.code !== undefined) failure.code = result.code;
        if (await fail(ctx, tx, op, failure, outcome)) touch(op.entityType, op.entityId);
        view.put(op);
      }
    }
  });
  for (const [entityType, ids] of touched) ctx.emit({ entityType, ids: ids ? [...ids] : null, source: 'push' });
}

/** An applied operation: out of the queue; the row and the entity's later operations take its version. */
async function succeed(ctx: PushContext, tx: Tx, view: QueueView, op: QueuedOperation, entityId: string | number, result: PushResult, remappedSynced: boolean): Promise<void> {
  const queue = tx.objectStore(QUEUE);
  await queue.delete(op.id);
  view.delete(op.id);

  // the entity's later operations build on this one: they carry its resulting version
  const later = (await queue.index('entity').getAll([op.entityType, entityId])) as QueuedOperation[];
  if (result.version !== undefined) {
    for (const next of later) {
      if (next.operation === 'create' || next.status === 'failed') continue;
      next.version = result.version;
      await queue.put(next);
      view.put(next);
    }
  }
  if (op.operation === 'delete') return;
  // a created row re-keyed by the remap already has its version; nothing else to change
  if (op.operation === 'create' && remappedSynced && later.length === 0 && !result.data) return;
  const rows = tx.objectStore(entityStore(op.entityType));
  const record = await readRow(tx, op.entityType, entityId);
  if (!record) return;
  // a replayed answer may be older than what a pull brought since: keep the newer
  const stale = result.replayed === true && result.version !== undefined && record.version !== null && result.version < record.version;
  // an update answered without the row although the version moved by more than this write:
  // the device missed changes that no pull will send (they are older than its own write),
  // so the next pull lists everything again
  if (
    !stale &&
    op.operation === 'update' &&
    !result.data &&
    result.version !== undefined &&
    op.version !== undefined &&
    result.version !== op.version + 1
  ) {
    await tx.objectStore(META).put({ key: RELIST_KEY, reason: `${op.entityType} ${String(entityId)}: version ${op.version} -> ${result.version}` });
  }
  if (!stale && result.version !== undefined) record.version = result.version;
  if (!stale && result.data && typeof result.data === 'object') {
    record.base = result.data;
    record.data = patched(result.data, later);
    record.tempRefs = collectTempRefs(record.data, ctx.tempIdPrefix).filter((ref) => ref !== entityId);
  }
  if (record.status !== 'conflict') record.status = later.some((next) => next.status !== 'failed') ? 'pending' : 'synced';
  await rows.put(record);
}

/** Saves a conflict result; false when the result has no conflict id to resolve it by. */
async function saveConflict(ctx: PushContext, tx: Tx, op: QueuedOperation, result: PushResult): Promise<boolean> {
  if (typeof result.conflictId !== 'number') return false;
  await tx.objectStore(QUEUE).delete(op.id);
  const data = result.conflictData;
  const conflict: ConflictRecord = {
    id: result.conflictId,
    operationId: op.id,
    operation: op.operation,
    entityType: op.entityType,
    entityId: op.entityId,
    localData: data?.localData ?? op.data ?? null,
    serverData: data?.serverData ?? null,
    serverDeleted: data?.serverDeleted === true,
    conflictType: data?.conflictType ?? 'version',
    affectedFields: data?.affectedFields ?? [],
    localTimestamp: op.timestamp,
    createdAt: ctx.clock.now(),
    status: 'unresolved',
  };
  if (result.severity !== undefined) conflict.severity = result.severity;
  if (op.version !== undefined) conflict.baseVersion = op.version;
  if (result.serverVersion !== undefined) conflict.serverVersion = result.serverVersion;
  const conflicts = tx.objectStore(CONFLICTS);
  const existing = (await conflicts.get(conflict.id)) as ConflictRecord | undefined;
  if (!existing || existing.status === 'unresolved') await conflicts.put(conflict);

  const rows = tx.objectStore(entityStore(op.entityType));
  const record = await readRow(tx, op.entityType, op.entityId);
  if (record) {
    record.status = 'conflict';
    record.base = conflict.serverData;
    await rows.put(record);
  }
  return true;
}

/** Server data with the changes of the still-queued operations on top. */
export function patched(server: EntityData, pending: readonly QueuedOperation[]): EntityData {
  let data = { ...server };
  for (const op of pending) {
    if (op.status === 'failed') continue;
    if ((op.operation === 'update' || op.operation === 'create') && op.data) data = { ...data, ...op.data };
  }
  return data;
}
