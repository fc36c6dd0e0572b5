// What the sync engine needs of a server, and the one JSON request helper the two
// transports share: a token per request, a timeout, and every failure turned into
// HttpError (with status, SQLSTATE code, body, Retry-After) or NetworkError.
import { parseRetryAfter } from './backoff.js';
import { HttpError, NetworkError, ProtocolError, abortError } from './errors.js';
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Sends one request and reads a JSON answer, both within the timeout. */
export async function requestJson(options, url, init) {
    return exchange(options, url, init, async (response) => {
        if (init.method === 'HEAD' || response.status === 204)
            return undefined;
        let text;
        try {
            text = await response.text();
        }
        catch (cause) {
            throw new NetworkError(url, cause);
        }
        if (text === '')
            return undefined;
        try {
            return JSON.parse(text);
        }
        catch {
            throw new ProtocolError(`${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
        }
    });
}
/**
 * Sends one request; resolves with an ok Response once its headers arrived (the body is
 * the caller's to read, without a timeout: a stream), throws HttpError or NetworkError.
 */
export function send(options, url, init) {
    return exchange(options, url, init, async (response) => response);
}
async function exchange(options, url, init, read) {
    const doFetch = options.fetch ?? ((input, requestInit) => globalThis.fetch(input, requestInit));
    const headers = { Accept: init.accept ?? 'application/json', ...options.headers };
    const token = options.getToken ? await options.getToken() : undefined;
    if (token)
        headers.Authorization = `Bearer ${token}`;
    let body;
    if (init.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(init.body);
    }
    if (init.signal?.aborted)
        throw abortError(init.signal);
    const timeoutMs = init.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const controller = new AbortController();
    let timedOut = false;
    const timer = globalThis.setTimeout(() => {
        timedOut = true;
        controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort(init.signal?.reason);
    init.signal?.addEventListener('abort', onAbort, { once: true });
    try {
        let response;
        try {
            const requestInit = { method: init.method, headers, signal: controller.signal };
            if (body !== undefined)
                requestInit.body = body;
            response = await doFetch(url, requestInit);
        }
        catch (cause) {
            if (init.signal?.aborted)
                throw abortError(init.signal);
            throw new NetworkError(url, cause, timedOut);
        }
        if (!response.ok) {
            let errorBody = null;
            try {
                const text = await response.text();
                try {
                    errorBody = text === '' ? null : JSON.parse(text);
                }
                catch {
                    errorBody = text.slice(0, 1000);
                }
            }
            catch {
                errorBody = null;
            }
            const now = options.now ? options.now() : Date.now();
            throw new HttpError(response.status, url, errorBody, parseRetryAfter(response.headers.get('Retry-After'), now));
        }
        try {
            return await read(response);
        }
        catch (error) {
            if (init.signal?.aborted)
                throw abortError(init.signal);
            if (timedOut)
                throw new NetworkError(url, error, true);
            throw error;
        }
    }
    finally {
        globalThis.clearTimeout(timer);
        init.signal?.removeEventListener('abort', onAbort);
    }
}
/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base, path) {
    return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}
/** A query string of the defined parameters, each value URL-encoded (a `+` becomes %2B). */
export function query(params) {
    const parts = [];
    for (const [key, value] of Object.entries(params)) {
        if (value === undefined)
            continue;
        parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
    }
    return parts.length ? `?${parts.join('&')}` : '';
}
/** Reads a `changed` answer: `true`/`false`, or an object with a `changed` boolean. */
export function readChanged(body) {
    if (typeof body === 'boolean')
        return body;
    if (typeof body === 'object' && body !== null && typeof body.changed === 'boolean') {
        return body.changed;
    }
    return true; // an answer we do not understand: pull, which is always correct
}
/** An id as a path segment. */
export function idSegment(id) {
    return encodeURIComponent(String(id));
}
