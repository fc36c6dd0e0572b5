// Every error the client throws is one of these classes, so an app can tell a bad call
// (ValidationError, thrown at once, nothing queued), a storage problem (StorageError and
// its kinds), a server answer (HttpError, with status, SQLSTATE code and body) and a
// network failure (NetworkError) apart with `instanceof`.
/** The base of every error this package throws. */
export class SmartSyncError extends Error {
    name = 'SmartSyncError';
}
/** Bad input to the API: thrown before anything is stored or queued. */
export class ValidationError extends SmartSyncError {
    name = 'ValidationError';
    code;
    field;
    constructor(code, message, field) {
        super(message);
        this.code = code;
        this.field = field;
    }
}
/** A module-level function was called before configureSmartSync(). */
export class NotConfiguredError extends SmartSyncError {
    name = 'NotConfiguredError';
    constructor() {
        super('smartsync is not configured: call configureSmartSync({transport, tenantId, deviceId, entityTypes}) first');
    }
}
/** The instance was closed; create a new one. */
export class ClosedError extends SmartSyncError {
    name = 'ClosedError';
    constructor() {
        super('this smartsync instance is closed');
    }
}
/** An IndexedDB failure. The subclasses name the ones an app should handle. */
export class StorageError extends SmartSyncError {
    name = 'StorageError';
}
/** The browser refused to store more (QuotaExceededError): free space or ask for persistence. */
export class StorageQuotaError extends StorageError {
    name = 'StorageQuotaError';
}
/**
 * The database needs a schema upgrade (a new entity type or index) but another tab keeps
 * an older connection open and did not close it: close or reload the other tabs.
 */
export class StorageBlockedError extends StorageError {
    name = 'StorageBlockedError';
}
/** No IndexedDB here (private mode of some browsers, a server-side render, a worker without it). */
export class StorageUnavailableError extends StorageError {
    name = 'StorageUnavailableError';
}
/** The server answered with an HTTP error status. */
export class HttpError extends SmartSyncError {
    name = 'HttpError';
    status;
    url;
    body;
    /** The SQLSTATE (`SS505`, `42501`, ...) from the body, when there is one. */
    code;
    /** `Retry-After` in milliseconds, when the server sent it. */
    retryAfterMs;
    constructor(status, url, body, retryAfterMs) {
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
    name = 'NetworkError';
    url;
    timedOut;
    constructor(url, cause, timedOut = false) {
        super(timedOut ? `no answer from ${url} in time` : `cannot reach ${url}: ${describe(cause)}`, { cause });
        this.url = url;
        this.timedOut = timedOut;
    }
}
/** The server's answer does not have the shape the protocol promises. */
export class ProtocolError extends SmartSyncError {
    name = 'ProtocolError';
}
/** True when retrying the same request later may succeed: network errors, 408, 429 and 5xx. */
export function isTransient(error) {
    if (error instanceof NetworkError)
        return true;
    if (error instanceof HttpError)
        return error.status === 408 || error.status === 429 || error.status >= 500;
    return false;
}
/** True for an answer that says the token is missing, expired or lacks a permission for the whole request. */
export function isAuthError(error) {
    return error instanceof HttpError && (error.status === 401 || error.status === 403);
}
/**
 * True when the server says the pull cursor cannot continue and the client must list
 * everything again: 410 / SS505 (the change log was pruned past it), or a cursor it cannot
 * read any more (SS501 malformed, SS502 signed by a replaced secret, SS504 another scope).
 */
export function isMustRefetch(error) {
    if (!(error instanceof HttpError))
        return false;
    return error.status === 410 || error.code === 'SS505' || error.code === 'SS501' || error.code === 'SS502' || error.code === 'SS504';
}
/** An AbortError as browsers throw it. */
export function abortError(signal) {
    if (signal?.reason !== undefined)
        return signal.reason;
    return new DOMException('The operation was aborted.', 'AbortError');
}
/** True for the error an aborted signal produces. */
export function isAbort(error, signal) {
    if (signal?.aborted && error === signal.reason)
        return true;
    return typeof error === 'object' && error !== null && error.name === 'AbortError';
}
function describe(cause) {
    if (cause instanceof Error) {
        const inner = cause.cause;
        return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
    }
    return String(cause);
}
