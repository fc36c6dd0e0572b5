// Every error the client throws is one of these classes, so an app can tell a bad call
// (ValidationError, thrown at once, nothing queued), a storage problem (StorageError and
// its kinds), a server answer (HttpError, with status, SQLSTATE code and body) and a
// network failure (NetworkError) apart with `instanceof`.

/** The base of every error this package throws. */
export class SmartSyncError extends Error {
  override name = 'SmartSyncError';
}

/** What a ValidationError is about, for programs that react to it. */
export type ValidationCode =
  | 'not-configured-entity-type'
  | 'invalid-operation'
  | 'missing-entity-id'
  | 'missing-data'
  | 'invalid-data'
  | 'invalid-entity-id'
  | 'invalid-priority'
  | 'invalid-version'
  | 'missing-version'
  | 'invalid-max-retries'
  | 'invalid-permissions'
  | 'context-mismatch'
  | 'unknown-entity'
  | 'invalid-strategy'
  | 'invalid-resolved-data'
  | 'invalid-option';

/** Bad input to the API: thrown before anything is stored or queued. */
export class ValidationError extends SmartSyncError {
  override name = 'ValidationError';
  readonly code: ValidationCode;
  readonly field: string | undefined;
  constructor(code: ValidationCode, message: string, field?: string) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

/** A module-level function was called before configureSmartSync(). */
export class NotConfiguredError extends SmartSyncError {
  override name = 'NotConfiguredError';
  constructor() {
    super('smartsync is not configured: call configureSmartSync({transport, tenantId, deviceId, entityTypes}) first');
  }
}

/** The instance was closed; create a new one. */
export class ClosedError extends SmartSyncError {
  override name = 'ClosedError';
  constructor() {
    super('this smartsync instance is closed');
  }
}

/** An IndexedDB failure. The subclasses name the ones an app should handle. */
export class StorageError extends SmartSyncError {
  override name = 'StorageError';
}

/** The browser refused to store more (QuotaExceededError): free space or ask for persistence. */
export class StorageQuotaError extends StorageError {
  override name = 'StorageQuotaError';
}

/**
 * The database needs a schema upgrade (a new entity type or index) but another tab keeps
 * an older connection open and did not close it: close or reload the other tabs.
 */
export class StorageBlockedError extends StorageError {
  override name = 'StorageBlockedError';
}

/** No IndexedDB here (private mode of some browsers, a server-side render, a worker without it). */
export class StorageUnavailableError extends StorageError {
  override name = 'StorageUnavailableError';
}

/** The body of an error answer: PostgREST's and @smartsync/server's `{code, message, details, hint}`. */
export interface ErrorBody {
  code?: string;
  message?: string;
  details?: unknown;
  hint?: unknown;
  [key: string]: unknown;
}

/** The server answered with an HTTP error status. */
export class HttpError extends SmartSyncError {
  override name = 'HttpError';
  readonly status: number;
  readonly url: string;
  readonly body: ErrorBody | string | null;
  /** The SQLSTATE (`SS505`, `42501`, ...) from the body, when there is one. */
  readonly code: string | undefined;
  /** `Retry-After` in milliseconds, when the server sent it. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, url: string, body: ErrorBody | string | null, retryAfterMs?: number) {
    const detail = typeof body === 'object' && body !== null ? body.message : body;
    const code = typeof body === 'object' && body !== null && typeof body.code === 'string' ? body.code : undefined;
    super(`HTTP ${status}${code ? ` ${code}` : ''} from ${url}${detail ? `: ${String(detail).slice(0, 300)}` : ''}`);
    this.status = status;
    this.url = url;
    this.body = body;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The request never got an answer: offline, DNS, connection refused, or a timeout. */
export class NetworkError extends SmartSyncError {
  override name = 'NetworkError';
  readonly url: string;
  readonly timedOut: boolean;
  constructor(url: string, cause: unknown, timedOut = false) {
    super(timedOut ? `no answer from ${url} in time` : `cannot reach ${url}: ${describe(cause)}`, { cause });
    this.url = url;
    this.timedOut = timedOut;
  }
}

/** The server's answer does not have the shape the protocol promises. */
export class ProtocolError extends SmartSyncError {
  override name = 'ProtocolError';
}

/** True when retrying the same request later may succeed: network errors, 408, 429 and 5xx. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof HttpError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return false;
}

/** True for an answer that says the token is missing, expired or lacks a permission for the whole request. */
export function isAuthError(error: unknown): boolean {
  return error instanceof HttpError && (error.status === 401 || error.status === 403);
}

/**
 * True when the server says the pull cursor cannot continue and the client must list
 * everything again: 410 / SS505 (the change log was pruned past it), or a cursor it cannot
 * read any more (SS501 malformed, SS502 signed by a replaced secret, SS504 another scope).
 */
export function isMustRefetch(error: unknown): boolean {
  if (!(error instanceof HttpError)) return false;
  return error.status === 410 || error.code === 'SS505' || error.code === 'SS501' || error.code === 'SS502' || error.code === 'SS504';
}

/** An AbortError as browsers throw it. */
export function abortError(signal?: AbortSignal): unknown {
  if (signal?.reason !== undefined) return signal.reason;
  return new DOMException('The operation was aborted.', 'AbortError');
}

/** True for the error an aborted signal produces. */
export function isAbort(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && error === signal.reason) return true;
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}
