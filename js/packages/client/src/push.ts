// The push phase of a sync: batches from the queue to the server, each answer applied in
// one IndexedDB transaction (never held across the request) by push-results.ts.
//
// A whole request that fails:
//   no answer, 401/403       nothing counted; the sync stops (the queue waits: offline-first)
//   408, 429, 5xx            every operation of the batch as a retryable failure
//   413 (batch too large)    the batch size halves and the batch goes again
//   another 4xx              its operations go again one by one, to find the one it is about

import type { BackoffOptions } from './backoff.js';
import { entityKey, selectBatch } from './batch.js';
import type { Clock } from './clock.js';
import { CONFLICTS, Database, QUEUE } from './database.js';
import { HttpError, ProtocolError, isAbort, isAuthError, isTransient } from './errors.js';
import type { StoreChange } from './local-store.js';
import { applyFailures, applyResults } from './push-results.js';
import type { Transport } from './transport.js';
import type { ConflictRecord, PushOperation, PushRequest, PushResponse, QueuedOperation } from './types.js';

export interface PushContext {
  db: Database;
  transport: Transport;
  clock: Clock;
  random: () => number;
  backoff: BackoffOptions;
  deviceId: string;
  batchSize: number;
  entityTypes: readonly string[];
  tempIdPrefix: string;
  emit(change: StoreChange): void;
  signal?: AbortSignal | undefined;
}

/**
 * The queue as one push sees it: read once when the push starts, then kept current with
 * every write the push makes, so choosing each batch does not read the whole queue again.
 * Operations queued meanwhile wait for the next sync (the engine schedules one); a batch
 * always sends the operations as they are stored when it is taken.
 */
export class QueueView {
  readonly ops = new Map<string, QueuedOperation>();
  put(op: QueuedOperation): void {
    this.ops.set(op.id, op);
  }
  delete(id: string): void {
    this.ops.delete(id);
  }
}

export interface PushOutcome {
  /** Operations the server applied (or had applied: replays), including conflicts it resolved at once. */
  synced: number;
  /** Operations that failed for good in this sync. */
  failed: number;
  /** Conflicts saved to the conflict store. */
  conflicts: number;
  /** Conflicts the server resolved at once by policy (counted in synced too). */
  resolved: number;
  /** Operations waiting for a retry after a transient failure. */
  retrying: number;
  batches: number;
  /** Why the push stopped early (network, auth, server trouble), if it did. */
  error?: unknown;
}

/** Pushes every due operation, batch after batch. */
export async function pushAll(ctx: PushContext): Promise<PushOutcome> {
  const outcome: PushOutcome = { synced: 0, failed: 0, conflicts: 0, resolved: 0, retrying: 0, batches: 0 };
  const isolate = new Set<string>();
  let size = ctx.batchSize;
  const view = await resetInFlight(ctx);

  for (;;) {
    const batch = await takeBatch(ctx, view, size, isolate);
    if (batch.length === 0) break;
    const request: PushRequest = {
      operations: batch.map(toPushOperation),
      clientTimestamp: ctx.clock.now(),
      clientId: ctx.deviceId,
    };
    outcome.batches += 1;
    let response: PushResponse;
    try {
      response = await ctx.transport.push(request, ctx.signal);
      if (!response || !Array.isArray(response.results)) throw new ProtocolError('push: the answer has no results array');
    } catch (error) {
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
        for (const op of batch) isolate.add(op.id);
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

/** The operation as the push request carries it. */
export function toPushOperation(op: QueuedOperation): PushOperation {
  const out: PushOperation = {
    id: op.id,
    operation: op.operation,
    entityType: op.entityType,
    entityId: op.entityId,
    timestamp: op.timestamp,
    priority: op.priority,
    maxRetries: op.maxRetries,
  };
  if (op.data !== undefined) out.data = op.data;
  if (op.version !== undefined) out.version = op.version;
  if (op.tenantId !== undefined) out.tenantId = op.tenantId;
  if (op.practiceId !== undefined) out.practiceId = op.practiceId;
  if (op.userId !== undefined) out.userId = op.userId;
  if (op.requiredPermissions !== undefined) out.requiredPermissions = op.requiredPermissions;
  return out;
}

/**
 * Reads the queue; operations left in flight by a tab that stopped mid-push go back to
 * pending (the caller holds the sync lock).
 */
async function resetInFlight(ctx: PushContext): Promise<QueueView> {
  const view = new QueueView();
  await ctx.db.transaction([QUEUE], 'readwrite', async (tx) => {
    const queue = tx.objectStore(QUEUE);
    for (const op of (await queue.getAll()) as QueuedOperation[]) {
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
async function takeBatch(ctx: PushContext, view: QueueView, size: number, isolate: ReadonlySet<string>): Promise<QueuedOperation[]> {
  return ctx.db.transaction([QUEUE, CONFLICTS], 'readwrite', async (tx) => {
    const queue = tx.objectStore(QUEUE);
    const held = new Set<string>();
    const conflicts = tx.objectStore(CONFLICTS).index('status');
    for (const status of ['unresolved', 'resolving']) {
      for (const conflict of (await conflicts.getAll(status)) as ConflictRecord[]) held.add(entityKey(conflict.entityType, conflict.entityId));
    }
    const chosen = selectBatch([...view.ops.values()], { now: ctx.clock.now(), size, held, isolate });
    const batch: QueuedOperation[] = [];
    for (const { id } of chosen) {
      // as stored now: the app may have folded a change into it since the push began
      const op = (await queue.get(id)) as QueuedOperation | undefined;
      if (!op || op.status !== 'pending') {
        if (op) view.put(op);
        else view.delete(id);
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
async function release(ctx: PushContext, view: QueueView, batch: QueuedOperation[]): Promise<void> {
  await ctx.db.transaction([QUEUE], 'readwrite', async (tx) => {
    const queue = tx.objectStore(QUEUE);
    for (const { id } of batch) {
      const op = (await queue.get(id)) as QueuedOperation | undefined;
      if (op && op.status === 'in-flight') {
        op.status = 'pending';
        await queue.put(op);
      }
      if (op) view.put(op);
      else view.delete(id);
    }
  });
}
