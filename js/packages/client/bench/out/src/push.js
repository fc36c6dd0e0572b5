// The push phase of a sync: batches from the queue to the server, each answer applied in
// one IndexedDB transaction (never held across the request).
//
// Per operation result:
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
// A whole request that fails:
//   no answer, 401/403       nothing counted; the sync stops (the queue waits: offline-first)
//   408, 429, 5xx            every operation of the batch as a retryable failure
//   413 (batch too large)    the batch size halves and the batch goes again
//   another 4xx              its operations go again one by one, to find the one it is about
import { backoffDelay } from './backoff.js';
import { entityKey, selectBatch } from './batch.js';
import { CONFLICTS, Database, IDMAP, META, QUEUE, entityStore } from './database.js';
import { HttpError, ProtocolError, isAbort, isAuthError, isTransient } from './errors.js';
import { applyRemaps } from './id-remap.js';
import { collectTempRefs } from './validate.js';
import { isTempId } from './uuid.js';
/**
 * The queue as one push sees it: read once when the push starts, then kept current with
 * every write the push makes, so choosing each batch does not read the whole queue again.
 * Operations queued meanwhile wait for the next sync (the engine schedules one); a batch
 * always sends the operations as they are stored when it is taken.
 */
class QueueView {
    ops = new Map();
    put(op) {
        this.ops.set(op.id, op);
    }
    delete(id) {
        this.ops.delete(id);
    }
}
/** Pushes every due operation, batch after batch. */
export async function pushAll(ctx) {
    const outcome = { synced: 0, failed: 0, conflicts: 0, resolved: 0, retrying: 0, batches: 0 };
    const isolate = new Set();
    let size = ctx.batchSize;
    const view = await resetInFlight(ctx);
    for (;;) {
        const batch = await takeBatch(ctx, view, size, isolate);
        if (batch.length === 0)
            break;
        const request = {
            operations: batch.map(toPushOperation),
            clientTimestamp: ctx.clock.now(),
            clientId: ctx.deviceId,
        };
        outcome.batches += 1;
        let response;
        try {
            response = await ctx.transport.push(request, ctx.signal);
            if (!response || !Array.isArray(response.results))
                throw new ProtocolError('push: the answer has no results array');
        }
        catch (error) {
            if (isAbort(error, ctx.signal)) {
                await release(ctx, view, batch);
                throw error;
            }
            if (error instanceof HttpError && error.status === 413 && size > 1) {
                size = Math.max(1, Math.floor(batch.length / 2));
                await release(ctx, view, batch);
                continue;
            }
            if (!(error instanceof HttpError || error instanceof ProtocolError) || isAuthError(error)) {
                // no answer (or one about the token): nothing is known about the operations
                await release(ctx, view, batch);
                outcome.error = error;
                break;
            }
            if (isTransient(error) || error instanceof ProtocolError) {
                await applyFailures(ctx, view, batch, error, outcome);
                outcome.error = error;
                break;
            }
            if (batch.length > 1) {
                for (const op of batch)
                    isolate.add(op.id);
                await release(ctx, view, batch);
                continue;
            }
            await applyFailures(ctx, view, batch, error, outcome);
            continue;
        }
        await applyResults(ctx, view, batch, response, outcome);
    }
    return outcome;
}
/** Set in meta when the device must list everything again at its next pull. */
export const RELIST_KEY = 'relist';
/** The operation as the push request carries it. */
export function toPushOperation(op) {
    const out = {
        id: op.id,
        operation: op.operation,
        entityType: op.entityType,
        entityId: op.entityId,
        timestamp: op.timestamp,
        priority: op.priority,
        maxRetries: op.maxRetries,
    };
    if (op.data !== undefined)
        out.data = op.data;
    if (op.version !== undefined)
        out.version = op.version;
    if (op.tenantId !== undefined)
        out.tenantId = op.tenantId;
    if (op.practiceId !== undefined)
        out.practiceId = op.practiceId;
    if (op.userId !== undefined)
        out.userId = op.userId;
    if (op.requiredPermissions !== undefined)
        out.requiredPermissions = op.requiredPermissions;
    return out;
}
/**
 * Reads the queue; operations left in flight by a tab that stopped mid-push go back to
 * pending (the caller holds the sync lock).
 */
async function resetInFlight(ctx) {
    const view = new QueueView();
    await ctx.db.transaction([QUEUE], 'readwrite', async (tx) => {
        const queue = tx.objectStore(QUEUE);
        for (const op of (await queue.getAll())) {
            if (op.status === 'in-flight') {
                op.status = 'pending';
                await queue.put(op);
            }
            view.put(op);
        }
    });
    return view;
}
/** Selects the next batch and marks it in flight (and sent: the server may apply it from now on). */
async function takeBatch(ctx, view, size, isolate) {
    return ctx.db.transaction([QUEUE, CONFLICTS], 'readwrite', async (tx) => {
        const queue = tx.objectStore(QUEUE);
        const held = new Set();
        const conflicts = tx.objectStore(CONFLICTS).index('status');
        for (const status of ['unresolved', 'resolving']) {
            for (const conflict of (await conflicts.getAll(status)))
                held.add(entityKey(conflict.entityType, conflict.entityId));
        }
        const chosen = selectBatch([...view.ops.values()], { now: ctx.clock.now(), size, held, isolate });
        const batch = [];
        for (const { id } of chosen) {
            // as stored now: the app may have folded a change into it since the push began
            const op = (await queue.get(id));
            if (!op || op.status !== 'pending') {
                if (op)
                    view.put(op);
                else
                    view.delete(id);
                continue;
            }
            op.status = 'in-flight';
            op.sent = true;
            await queue.put(op);
            view.put(op);
            batch.push(op);
        }
        return batch;
    });
}
/** Puts a batch back to pending without counting an attempt. */
async function release(ctx, view, batch) {
    await ctx.db.transaction([QUEUE], 'readwrite', async (tx) => {
        const queue = tx.objectStore(QUEUE);
        for (const { id } of batch) {
            const op = (await queue.get(id));
            if (op && op.status === 'in-flight') {
                op.status = 'pending';
                await queue.put(op);
            }
            if (op)
                view.put(op);
            else
                view.delete(id);
        }
    });
}
/** A whole request failed: each operation of the batch fails the same way. */
async function applyFailures(ctx, view, batch, error, outcome) {
    const retryable = isTransient(error) || error instanceof ProtocolError;
    const failure = {
        message: error instanceof Error ? error.message : String(error),
        retryable,
    };
    if (error instanceof HttpError) {
        failure.status = error.status;
        if (error.code !== undefined)
            failure.code = error.code;
        if (error.retryAfterMs !== undefined)
            failure.retryAfterMs = error.retryAfterMs;
    }
    const types = new Set();
    await ctx.db.transaction([QUEUE, ...new Set(batch.map((op) => entityStore(op.entityType)))], 'readwrite', async (tx) => {
        for (const { id } of batch) {
            const op = (await tx.objectStore(QUEUE).get(id));
            if (!op)
                continue;
            if (await fail(ctx, tx, op, failure, outcome))
                types.add(op.entityType);
            view.put(op);
        }
    });
    for (const entityType of types)
        ctx.emit({ entityType, ids: null, source: 'push' });
}
/** Counts a failed attempt: a retry later, or failed for good. Returns true when the row's status changed. */
async function fail(ctx, tx, op, failure, outcome) {
    const now = ctx.clock.now();
    op.attempts += 1;
    const lastError = { message: failure.message, retryable: failure.retryable };
    if (failure.code !== undefined)
        lastError.code = failure.code;
    if (failure.status !== undefined)
        lastError.status = failure.status;
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
    if (op.operation === 'delete')
        return false;
    const rows = tx.objectStore(entityStore(op.entityType));
    const record = (await rows.get(op.entityId));
    if (!record || record.status === 'conflict')
        return false;
    record.status = 'failed';
    await rows.put(record);
    return true;
}
/** Applies a push response in one transaction. */
async function applyResults(ctx, view, batch, response, outcome) {
    const byId = new Map();
    for (const result of response.results) {
        if (result && result.operationId !== undefined && result.operationId !== null)
            byId.set(String(result.operationId), result);
    }
    const stores = [QUEUE, CONFLICTS, IDMAP, META, ...ctx.entityTypes.map(entityStore)];
    const touched = new Map();
    const touch = (entityType, id) => {
        if (id === null) {
            touched.set(entityType, null);
            return;
        }
        const ids = touched.get(entityType);
        if (ids === null)
            return;
        if (ids)
            ids.add(id);
        else
            touched.set(entityType, new Set([id]));
    };
    await ctx.db.transaction(stores, 'readwrite', async (tx) => {
        const queue = tx.objectStore(QUEUE);
        // first every temporary id the answer maps, in one pass over each store
        const remaps = [];
        const realIds = new Map();
        const inBatch = new Set(batch.map((op) => op.id));
        const waiting = new Set();
        for (const op of view.ops.values())
            if (!inBatch.has(op.id) && op.status !== 'failed')
                waiting.add(entityKey(op.entityType, op.entityId));
        for (const op of batch) {
            const result = byId.get(op.id);
            if (op.operation !== 'create' || !result?.success)
                continue;
            const tempId = result.tempId ?? (isTempId(op.entityId, ctx.tempIdPrefix) ? op.entityId : undefined);
            const realId = result.realId ?? result.entityId;
            if (tempId === undefined || realId === undefined || realId === tempId)
                continue;
            remaps.push({ entityType: op.entityType, tempId, realId, operationId: op.id, createdAt: op.timestamp, syncedAt: ctx.clock.now(), version: result.version, status: waiting.has(entityKey(op.entityType, tempId)) ? 'pending' : 'synced' });
            realIds.set(op.id, realId);
        }
        const remappedAsSynced = new Set(remaps.filter((r) => r.status === 'synced').map((r) => r.operationId));
        const remapped = await applyRemaps(tx, remaps, ctx.entityTypes);
        for (const op of remapped.ops)
            view.put(op);
        for (const type of remapped.types)
            touch(type, null);
        for (const sent of batch) {
            const result = byId.get(sent.id);
            // the operation as stored (a remap above may have rewritten it); a success or conflict only removes it
            const op = result?.success || result?.conflict ? sent : (await queue.get(sent.id));
            if (!op) {
                view.delete(sent.id);
                continue;
            }
            if (!result) {
                await fail(ctx, tx, op, { message: 'the push answer has no result for this operation', retryable: true }, outcome);
                view.put(op);
            }
            else if (result.success) {
                const entityId = realIds.get(op.id) ?? op.entityId;
                await succeed(ctx, tx, view, op, entityId, result, remappedAsSynced.has(op.id));
                touch(op.entityType, entityId);
                outcome.synced += 1;
                if (result.resolution)
                    outcome.resolved += 1;
            }
            else if (result.conflict) {
                if (await saveConflict(ctx, tx, op, result)) {
                    view.delete(op.id);
                    outcome.conflicts += 1;
                    touch(op.entityType, op.entityId);
                }
                else {
                    await fail(ctx, tx, op, { message: 'the server reported a conflict without a conflict id', retryable: false }, outcome);
                    view.put(op);
                }
            }
            else {
                const failure = { message: result.error ?? 'the server refused the operation', retryable: result.retryable === true };
                if (result.code !== undefined)
                    failure.code = result.code;
                if (await fail(ctx, tx, op, failure, outcome))
                    touch(op.entityType, op.entityId);
                view.put(op);
            }
        }
    });
    for (const [entityType, ids] of touched)
        ctx.emit({ entityType, ids: ids ? [...ids] : null, source: 'push' });
}
/** An applied operation: out of the queue; the row and the entity's later operations take its version. */
async function succeed(ctx, tx, view, op, entityId, result, remappedSynced) {
    const queue = tx.objectStore(QUEUE);
    await queue.delete(op.id);
    view.delete(op.id);
    // the entity's later operations build on this one: they carry its resulting version
    const later = (await queue.index('entity').getAll([op.entityType, entityId]));
    if (result.version !== undefined) {
        for (const next of later) {
            if (next.operation === 'create' || next.status === 'failed')
                continue;
            next.version = result.version;
            await queue.put(next);
            view.put(next);
        }
    }
    if (op.operation === 'delete')
        return;
    // a created row re-keyed by the remap already has its version; nothing else to change
    if (op.operation === 'create' && remappedSynced && later.length === 0 && !result.data)
        return;
    const rows = tx.objectStore(entityStore(op.entityType));
    const record = (await rows.get(entityId));
    if (!record)
        return;
    // a replayed answer may be older than what a pull brought since: keep the newer
    const stale = result.replayed === true && result.version !== undefined && record.version !== null && result.version < record.version;
    // an update answered without the row although the version moved by more than this write:
    // the device missed changes that no pull will send (they are older than its own write),
    // so the next pull lists everything again
    if (!stale &&
        op.operation === 'update' &&
        !result.data &&
        result.version !== undefined &&
        op.version !== undefined &&
        result.version !== op.version + 1) {
        await tx.objectStore(META).put({ key: RELIST_KEY, reason: `${op.entityType} ${String(entityId)}: version ${op.version} -> ${result.version}` });
    }
    if (!stale && result.version !== undefined)
        record.version = result.version;
    if (!stale && result.data && typeof result.data === 'object') {
        record.base = result.data;
        record.data = patched(result.data, later);
        record.tempRefs = collectTempRefs(record.data, ctx.tempIdPrefix).filter((ref) => ref !== entityId);
    }
    if (record.status !== 'conflict')
        record.status = later.some((next) => next.status !== 'failed') ? 'pending' : 'synced';
    await rows.put(record);
}
/** Saves a conflict result; false when the result has no conflict id to resolve it by. */
async function saveConflict(ctx, tx, op, result) {
    if (typeof result.conflictId !== 'number')
        return false;
    await tx.objectStore(QUEUE).delete(op.id);
    const data = result.conflictData;
    const conflict = {
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
    if (result.severity !== undefined)
        conflict.severity = result.severity;
    if (op.version !== undefined)
        conflict.baseVersion = op.version;
    if (result.serverVersion !== undefined)
        conflict.serverVersion = result.serverVersion;
    const conflicts = tx.objectStore(CONFLICTS);
    const existing = (await conflicts.get(conflict.id));
    if (!existing || existing.status === 'unresolved')
        await conflicts.put(conflict);
    const rows = tx.objectStore(entityStore(op.entityType));
    const record = (await rows.get(op.entityId));
    if (record) {
        record.status = 'conflict';
        record.base = conflict.serverData;
        await rows.put(record);
    }
    return true;
}
/** Server data with the changes of the still-queued operations on top. */
export function patched(server, pending) {
    let data = { ...server };
    for (const op of pending) {
        if (op.status === 'failed')
            continue;
        if ((op.operation === 'update' || op.operation === 'create') && op.data)
            data = { ...data, ...op.data };
    }
    return data;
}
