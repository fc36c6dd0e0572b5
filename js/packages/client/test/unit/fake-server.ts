// A small in-memory model of smartsync's protocol for the unit tests: ids, versions,
// conflicts by base version, a ledger answering replays, an id map, a change log with an
// exact cursor, listings without a cursor, echo suppression and pruning (410). The real
// server is exercised by the integration tests; this one lets unit tests script failures
// and inspect every request.

import { HttpError, NetworkError, type Transport } from '../../src/index.js';
import type { EntityData, EntityId, PullParams, PullResponse, PushRequest, PushResponse, PushResult, ResolveResponse, ResolutionStrategy } from '../../src/index.js';

interface Row {
  data: EntityData;
  version: number;
}

interface Change {
  seq: number;
  entityType: string;
  id: EntityId;
  operation: 'create' | 'update' | 'delete';
  data: EntityData;
  version: number;
  clientId: string | null;
}

interface StoredConflict {
  id: number;
  entityType: string;
  entityId: EntityId;
  localData: EntityData;
  serverVersion: number;
  status: 'open' | 'resolved';
}

export type PushHook = (request: PushRequest) => PushResponse | undefined | Promise<PushResponse | undefined>;
export type PullHook = (params: PullParams, signal?: AbortSignal) => PullResponse | undefined | Promise<PullResponse | undefined>;

export class FakeServer {
  readonly tables = new Map<string, Map<EntityId, Row>>();
  readonly log: Change[] = [];
  readonly ledger = new Map<string, PushResult>();
  readonly idMap = new Map<string, EntityId>();
  readonly conflicts = new Map<number, StoredConflict>();
  readonly pushes: PushRequest[] = [];
  readonly pulls: PullParams[] = [];
  private nextId = 1;
  private nextConflict = 1;
  private seq = 0;
  private horizon = 0;
  /** Runs before a push; may throw or answer instead of the model. */
  beforePush: PushHook | null = null;
  /** Runs before a pull; may throw or answer instead of the model. */
  beforePull: PullHook | null = null;
  healthy = true;
  /** Operations per push the server accepts (413 above). */
  maxBatch = 1000;

  constructor(readonly entityTypes: string[]) {
    for (const type of entityTypes) this.tables.set(type, new Map());
  }

  /** A write made on the server (by SQL, another device): logged like any other. */
  write(entityType: string, id: EntityId, data: EntityData, clientId: string | null = null): Row {
    const table = this.tables.get(entityType)!;
    const old = table.get(id);
    const row: Row = { data: { ...(old?.data ?? {}), ...data, id }, version: (old?.version ?? 0) + 1 };
    row.data.version = row.version;
    table.set(id, row);
    this.append(entityType, id, old ? 'update' : 'create', row, clientId);
    return row;
  }

  remove(entityType: string, id: EntityId, clientId: string | null = null): void {
    const table = this.tables.get(entityType)!;
    const old = table.get(id)!;
    table.delete(id);
    this.append(entityType, id, 'delete', { data: old.data, version: old.version + 1 }, clientId);
  }

  /** Forgets the change log up to now: older cursors get 410 SS505. */
  prune(): void {
    this.horizon = this.seq;
  }

  /** A transport for one device. */
  transport(clientId: string): Transport & { calls: string[] } {
    const calls: string[] = [];
    return {
      kind: 'fake',
      calls,
      push: async (request) => {
        calls.push('push');
        return this.push(request, clientId);
      },
      pull: async (params, signal) => {
        calls.push('pull');
        return this.pull(params, clientId, signal);
      },
      resolveConflict: async (conflictId, body) => {
        calls.push('resolve');
        return this.resolve(conflictId, body, clientId);
      },
      health: async () => {
        calls.push('health');
        if (!this.healthy) throw new NetworkError('fake://health', new Error('unreachable'));
      },
    };
  }

  private append(entityType: string, id: EntityId, operation: Change['operation'], row: Row, clientId: string | null): void {
    this.seq += 1;
    this.log.push({ seq: this.seq, entityType, id, operation, data: { ...row.data }, version: row.version, clientId });
  }

  async push(request: PushRequest, clientId: string): Promise<PushResponse> {
    this.pushes.push(structuredClone(request));
    if (this.beforePush) {
      const answer = await this.beforePush(request);
      if (answer) return answer;
    }
    if (request.operations.length > this.maxBatch) throw new HttpError(413, 'fake://push', { code: 'SS403', message: 'too many operations' });
    const results: PushResult[] = [];
    for (const op of request.operations) {
      const key = `${clientId}/${op.id}`;
      const replay = this.ledger.get(key);
      if (replay) {
        results.push({ ...replay, replayed: true });
        continue;
      }
      const result = this.apply(op, clientId);
      if (!(result.success === false && result.retryable)) this.ledger.set(key, result);
      results.push(result);
    }
    const failed = results.filter((r) => !r.success && !r.conflict).length;
    const conflicts = results.filter((r) => r.conflict).length;
    return { success: failed === 0 && conflicts === 0, processed: results.filter((r) => r.success).length, failed, conflicts, results };
  }

  private apply(op: PushRequest['operations'][number], clientId: string): PushResult {
    const table = this.tables.get(op.entityType);
    const base = { operationId: op.id, operation: op.operation, entityType: op.entityType };
    if (!table) return { ...base, success: false, error: 'unknown entity type', code: 'SS408', retryable: false };
    const data = op.data ? this.mapTemps(op.data) : undefined;
    if (op.operation === 'create') {
      const tempId = typeof op.entityId === 'string' && op.entityId.startsWith('temp_') ? op.entityId : undefined;
      const id = tempId || op.entityId === undefined ? this.nextId++ : op.entityId;
      if (data && Object.values(data).some((v) => typeof v === 'string' && v.startsWith('temp_'))) {
        return { ...base, success: false, entityId: op.entityId!, error: 'unknown temporary id', code: 'SS423', retryable: false };
      }
      const row = this.write(op.entityType, id, data ?? {}, clientId);
      if (tempId) this.idMap.set(tempId, id);
      const result: PushResult = { ...base, success: true, entityId: id, realId: id, version: row.version };
      if (tempId) result.tempId = tempId;
      return result;
    }
    const id = this.mapId(op.entityId!);
    if (typeof id === 'string' && id.startsWith('temp_')) return { ...base, success: false, entityId: id, error: 'unknown temporary id', code: 'SS423', retryable: false };
    const current = table.get(id);
    if (op.version === undefined) return { ...base, success: false, entityId: id, error: 'no base version', code: 'SS412', retryable: false };
    if (!current) {
      if (op.operation === 'delete') return { ...base, success: true, entityId: id, alreadyDeleted: true };
      return this.conflict(base, op.entityType, id, data ?? {}, 0, null, 'missing_entity');
    }
    if (current.version !== op.version) {
      return this.conflict(base, op.entityType, id, data ?? {}, current.version, current.data, 'version');
    }
    if (op.operation === 'delete') {
      this.remove(op.entityType, id, clientId);
      return { ...base, success: true, entityId: id, version: current.version + 1 };
    }
    const row = this.write(op.entityType, id, data ?? {}, clientId);
    return { ...base, success: true, entityId: id, version: row.version };
  }

  private conflict(base: Pick<PushResult, 'operationId' | 'operation' | 'entityType'>, entityType: string, id: EntityId, localData: EntityData, serverVersion: number, serverData: EntityData | null, type: string): PushResult {
    const conflictId = this.nextConflict++;
    this.conflicts.set(conflictId, { id: conflictId, entityType, entityId: id, localData, serverVersion, status: 'open' });
    return {
      ...base,
      success: false,
      conflict: true,
      conflictId,
      entityId: id,
      severity: 'high',
      serverVersion,
      conflictData: { localData, serverData: serverData ? { ...serverData } : null, conflictType: type, affectedFields: Object.keys(localData) },
    };
  }

  private mapId(id: EntityId): EntityId {
    return typeof id === 'string' && this.idMap.has(id) ? this.idMap.get(id)! : id;
  }

  private mapTemps(data: EntityData): EntityData {
    const out: EntityData = {};
    for (const [k, v] of Object.entries(data)) out[k] = typeof v === 'string' && this.idMap.has(v) ? this.idMap.get(v) : v;
    return out;
  }

  async pull(params: PullParams, clientId: string, signal?: AbortSignal): Promise<PullResponse> {
    this.pulls.push({ ...params });
    if (this.beforePull) {
      const answer = await this.beforePull(params, signal);
      if (answer) return answer;
    }
    const limit = params.limit ?? 500;
    const types = params.entityTypes ?? this.entityTypes;
    const cursor = params.cursor;
    if (cursor === undefined || cursor.startsWith('L:')) {
      // a listing: types in order, ids ascending; cursor L:<typeIndex>:<lastId>:<seqAtStart>
      let [typeIndex, lastId, seqAtStart] = cursor ? parseListing(cursor) : [0, null, this.seq];
      const changes: PullResponse['changes'] = [];
      while (typeIndex < types.length && changes.length < limit) {
        const type = types[typeIndex]!;
        const rows = [...this.tables.get(type)!.entries()].sort(([a], [b]) => compare(a, b)).filter(([id]) => lastId === null || compare(id, lastId) > 0);
        for (const [id, row] of rows) {
          if (changes.length >= limit) break;
          changes.push({ entityType: type, operation: 'create', id, data: { ...row.data }, version: row.version });
          lastId = id;
        }
        if (changes.length < limit) {
          typeIndex += 1;
          lastId = null;
        }
      }
      const done = typeIndex >= types.length;
      return {
        success: true,
        timestamp: Date.now(),
        full: true,
        hasMore: !done,
        changes,
        cursor: done ? `C:${seqAtStart}` : `L:${typeIndex}:${JSON.stringify(lastId)}:${seqAtStart}`,
      };
    }
    const after = Number(cursor.slice(2));
    if (after < this.horizon) throw new HttpError(410, 'fake://pull', { code: 'SS505', message: 'must refetch' });
    const pending = this.log.filter((c) => c.seq > after && types.includes(c.entityType));
    const page = pending.slice(0, limit);
    const last = page.at(-1)?.seq ?? after;
    return {
      success: true,
      timestamp: Date.now(),
      full: false,
      hasMore: pending.length > limit,
      cursor: `C:${last}`,
      changes: page
        .filter((c) => c.clientId !== clientId)
        .map((c) => ({ entityType: c.entityType, operation: c.operation, id: c.id, data: c.data, version: c.version })),
    };
  }

  async resolve(conflictId: number, body: { strategy: ResolutionStrategy; resolvedData?: EntityData }, clientId: string): Promise<ResolveResponse> {
    const conflict = this.conflicts.get(conflictId);
    if (!conflict) throw new HttpError(404, 'fake://resolve', { code: 'SS601', message: 'conflict not found' });
    if (conflict.status === 'resolved') throw new HttpError(409, 'fake://resolve', { code: 'SS602', message: 'already resolved' });
    const table = this.tables.get(conflict.entityType)!;
    const current = table.get(conflict.entityId);
    conflict.status = 'resolved';
    let row = current;
    if (body.strategy === 'client-wins' || body.strategy === 'merge') row = this.write(conflict.entityType, conflict.entityId, conflict.localData, clientId);
    else if (body.strategy === 'manual') row = this.write(conflict.entityType, conflict.entityId, body.resolvedData!, clientId);
    return {
      conflictId,
      status: 'resolved',
      strategy: body.strategy,
      entityType: conflict.entityType,
      entityId: conflict.entityId,
      data: row ? { ...row.data } : null,
      version: row?.version ?? null,
      written: row !== current,
    };
  }
}

function parseListing(cursor: string): [number, EntityId | null, number] {
  const [, typeIndex, lastId, seq] = cursor.split(':');
  return [Number(typeIndex), JSON.parse(lastId!) as EntityId | null, Number(seq)];
}

function compare(a: EntityId, b: EntityId): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
