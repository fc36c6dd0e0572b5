// The sync queue (the spec's syncQueueStorage): operations waiting to be pushed, in
// IndexedDB, each written in the same transaction as the local row it changes.
//
// - Ids: every operation gets a UUIDv7 (stable across retries: the server's ledger answers
//   a replay with the stored result); a create without an id gets `temp_` + a UUIDv7.
// - Base versions: an update or delete carries the server version the device last saw.
// - Folding: an update of a row whose create (or update) is queued and was never sent is
//   merged into it; a delete of a row whose create was never sent drops both (the server
//   never hears of the row); a delete after an unsent update replaces the update.
// - Order: priority (critical, high, normal, low), then creation (batch.ts).

import { CONFLICTS, Database, QUEUE, entityStore } from './database.js';
import { ValidationError } from './errors.js';
import type { StoreChange } from './local-store.js';
import { PRIORITY_RANK, collectTempRefs, validateOperation, type QueueOperationInput, type ValidationContext } from './validate.js';
import type { EntityData, EntityRecord, QueuedOperation } from './types.js';
import type { Clock } from './clock.js';
import { readRow } from './chunks.js';

/** The spec's getStats() answer. */
export interface QueueStats {
  /** Operations waiting to be pushed (including those waiting for a retry). */
  pending: number;
  /** Operations sent and not yet answered. */
  inFlight: number;
  /** Operations the server refused for good, or that ran out of retries. */
  failed: number;
  /** Conflicts not resolved yet. */
  conflicts: number;
}

export interface SyncQueueDeps {
  db: Database;
  clock: Clock;
  newId: () => string;
  tempIdPrefix: string;
  context: ValidationContext;
  maxRetries: number;
  onChange(change: StoreChange): void;
  onQueued(): void;
}

export class SyncQueue {
  private recovery: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: SyncQueueDeps) {}

  /**
   * Puts operations left in flight by a page that reloaded, closed or crashed in the middle
   * of a push back to pending (no attempt counted): nothing else would send them again, and
   * getStats would count them in flight for good. `exclusive` runs the work under the sync
   * lock, so operations another tab is pushing right now stay as they are; resending one the
   * server had applied is safe (its ledger answers a replay by operation id). The queue's
   * reads, and the engine's first sync, wait for it. Called once, by createSmartSync.
   * Resolves with how many operations went back to pending.
   */
  recoverInterrupted(exclusive: (work: () => Promise<number>) => Promise<{ ran: true; value: number } | { ran: false }>): Promise<number> {
    const recovery = exclusive(() => this.releaseInFlight()).then(
      (outcome) => (outcome.ran ? outcome.value : 0),
      () => 0, // a storage problem shows on first use; the next push releases them too
    );
    this.recovery = recovery;
    return recovery;
  }

  /** Resolves once the startup recovery (recoverInterrupted) is done. */
  ready(): Promise<void> {
    return this.recovery.then(() => undefined);
  }

  /** Every in-flight operation back to pending (the caller holds the sync lock). */
  private releaseInFlight(): Promise<number> {
    return this.deps.db.transaction([QUEUE], 'readwrite', async (tx) => {
      const queue = tx.objectStore(QUEUE);
      let n = 0;
      for (const op of (await queue.getAll()) as QueuedOperation[]) {
        if (op.status !== 'in-flight') continue;
        op.status = 'pending';
        await queue.put(op);
        n += 1;
      }
      return n;
    });
  }

  /**
   * Queues an operation (the spec's queueOperation) and applies it to the local store in
   * the same transaction. Resolves with the queued operation that now carries the change
   * (the create or update it was folded into, if any), or null when a delete cancelled a
   * create that was never sent. Bad input throws a ValidationError and queues nothing.
   */
  async queueOperation(raw: QueueOperationInput): Promise<QueuedOperation | null> {
    const { db, clock, tempIdPrefix, context } = this.deps;
    const input = validateOperation(raw, context);
    const store = entityStore(input.entityType);
    const now = clock.now();
    const entityId = input.entityId ?? tempIdPrefix + this.deps.newId();
    const rank = PRIORITY_RANK[input.priority ?? 'normal'];

    const result = await db.transaction([QUEUE, store], 'readwrite', async (tx) => {
      const queue = tx.objectStore(QUEUE);
      const rows = tx.objectStore(store);
      const existing = (await queue.index('entity').getAll([input.entityType, entityId])) as QueuedOperation[];
      const last = existing.at(-1);
      const record = await readRow(tx, input.entityType, entityId);
      const foldable = last !== undefined && !last.sent && last.status === 'pending';

      if (input.operation === 'create') {
        if (record || (last && last.operation !== 'delete')) {
          throw new ValidationError('invalid-entity-id', `a ${input.entityType} row with id ${JSON.stringify(entityId)} exists already`, 'entityId');
        }
        const data = { ...input.data };
        await rows.put({ id: entityId, data, version: null, status: 'pending', tempRefs: this.refs(data, entityId) } satisfies EntityRecord);
        const op = this.newOperation(input, entityId, rank, now, data);
        await queue.put(op);
        return op;
      }

      if (last?.operation === 'delete' || (!record && !last && input.version === undefined)) {
        throw new ValidationError(
          'unknown-entity',
          last?.operation === 'delete'
            ? `${input.entityType} ${JSON.stringify(entityId)} is deleted on this device`
            : `${input.entityType} ${JSON.stringify(entityId)} is not on this device: pass the version the change is based on`,
          'entityId',
        );
      }

      if (input.operation === 'update') {
        const patch = input.data as EntityData;
        if (record) {
          record.data = { ...record.data, ...patch };
          record.tempRefs = this.refs(record.data, entityId);
          if (record.status !== 'conflict') record.status = 'pending';
          await rows.put(record);
        }
        if (foldable && (last.operation === 'create' || last.operation === 'update')) {
          last.data = { ...last.data, ...patch };
          if (last.operation === 'update') last.timestamp = now;
          last.rank = Math.min(last.rank, rank);
          last.priority = priorityName(last.rank);
          last.tempRefs = this.opRefs(last);
          await queue.put(last);
          return last;
        }
        const version = input.version ?? baseVersion(record, last);
        if (version === undefined) {
          throw new ValidationError('missing-version', `no base version for ${input.entityType} ${JSON.stringify(entityId)}: pass version`, 'version');
        }
        const op = this.newOperation(input, entityId, rank, now, { ...patch }, version);
        await queue.put(op);
        return op;
      }

      // delete
      if (foldable && last.operation === 'create') {
        for (const op of existing) await queue.delete(op.id);
        await rows.delete(entityId);
        return null;
      }
      if (record) await rows.delete(entityId);
      if (foldable && last.operation === 'update') {
        last.operation = 'delete';
        delete last.data;
        last.timestamp = now;
        last.rank = Math.min(last.rank, rank);
        last.priority = priorityName(last.rank);
        last.tempRefs = this.opRefs(last);
        await queue.put(last);
        return last;
      }
      const version = input.version ?? baseVersion(record, last);
      if (version === undefined) {
        throw new ValidationError('missing-version', `no base version for ${input.entityType} ${JSON.stringify(entityId)}: pass version`, 'version');
      }
      const op = this.newOperation(input, entityId, rank, now, undefined, version);
      await queue.put(op);
      return op;
    });

    this.deps.onChange({ entityType: input.entityType, ids: [entityId], source: 'local' });
    this.deps.onQueued();
    return result;
  }

  /** The spec's getStats(): `{pending, inFlight, failed, conflicts}`. */
  async getStats(): Promise<QueueStats> {
    await this.recovery;
    return this.deps.db.transaction([QUEUE, CONFLICTS], 'readonly', async (tx) => {
      const stats: QueueStats = { pending: 0, inFlight: 0, failed: 0, conflicts: 0 };
      // one request for the whole queue: a cursor costs a round trip per operation, and a
      // status bar asks after every change (120 queued creates: ~30 s of cursor steps in Chromium)
      for (const op of (await tx.objectStore(QUEUE).getAll()) as QueuedOperation[]) {
        if (op.status === 'pending') stats.pending += 1;
        else if (op.status === 'in-flight') stats.inFlight += 1;
        else stats.failed += 1;
      }
      const conflicts = tx.objectStore(CONFLICTS).index('status');
      stats.conflicts = (await conflicts.count('unresolved')) + (await conflicts.count('resolving'));
      return stats;
    });
  }

  /** Every queued operation, in queue order (priority, then creation). */
  async getOperations(): Promise<QueuedOperation[]> {
    await this.recovery;
    const ops = await this.deps.db.transaction([QUEUE], 'readonly', (tx) => tx.objectStore(QUEUE).getAll() as Promise<QueuedOperation[]>);
    return ops.sort(queueOrder);
  }

  /** Puts failed operations (all, or the ones named) back in the queue with fresh retries. */
  async retryFailed(ids?: string[]): Promise<number> {
    const count = await this.deps.db.transaction([QUEUE], 'readwrite', async (tx) => {
      const queue = tx.objectStore(QUEUE);
      let n = 0;
      for (const op of (await queue.getAll()) as QueuedOperation[]) {
        if (op.status !== 'failed' || (ids && !ids.includes(op.id))) continue;
        op.status = 'pending';
        op.attempts = 0;
        delete op.nextAttemptAt;
        delete op.lastError;
        await queue.put(op);
        n += 1;
      }
      return n;
    });
    if (count > 0) this.deps.onQueued();
    return count;
  }

  /** Removes an operation from the queue for good (its local row stays as it is). */
  async removeOperation(id: string): Promise<boolean> {
    return this.deps.db.transaction([QUEUE], 'readwrite', async (tx) => {
      const queue = tx.objectStore(QUEUE);
      const op = (await queue.get(id)) as QueuedOperation | undefined;
      if (!op || op.status === 'in-flight') return false;
      await queue.delete(id);
      return true;
    });
  }

  private newOperation(input: QueueOperationInput, entityId: string | number, rank: number, now: number, data?: EntityData, version?: number): QueuedOperation {
    const { context } = this.deps;
    const op: QueuedOperation = {
      id: this.deps.newId(),
      operation: input.operation,
      entityType: input.entityType,
      entityId,
      priority: priorityName(rank),
      rank,
      maxRetries: input.maxRetries ?? this.deps.maxRetries,
      tenantId: input.tenantId ?? context.tenantId,
      timestamp: now,
      status: 'pending',
      attempts: 0,
      sent: false,
      tempRefs: [],
    };
    if (data !== undefined) op.data = data;
    const v = version ?? input.version;
    if (v !== undefined) op.version = v;
    const practiceId = input.practiceId ?? context.practiceId;
    if (practiceId !== undefined) op.practiceId = practiceId;
    const userId = input.userId ?? context.userId;
    if (userId !== undefined) op.userId = userId;
    if (input.requiredPermissions !== undefined) op.requiredPermissions = [...input.requiredPermissions];
    op.tempRefs = this.opRefs(op);
    return op;
  }

  /** The temporary ids a row's data refers to (not its own id). */
  private refs(data: EntityData, ownId: string | number): string[] {
    return collectTempRefs(data, this.deps.tempIdPrefix).filter((ref) => ref !== ownId);
  }

  /** The temporary ids an operation refers to: its data's, and its entity id unless it creates it. */
  private opRefs(op: QueuedOperation): string[] {
    const refs = op.data ? collectTempRefs(op.data, this.deps.tempIdPrefix) : [];
    if (op.operation === 'create') return refs.filter((ref) => ref !== op.entityId);
    return collectTempRefs(op.entityId, this.deps.tempIdPrefix, refs);
  }
}

/** The queue's order: priority rank, then creation (the UUIDv7 id). */
export function queueOrder(a: QueuedOperation, b: QueuedOperation): number {
  return a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function priorityName(rank: number): QueuedOperation['priority'] {
  return (['critical', 'high', 'normal', 'low'] as const)[rank] ?? 'normal';
}

/**
 * The version a new update or delete is based on: the local row's, or 1 for a row created
 * on this device whose create has been sent but not answered (a new row starts at 1).
 * A later answer raises it to the version the device's own earlier write produced.
 */
function baseVersion(record: EntityRecord | undefined, last: QueuedOperation | undefined): number | undefined {
  if (record && record.version !== null) return record.version;
  return last ? 1 : undefined;
}
