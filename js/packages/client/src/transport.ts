// What the sync engine needs of a server, and the one JSON request helper the two
// transports share: a token per request, a timeout, and every failure turned into
// HttpError (with status, SQLSTATE code, body, Retry-After) or NetworkError.

import { parseRetryAfter } from './backoff.js';
import { HttpError, NetworkError, ProtocolError, abortError, type ErrorBody } from './errors.js';
import type { EntityId, PullParams, PullResponse, PushRequest, PushResponse, ResolveResponse, ResolutionStrategy, EntityData } from './types.js';

/** What changed() asks about: the pull's cursor and scope. */
export interface ChangedParams {
  cursor: string;
  entityTypes?: string[];
}

/** What a live stream is about: the pull's cursor (if any) and scope. */
export interface LiveParams {
  cursor?: string;
  entityTypes?: string[];
}

/** A live stream's callbacks. */
export interface LiveHandlers {
  /** The server says something changed: pull. */
  onChange(): void;
  /** The stream is open (after a connect or a reconnect): pull once to catch up. */
  onOpen?(): void;
}

/** A server that speaks smartsync's protocol. */
export interface Transport {
  /** A short name for logs and errors (`http`, `postgrest`). */
  readonly kind: string;
  push(request: PushRequest, signal?: AbortSignal): Promise<PushResponse>;
  pull(params: PullParams, signal?: AbortSignal): Promise<PullResponse>;
  resolveConflict(conflictId: number, body: { strategy: ResolutionStrategy; resolvedData?: EntityData }, signal?: AbortSignal): Promise<ResolveResponse>;
  /** Resolves when the server answered a cheap request; rejects with NetworkError or HttpError. */
  health(signal?: AbortSignal): Promise<void>;
  /**
   * "Anything new since this cursor?" (sync_changed), with the pull's scope (a cursor is
   * bound to the entity types it was issued for). Absent or refused: the engine pulls instead.
   */
  changed?(params: ChangedParams, signal?: AbortSignal): Promise<boolean>;
  /** A server-sent event stream, with the pull's cursor and scope; resolves when it ends, rejects on failure; ends on abort. */
  live?(params: LiveParams, handlers: LiveHandlers, signal: AbortSignal): Promise<void>;
}

/** The `fetch` the transports use (the global one by default). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A token for the Authorization header, or null to send none. */
export type GetToken = () => string | null | undefined | Promise<string | null | undefined>;

/** Options both transports take. */
export interface TransportOptions {
  getToken?: GetToken;
  fetch?: FetchLike;
  /** Abort a request that has not answered after this long (default 30000 ms). */
  timeoutMs?: number;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  /** Epoch milliseconds, for Retry-After dates (Date.now by default). */
  now?: () => number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

type RequestInit2 = {
  method: 'GET' | 'POST' | 'HEAD';
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
  accept?: string;
};

/** Sends one request and reads a JSON answer, both within the timeout. */
export async function requestJson<T>(options: TransportOptions, url: string, init: RequestInit2): Promise<T> {
  return exchange(options, url, init, async (response) => {
    if (init.method === 'HEAD' || response.status === 204) return undefined as T;
    let text: string;
    try {
      text = await response.text();
    } catch (cause) {
      throw new NetworkError(url, cause);
    }
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ProtocolError(`${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  });
}

/**
 * Sends one request; resolves with an ok Response once its headers arrived (the body is
 * the caller's to read, without a timeout: a stream), throws HttpError or NetworkError.
 */
export function send(options: TransportOptions, url: string, init: RequestInit2): Promise<Response> {
  return exchange(options, url, init, async (response) => response);
}

async function exchange<T>(options: TransportOptions, url: string, init: RequestInit2, read: (response: Response) => Promise<T>): Promise<T> {
  const doFetch: FetchLike = options.fetch ?? ((input, requestInit) => globalThis.fetch(input, requestInit));
  const headers: Record<string, string> = { Accept: init.accept ?? 'application/json', ...options.headers };
  const token = options.getToken ? await options.getToken() : undefined;
  if (token) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  if (init.signal?.aborted) throw abortError(init.signal);

  const timeoutMs = init.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  let timedOut = false;
  const timer = globalThis.setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = (): void => controller.abort(init.signal?.reason);
  init.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let response: Response;
    try {
      const requestInit: RequestInit = { method: init.method, headers, signal: controller.signal };
      if (body !== undefined) requestInit.body = body;
      response = await doFetch(url, requestInit);
    } catch (cause) {
      if (init.signal?.aborted) throw abortError(init.signal);
      throw new NetworkError(url, cause, timedOut);
    }
    if (!response.ok) {
      let errorBody: ErrorBody | string | null = null;
      try {
        const text = await response.text();
        try {
          errorBody = text === '' ? null : (JSON.parse(text) as ErrorBody);
        } catch {
          errorBody = text.slice(0, 1000);
        }
      } catch {
        errorBody = null;
      }
      const now = options.now ? options.now() : Date.now();
      throw new HttpError(response.status, url, errorBody, parseRetryAfter(response.headers.get('Retry-After'), now));
    }
    try {
      return await read(response);
    } catch (error) {
      if (init.signal?.aborted) throw abortError(init.signal);
      if (timedOut) throw new NetworkError(url, error, true);
      throw error;
    }
  } finally {
    globalThis.clearTimeout(timer);
    init.signal?.removeEventListener('abort', onAbort);
  }
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + '/' + path.replace(/^\/+/, '');
}

/** A query string of the defined parameters, each value URL-encoded (a `+` becomes %2B). */
export function query(params: Record<string, string | number | undefined>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Reads a `changed` answer: `true`/`false`, or an object with a `changed` boolean. */
export function readChanged(body: unknown): boolean {
  if (typeof body === 'boolean') return body;
  if (typeof body === 'object' && body !== null && typeof (body as { changed?: unknown }).changed === 'boolean') {
    return (body as { changed: boolean }).changed;
  }
  return true; // an answer we do not understand: pull, which is always correct
}

/** An id as a path segment. */
export function idSegment(id: EntityId): string {
  return encodeURIComponent(String(id));
}
