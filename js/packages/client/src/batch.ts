// Which queued operations the next push carries. Pure: the queue in, a batch out.
//
// - Queue order: priority, then creation; but one entity's operations go strictly one
//   after the other, one per batch (an update waits for the answer to the create or update
//   before it, whose version it then carries), whatever their priorities.
// - Due: pending, past its backoff, and not about an entity with an unresolved conflict.
// - Dependencies: a create whose temporary id an operation refers to (a pet's clientId)
//   goes in the same batch or an earlier one: it is pulled in ahead of the operation, or
//   the operation waits. The server maps temporary ids within a batch and from its id map.
// - Isolated operations (retried alone to find the one a whole-request 400 was about) go
//   in a batch of their own.

import type { EntityId, QueuedOperation } from './types.js';
import { queueOrder } from './sync-queue.js';

/** The key of an entity, for sets and maps. */
export function entityKey(entityType: string, entityId: EntityId): string {
  return `${entityType}\u0000${typeof entityId}\u0000${String(entityId)}`;
}

export interface BatchOptions {
  now: number;
  size: number;
  /** Entities with an unresolved conflict: their operations wait for the resolution. */
  held: ReadonlySet<string>;
  /** Operations that go alone. */
  isolate?: ReadonlySet<string>;
}

/** The next batch from all queued operations (any order); empty when nothing is due. */
export function selectBatch(all: readonly QueuedOperation[], options: BatchOptions): QueuedOperation[] {
  const ops = [...all].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const firstOfEntity = new Map<string, QueuedOperation>();
  const createOf = new Map<string, QueuedOperation>();
  for (const op of ops) {
    const key = entityKey(op.entityType, op.entityId);
    if (op.status !== 'failed' && !firstOfEntity.has(key)) firstOfEntity.set(key, op);
    if (op.operation === 'create' && typeof op.entityId === 'string') createOf.set(op.entityId, op);
  }
  const isolate = options.isolate ?? new Set<string>();
  const eligible = (op: QueuedOperation): boolean => {
    const key = entityKey(op.entityType, op.entityId);
    return op.status === 'pending' && (op.nextAttemptAt ?? 0) <= options.now && !options.held.has(key) && firstOfEntity.get(key) === op;
  };

  const batch: QueuedOperation[] = [];
  const inBatch = new Set<string>();

  // adds op after the creates it depends on; false when it has to wait or does not fit
  const add = (op: QueuedOperation, depth: number): boolean => {
    if (inBatch.has(op.id)) return true;
    if (depth > 64 || batch.length >= options.size) return false;
    if (isolate.has(op.id)) {
      if (batch.length > 0) return false;
      batch.push(op);
      inBatch.add(op.id);
      return true;
    }
    if (batch.length === 1 && isolate.has(batch[0]!.id)) return false;
    for (const ref of op.tempRefs) {
      const create = createOf.get(ref);
      if (!create || create === op || inBatch.has(create.id) || create.status === 'failed') continue;
      if (!eligible(create) || !add(create, depth + 1)) return false;
    }
    if (batch.length >= options.size) return false;
    batch.push(op);
    inBatch.add(op.id);
    return true;
  };

  for (const op of ops.filter(eligible).sort(queueOrder)) {
    if (batch.length >= options.size) break;
    if (batch.length === 1 && isolate.has(batch[0]!.id)) break;
    add(op, 0);
  }
  return batch;
}
