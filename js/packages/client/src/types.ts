// The JSON shapes of the spec and of smartsync's server (README "Push", "Pull",
// "Conflicts"), and the records the client keeps in IndexedDB.

/** An entity's id: a real id as the server types it (a number for bigint keys) or a temporary id string. */
export type EntityId = string | number;

export type OperationType = 'create' | 'update' | 'delete';

/** The spec's priority names; the queue sends higher priorities first. */
export type Priority = 'critical' | 'high' | 'normal' | 'low';

/** A row's fields, as the app writes them or as the server sends them (column names). */
export type EntityData = Record<string, unknown>;

// --- push ----------------------------------------------------------------------

/** One operation of a push request (the spec's shape; `id` is a stable UUIDv7). */
export interface PushOperation {
  id: string;
  operation: OperationType;
  entityType: string;
  entityId?: EntityId;
  data?: EntityData;
  timestamp: number;
  version?: number;
  priority?: Priority;
  maxRetries?: number;
  tenantId?: string;
  practiceId?: string | number;
  userId?: string | number;
  requiredPermissions?: string[];
}

/** `POST /api/sync/push` (and `POST /rpc/sync_push`) request body. */
export interface PushRequest {
  operations: PushOperation[];
  clientTimestamp: number;
  clientId: string;
}

export interface ConflictData {
  localData: EntityData | null;
  serverData: EntityData | null;
  conflictType: ConflictType;
  affectedFields: string[];
}

export type ConflictType = 'version' | 'timestamp' | 'data' | 'deletion' | 'missing_entity' | string;
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** One entry of a push response's `results`. */
export interface PushResult {
  operationId: string | number;
  success: boolean;
  operation?: OperationType;
  entityType?: string;
  entityId?: EntityId;
  realId?: EntityId;
  tempId?: string;
  version?: number;
  data?: EntityData | null;
  alreadyDeleted?: boolean;
  replayed?: boolean;
  severity?: Severity;
  resolution?: { strategy: string; winner: string; conflictType: ConflictType; affectedFields: string[] };
  conflict?: boolean;
  conflictId?: number;
  serverVersion?: number;
  conflictData?: ConflictData & { serverDeleted?: boolean };
  error?: string;
  detail?: string;
  code?: string;
  retryable?: boolean;
}

/** The push response. */
export interface PushResponse {
  success: boolean;
  processed?: number;
  failed?: number;
  conflicts?: number;
  results: PushResult[];
}

// --- pull ------------------------------------------------------------------------

/** One change of a pull page. A `delete` is a tombstone; `create` and `update` are upserts. */
export interface PullChange {
  entityType: string;
  operation: OperationType;
  id: EntityId;
  data: EntityData | null;
  updatedAt?: string;
  version?: number;
}

/** One pull page (`GET /api/sync/pull`, `GET /rpc/sync_pull`). */
export interface PullResponse {
  success: boolean;
  timestamp: number;
  changes: PullChange[];
  hasMore: boolean;
  /** The exact cursor: send it back unchanged, even when `hasMore` is false. */
  cursor?: string;
  /** True on the pages of a full listing (a pull without a cursor). */
  full?: boolean;
}

export interface PullParams {
  cursor?: string;
  limit?: number;
  entityTypes?: string[];
  practiceId?: string | number;
}

// --- conflicts -----------------------------------------------------------------------

/** The spec's five strategies. */
export type ResolutionStrategy = 'server-wins' | 'client-wins' | 'merge' | 'last-write-wins' | 'manual';

export const RESOLUTION_STRATEGIES: readonly ResolutionStrategy[] = ['server-wins', 'client-wins', 'merge', 'last-write-wins', 'manual'];

/** `resolve_conflict`'s answer (README "Resolving"). */
export interface ResolveResponse {
  conflictId: number;
  status: string;
  strategy: ResolutionStrategy;
  winner?: string;
  entityType: string;
  entityId: EntityId;
  data: EntityData | null;
  deleted?: boolean;
  version: number | null;
  written?: boolean;
  stale?: boolean;
  resolvedBy?: string | null;
  resolvedAt?: string;
}

// --- stored records ---------------------------------------------------------------------

export type OperationStatus = 'pending' | 'in-flight' | 'failed';

/** An operation in the sync queue (the IndexedDB store `queue`). */
export interface QueuedOperation {
  /** The operation id: a UUIDv7, stable across retries, so a replay is answered from the server's ledger. */
  id: string;
  operation: OperationType;
  entityType: string;
  entityId: EntityId;
  data?: EntityData;
  /** The server version the device last saw (update, delete). */
  version?: number;
  priority: Priority;
  /** 0 critical, 1 high, 2 normal, 3 low: the queue's first sort key. */
  rank: number;
  maxRetries: number;
  tenantId?: string;
  practiceId?: string | number;
  userId?: string | number;
  requiredPermissions?: string[];
  /** When the change was made (epoch ms). */
  timestamp: number;
  status: OperationStatus;
  /** Requests that carried it and got no final answer (a failed one counts). */
  attempts: number;
  /** Sent at least once: the server may have applied it, so it is never folded into again. */
  sent: boolean;
  /** Not sent before this time (epoch ms): backoff after a transient failure. */
  nextAttemptAt?: number;
  lastError?: { message: string; code?: string; status?: number; retryable: boolean };
  /** Temporary ids it refers to (its entityId and values in data): where remapping looks. */
  tempRefs: string[];
}

export type EntitySyncStatus = 'synced' | 'pending' | 'conflict' | 'failed';

/** A row in the local store (one IndexedDB store per entity type). */
export interface EntityRecord {
  id: EntityId;
  data: EntityData;
  /** The server version this row is based on; null for a row created here and not yet pushed. */
  version: number | null;
  /**
   * Absent on a row the pull stored as the server sent it, which is synced: such a row then
   * has no entry in the `status` index, which holds only the rows that need attention.
   */
  status?: EntitySyncStatus;
  /** The server's data under the local changes (pending or conflicting rows). */
  base?: EntityData | null;
  /** Temporary ids this row refers to (absent: none). */
  tempRefs?: string[];
  updatedAt?: string;
}

/** A conflict kept on the device, with local and server data side by side. */
export interface ConflictRecord {
  /** The server's conflict id (`conflictId`), the argument of resolveConflict. */
  id: number;
  operationId: string;
  operation: OperationType;
  entityType: string;
  entityId: EntityId;
  localData: EntityData | null;
  serverData: EntityData | null;
  serverDeleted: boolean;
  conflictType: ConflictType;
  affectedFields: string[];
  severity?: Severity;
  baseVersion?: number;
  serverVersion?: number;
  /** When the local change was made. */
  localTimestamp: number;
  createdAt: number;
  status: 'unresolved' | 'resolving' | 'resolved';
  resolution?: {
    strategy: ResolutionStrategy;
    resolvedData?: EntityData;
    appliedAt: number;
    winner?: string;
    version?: number | null;
  };
  lastError?: { message: string; code?: string; status?: number };
}

/** The spec's ID mapping record. */
export interface IdMapping {
  tempId: string;
  realId: EntityId;
  entityType: string;
  createdAt: number;
  syncedAt: number;
  operationId: string;
}
