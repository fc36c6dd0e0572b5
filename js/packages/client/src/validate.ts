// Checks of what an app passes in: every bad call throws a ValidationError at once,
// before anything is stored or queued.

import { ValidationError } from './errors.js';
import { isTempId } from './uuid.js';
import { RESOLUTION_STRATEGIES, type EntityData, type EntityId, type OperationType, type Priority, type ResolutionStrategy } from './types.js';

export const PRIORITY_RANK: Record<Priority, number> = { critical: 0, high: 1, normal: 2, low: 3 };
const PRIORITY_BY_RANK: Priority[] = ['critical', 'high', 'normal', 'low'];

export function priorityOfRank(rank: number): Priority {
  return PRIORITY_BY_RANK[rank] ?? 'normal';
}

/** The spec's queueOperation argument. */
export interface QueueOperationInput {
  operation: OperationType;
  entityType: string;
  /** Update, delete: the row's id (real or temporary). Create: a temporary id, a real id, or nothing (one is made). */
  entityId?: EntityId;
  /** Create, update: the fields. */
  data?: EntityData;
  tenantId?: string;
  practiceId?: string | number;
  userId?: string | number;
  priority?: Priority;
  maxRetries?: number;
  /** The server version the change is based on (by default the version of the local row). */
  version?: number;
  requiredPermissions?: string[];
}

/** What the instance was configured with, for the context checks. */
export interface ValidationContext {
  entityTypes: ReadonlySet<string>;
  tenantId: string;
  practiceId: string | number | undefined;
  userId: string | number | undefined;
}

/** Checks a queueOperation argument; returns it with defaults for what it may leave out. */
export function validateOperation(input: unknown, context: ValidationContext): QueueOperationInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError('invalid-operation', 'queueOperation expects an object {operation, entityType, entityId, data, ...}');
  }
  const op = input as Record<string, unknown>;
  const operation = op.operation;
  if (operation !== 'create' && operation !== 'update' && operation !== 'delete') {
    throw new ValidationError('invalid-operation', `operation must be "create", "update" or "delete", not ${show(operation)}`, 'operation');
  }
  const entityType = op.entityType;
  if (typeof entityType !== 'string' || !context.entityTypes.has(entityType)) {
    throw new ValidationError(
      'not-configured-entity-type',
      `unknown entity type ${show(entityType)}: configured are ${[...context.entityTypes].join(', ')}`,
      'entityType',
    );
  }
  const entityId = op.entityId;
  if (entityId !== undefined) checkEntityId(entityId);
  if ((operation === 'update' || operation === 'delete') && entityId === undefined) {
    throw new ValidationError('missing-entity-id', `an ${operation} needs the entityId of the row it changes`, 'entityId');
  }
  const data = op.data;
  if (operation !== 'delete') {
    if (data === undefined || data === null) {
      throw new ValidationError('missing-data', `a ${operation} needs data (an object of fields)`, 'data');
    }
    checkData(data);
    if (operation === 'update' && Object.keys(data as object).length === 0) {
      throw new ValidationError('missing-data', 'an update needs at least one field in data', 'data');
    }
  } else if (data !== undefined && data !== null) {
    checkData(data);
  }
  if (op.priority !== undefined && !(typeof op.priority === 'string' && op.priority in PRIORITY_RANK)) {
    throw new ValidationError('invalid-priority', `priority must be critical, high, normal or low, not ${show(op.priority)}`, 'priority');
  }
  if (op.maxRetries !== undefined && !(Number.isInteger(op.maxRetries) && (op.maxRetries as number) >= 0 && (op.maxRetries as number) <= 100)) {
    throw new ValidationError('invalid-max-retries', `maxRetries must be an integer from 0 to 100, not ${show(op.maxRetries)}`, 'maxRetries');
  }
  if (op.version !== undefined && !(Number.isSafeInteger(op.version) && (op.version as number) >= 0)) {
    throw new ValidationError('invalid-version', `version must be a non-negative integer, not ${show(op.version)}`, 'version');
  }
  if (op.requiredPermissions !== undefined) {
    const permissions = op.requiredPermissions;
    if (!Array.isArray(permissions) || permissions.some((p) => typeof p !== 'string' || p === '')) {
      throw new ValidationError('invalid-permissions', 'requiredPermissions must be an array of non-empty strings', 'requiredPermissions');
    }
  }
  // the server refuses an operation whose tenant, practice or user is not the token's (SS420)
  if (op.tenantId !== undefined && String(op.tenantId) !== context.tenantId) {
    throw new ValidationError('context-mismatch', `tenantId ${show(op.tenantId)} is not this instance's tenant ${show(context.tenantId)}`, 'tenantId');
  }
  if (op.practiceId !== undefined && context.practiceId !== undefined && String(op.practiceId) !== String(context.practiceId)) {
    throw new ValidationError('context-mismatch', `practiceId ${show(op.practiceId)} is not the configured practice ${show(context.practiceId)}`, 'practiceId');
  }
  if (op.userId !== undefined && context.userId !== undefined && String(op.userId) !== String(context.userId)) {
    throw new ValidationError('context-mismatch', `userId ${show(op.userId)} is not the configured user ${show(context.userId)}`, 'userId');
  }
  return op as unknown as QueueOperationInput;
}

export function checkEntityId(entityId: unknown): asserts entityId is EntityId {
  const ok =
    (typeof entityId === 'string' && entityId.length > 0 && entityId.length <= 255) ||
    (typeof entityId === 'number' && Number.isSafeInteger(entityId));
  if (!ok) {
    throw new ValidationError('invalid-entity-id', `an entity id is a non-empty string (at most 255 characters) or an integer, not ${show(entityId)}`, 'entityId');
  }
}

export function checkData(data: unknown): asserts data is EntityData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ValidationError('invalid-data', `data must be an object of fields, not ${show(data)}`, 'data');
  }
  try {
    JSON.stringify(data);
  } catch (cause) {
    throw new ValidationError('invalid-data', `data must be JSON (${cause instanceof Error ? cause.message : String(cause)})`, 'data');
  }
}

export function checkStrategy(strategy: unknown): asserts strategy is ResolutionStrategy {
  if (typeof strategy !== 'string' || !(RESOLUTION_STRATEGIES as readonly string[]).includes(strategy)) {
    throw new ValidationError('invalid-strategy', `strategy must be one of ${RESOLUTION_STRATEGIES.join(', ')}, not ${show(strategy)}`, 'strategy');
  }
}

/** The temporary ids in a value (strings with the prefix), in order, without duplicates. */
export function collectTempRefs(value: unknown, prefix: string, into: string[] = []): string[] {
  if (isTempId(value, prefix)) {
    if (!into.includes(value)) into.push(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectTempRefs(item, prefix, into);
  } else if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) collectTempRefs(item, prefix, into);
  }
  return into;
}

/** A copy of value with every string equal to from replaced by to; the same object when nothing changed. */
export function replaceDeep<T>(value: T, from: string, to: EntityId): T {
  if (value === from) return to as T;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const next = replaceDeep(item, from, to);
      if (next !== item) changed = true;
      return next;
    });
    return (changed ? out : value) as T;
  }
  if (typeof value === 'object' && value !== null) {
    let out: Record<string, unknown> | null = null;
    for (const [key, item] of Object.entries(value)) {
      const next = replaceDeep(item, from, to);
      if (next !== item) {
        out ??= { ...(value as Record<string, unknown>) };
        out[key] = next;
      }
    }
    return (out ?? value) as T;
  }
  return value;
}

function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return String(value);
  }
}
