// The conflict store (the spec's conflictStorage) and resolveConflict.
//
// A conflict the server could not settle is kept here with the device's data and the
// server's side by side; the entity's later queued operations wait for it. Resolving sends
// the strategy to the server (which holds the authoritative conflict and does the
// three-way merge), stores the row it answers with, and lets the waiting operations go,
// based on the resolved version. Offline, the resolution is kept and sent by the next sync;
// meanwhile the device shows what the strategy will most likely produce.

import type { Clock } from './clock.js';
import { readRow } from './chunks.js';
import { CONFLICTS, Database, QUEUE, entityStore, type Tx } from './database.js';
import { HttpError, NetworkError, ValidationError, isTransient } from './errors.js';
import type { StoreChange } from './local-store.js';
import { attemptMerge } from './merge.js';
import { patched } from './push-results.js';
import type { Transport } from './transport.js';
import { checkData, checkStrategy } from './validate.js';
import type { ConflictRecord, EntityData, EntityRecord, QueuedOperation, ResolutionStrategy, ResolveResponse } from './types.js';

/** The spec's resolveConflict options. */
export interface ResolveOptions {
  strategy: ResolutionStrategy;
  /** manual: the data to write. */
  resolvedData?: EntityData;
  /** When the user decided (epoch ms; now by default). */
  appliedAt?: number;
}

/** What resolveConflict did. */
export interface ResolveConflictResult {
  conflictId: number;
  /** resolved: the server resolved it; queued: no network, the next sync sends it. */
  status: 'resolved' | 'queued';
  strategy: ResolutionStrategy;
  /** The row now on the device (null when deleted). */
  data: EntityData | null;
  version: number | null;
  /** The server's answer, when it was reached. */
  response?: ResolveResponse;
}

/** How long a resolved conflict stays in the store (7 days). */
export const RESOLVED_RETENTION_MS = 7 * 24 * 3600 * 1000;

export interface ConflictDeps {
  db: Database;
  transport: Transport;
  clock: Clock;
  emit(change: StoreChange): void;
  /** Called when a resolution frees queued operations. */
  onReleased(): void;
}

export class ConflictStore {
  constructor(private readonly deps: ConflictDeps) {}

  /** The spec's getUnresolvedConflicts(): open conflicts, oldest first (including those with a resolution waiting to be sent). */
  async getUnresolvedConflicts(): Promise<ConflictRecord[]> {
    const all = await this.deps.db.transaction([CONFLICTS], 'readonly', async (tx) => {
      const index = tx.objectStore(CONFLICTS).index('status');
      return [...((await index.getAll('unresolved')) as ConflictRecord[]), ...((await index.getAll('resolving')) as ConflictRecord[])];
    });
    return all.sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
  }

  /** One conflict by its id, or null. */
  async getConflict(conflictId: number): Promise<ConflictRecord | null> {
    const record = await this.deps.db.transaction([CONFLICTS], 'readonly', (tx) => tx.objectStore(CONFLICTS).get(conflictId));
    return (record as ConflictRecord | undefined) ?? null;
  }

  /** The spec's resolveConflict(conflictId, {strategy, resolvedData, appliedAt}). */
  async resolveConflict(conflictId: number, options: ResolveOptions): Promise<ResolveConflictResult> {
    if (!Number.isSafeInteger(conflictId) || conflictId <= 0) {
      throw new ValidationError('unknown-entity', `a conflict id is a positive integer, not ${JSON.stringify(conflictId)}`, 'conflictId');
    }
    if (typeof options !== 'object' || options === null) throw new ValidationError('invalid-strategy', 'resolveConflict(conflictId, {strategy}) needs options');
    checkStrategy(options.strategy);
    if (options.strategy === 'manual') {
      if (options.resolvedData === undefined) throw new ValidationError('invalid-resolved-data', 'the manual strategy needs resolvedData', 'resolvedData');
      checkData(options.resolvedData);
    } else if (options.resolvedData !== undefined) {
      throw new ValidationError('invalid-resolved-data', `resolvedData goes with the manual strategy only, not ${options.strategy}`, 'resolvedData');
    }
    if (options.appliedAt !== undefined && !Number.isFinite(options.appliedAt)) {
      throw new ValidationError('invalid-option', 'appliedAt is epoch milliseconds', 'appliedAt');
    }
    const appliedAt = options.appliedAt ?? this.deps.clock.now();
    const conflict = await this.getConflict(conflictId);

    let response: ResolveResponse;
    try {
      response = await this.send(conflictId, options);
    } catch (error) {
      if (conflict && (error instanceof NetworkError || (isTransient(error) && !(error instanceof HttpError && error.status < 500)))) {
        return this.queue(conflict, options, appliedAt);
      }
      if (error instanceof HttpError && (error.code === 'SS601' || error.code === 'SS602')) {
        // unknown or resolved elsewhere: nothing is left to resolve; pull brings the row
        await this.forget(conflictId);
      } else if (conflict && error instanceof HttpError) {
        await this.markError(conflictId, error);
      }
      throw error;
    }
    return this.applied(conflictId, conflict, options, appliedAt, response);
  }

  /** Sends the resolutions kept while offline (the sync engine calls it before pushing). Returns how many were sent. */
  async sendQueued(signal?: AbortSignal): Promise<number> {
    const waiting = await this.deps.db.transaction([CONFLICTS], 'readonly', (tx) => tx.objectStore(CONFLICTS).index('status').getAll('resolving') as Promise<ConflictRecord[]>);
    let sent = 0;
    for (const conflict of waiting) {
      const resolution = conflict.resolution;
      if (!resolution) continue;
      const options: ResolveOptions = { strategy: resolution.strategy };
      if (resolution.resolvedData !== undefined) options.resolvedData = resolution.resolvedData;
      let response: ResolveResponse;
      try {
        response = await this.send(conflict.id, options, signal);
      } catch (error) {
        if (error instanceof NetworkError || isTransient(error)) throw error;
        if (error instanceof HttpError && (error.code === 'SS601' || error.code === 'SS602')) await this.forget(conflict.id);
        else if (error instanceof HttpError) await this.markError(conflict.id, error, true);
        else throw error;
        continue;
      }
      await this.applied(conflict.id, conflict, options, resolution.appliedAt, response);
      sent += 1;
    }
    return sent;
  }

  private send(conflictId: number, options: ResolveOptions, signal?: AbortSignal): Promise<ResolveResponse> {
    const body: { strategy: ResolutionStrategy; resolvedData?: EntityData } = { strategy: options.strategy };
    if (options.resolvedData !== undefined) body.resolvedData = options.resolvedData;
    return this.deps.transport.resolveConflict(conflictId, body, signal);
  }

  /** The server resolved it: the row takes its answer, the conflict is closed, waiting operations go. */
  private async applied(conflictId: number, conflict: ConflictRecord | null, options: ResolveOptions, appliedAt: number, response: ResolveResponse): Promise<ResolveConflictResult> {
    const strategy = options.strategy;
    const entityType = conflict?.entityType ?? response.entityType;
    const entityId = response.entityId ?? conflict?.entityId;
    const data = response.deleted || response.data === null ? null : response.data;
    const version = response.version ?? null;
    const stores = [CONFLICTS, QUEUE];
    const known = entityType !== undefined && this.deps.db.entityStores.includes(entityStore(entityType));
    if (known) stores.push(entityStore(entityType));
    let local: EntityData | null = data;
    const now = this.deps.clock.now();
    await this.deps.db.transaction(stores, 'readwrite', async (tx) => {
      const conflicts = tx.objectStore(CONFLICTS);
      if (conflict) {
        const resolution: NonNullable<ConflictRecord['resolution']> = { strategy, appliedAt, version };
        if (options.resolvedData !== undefined) resolution.resolvedData = options.resolvedData;
        if (response.winner !== undefined) resolution.winner = response.winner;
        const closed: ConflictRecord = { ...conflict, status: 'resolved', resolution };
        delete closed.lastError;
        await conflicts.put(closed);
      }
      // resolved conflicts are kept a while for the record, then dropped
      for (const old of (await conflicts.index('status').getAll('resolved')) as ConflictRecord[]) {
        if ((old.resolution?.appliedAt ?? 0) < now - RESOLVED_RETENTION_MS) await conflicts.delete(old.id);
      }
      if (!known || entityId === undefined) return;
      const later = await this.release(tx, entityType, entityId, version);
      const rows = tx.objectStore(entityStore(entityType));
      await readRow(tx, entityType, entityId); // out of its chunk (if a listing put it in one): it is written here
      if (data === null || later.some((op) => op.operation === 'delete')) {
        // deleted on the server, or deleted here since (that delete still goes)
        await rows.delete(entityId);
        local = null;
        return;
      }
      const record: EntityRecord = { id: entityId, data: patched(data, later), version, status: later.length ? 'pending' : 'synced', tempRefs: [] };
      if (later.length) record.base = data;
      local = record.data;
      await rows.put(record);
    });
    if (known) this.deps.emit({ entityType, ids: entityId === undefined ? null : [entityId], source: 'resolve' });
    this.deps.onReleased();
    return { conflictId, status: 'resolved', strategy, data: local, version, response };
  }

  /** The entity's queued operations take the resolved version as their base. */
  private async release(tx: Tx, entityType: string, entityId: string | number, version: number | null): Promise<QueuedOperation[]> {
    const queue = tx.objectStore(QUEUE);
    const later = (await queue.index('entity').getAll([entityType, entityId])) as QueuedOperation[];
    const live = later.filter((op) => op.status !== 'failed');
    if (version !== null) {
      for (const op of live) {
        if (op.operation === 'create') continue;
        op.version = version;
        await queue.put(op);
      }
    }
    return live;
  }

  /** No network: keep the resolution for the next sync and show its likely outcome now. */
  private async queue(conflict: ConflictRecord, options: ResolveOptions, appliedAt: number): Promise<ResolveConflictResult> {
    const server = conflict.serverData ?? {};
    const local = conflict.localData ?? {};
    let shown: EntityData | null;
    switch (options.strategy) {
      case 'server-wins':
        shown = conflict.serverDeleted ? null : server;
        break;
      case 'client-wins':
        shown = conflict.operation === 'delete' ? null : { ...server, ...local };
        break;
      case 'merge':
        shown = attemptMerge(local, server) ?? { ...server, ...local };
        break;
      case 'last-write-wins': {
        const serverTime = Date.parse(String(server.updated_at ?? server.updatedAt ?? ''));
        const clientWins = Number.isNaN(serverTime) ? false : conflict.localTimestamp > serverTime;
        shown = clientWins ? (conflict.operation === 'delete' ? null : { ...server, ...local }) : conflict.serverDeleted ? null : server;
        break;
      }
      case 'manual':
        shown = { ...server, ...(options.resolvedData ?? {}) };
        break;
    }
    const resolution: NonNullable<ConflictRecord['resolution']> = { strategy: options.strategy, appliedAt };
    if (options.resolvedData !== undefined) resolution.resolvedData = options.resolvedData;
    const store = entityStore(conflict.entityType);
    await this.deps.db.transaction([CONFLICTS, store], 'readwrite', async (tx) => {
      await tx.objectStore(CONFLICTS).put({ ...conflict, status: 'resolving', resolution } satisfies ConflictRecord);
      const rows = tx.objectStore(store);
      const record = await readRow(tx, conflict.entityType, conflict.entityId);
      if (shown === null) {
        if (record) await rows.delete(conflict.entityId);
      } else {
        await rows.put({ ...(record ?? { id: conflict.entityId, version: conflict.serverVersion ?? null, tempRefs: [] }), data: shown, status: 'conflict' } as EntityRecord);
      }
    });
    this.deps.emit({ entityType: conflict.entityType, ids: [conflict.entityId], source: 'resolve' });
    return { conflictId: conflict.id, status: 'queued', strategy: options.strategy, data: shown, version: conflict.serverVersion ?? null };
  }

  private async forget(conflictId: number): Promise<void> {
    await this.deps.db.transaction([CONFLICTS], 'readwrite', (tx) => tx.objectStore(CONFLICTS).delete(conflictId));
    this.deps.onReleased();
  }

  private async markError(conflictId: number, error: HttpError, reopen = false): Promise<void> {
    await this.deps.db.transaction([CONFLICTS], 'readwrite', async (tx) => {
      const store = tx.objectStore(CONFLICTS);
      const conflict = (await store.get(conflictId)) as ConflictRecord | undefined;
      if (!conflict) return;
      const lastError: NonNullable<ConflictRecord['lastError']> = { message: error.message, status: error.status };
      if (error.code !== undefined) lastError.code = error.code;
      conflict.lastError = lastError;
      if (reopen) {
        conflict.status = 'unresolved';
        delete conflict.resolution;
      }
      await store.put(conflict);
    });
  }
}
