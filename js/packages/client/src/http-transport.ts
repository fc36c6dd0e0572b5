// The transport for @smartsync/server, or any server with the spec's endpoints under one
// base path: POST /push, GET /pull, GET /changed, POST /conflicts/{id}/resolve,
// GET /health and GET /live (server-sent events).

import { readEvents, SseParser } from './sse.js';
import { ProtocolError } from './errors.js';
import { joinUrl, query, readChanged, requestJson, send, type ChangedParams, type LiveHandlers, type LiveParams, type Transport, type TransportOptions } from './transport.js';
import type { EntityData, PullParams, PullResponse, PushRequest, PushResponse, ResolutionStrategy, ResolveResponse } from './types.js';

export interface HttpTransportOptions extends TransportOptions {
  /** Where the endpoints are, e.g. `/api/sync` or `https://example.com/api/sync`. */
  baseUrl: string;
  /** How long the health check may take (default 5000 ms). */
  healthTimeoutMs?: number;
}

/** A transport for @smartsync/server's endpoints. */
export function httpTransport(options: HttpTransportOptions): Transport {
  const url = (path: string): string => joinUrl(options.baseUrl, path);
  return {
    kind: 'http',

    push(request: PushRequest, signal?: AbortSignal): Promise<PushResponse> {
      return requestJson<PushResponse>(options, url('push'), { method: 'POST', body: request, signal });
    },

    async pull(params: PullParams, signal?: AbortSignal): Promise<PullResponse> {
      const q = query({
        cursor: params.cursor,
        limit: params.limit,
        entityTypes: params.entityTypes?.join(','),
        practiceId: params.practiceId,
      });
      const body = await requestJson<PullResponse>(options, url('pull') + q, { method: 'GET', signal });
      if (!body || !Array.isArray(body.changes)) throw new ProtocolError('pull: the answer has no changes array');
      return body;
    },

    resolveConflict(conflictId: number, body: { strategy: ResolutionStrategy; resolvedData?: EntityData }, signal?: AbortSignal): Promise<ResolveResponse> {
      return requestJson<ResolveResponse>(options, url(`conflicts/${encodeURIComponent(String(conflictId))}/resolve`), {
        method: 'POST',
        body,
        signal,
      });
    },

    async health(signal?: AbortSignal): Promise<void> {
      const response = await send(options, url('health'), { method: 'GET', signal, timeoutMs: options.healthTimeoutMs ?? 5000 });
      await response.body?.cancel();
    },

    async changed(params: ChangedParams, signal?: AbortSignal): Promise<boolean> {
      const q = query({ cursor: params.cursor, entityTypes: params.entityTypes?.join(',') });
      return readChanged(await requestJson<unknown>(options, url('changed') + q, { method: 'GET', signal }));
    },

    async live(params: LiveParams, handlers: LiveHandlers, signal: AbortSignal): Promise<void> {
      const response = await send(options, url('live') + query({ cursor: params.cursor, entityTypes: params.entityTypes?.join(',') }), {
        method: 'GET',
        signal,
        accept: 'text/event-stream',
        timeoutMs: options.timeoutMs ?? 30_000, // time to the response headers; the stream itself has no timeout
      });
      handlers.onOpen?.();
      // @smartsync/server sends `ready` first, then `changed` (pull now) and `heartbeat`
      const parser = new SseParser((event) => {
        if (event.event === 'heartbeat' || event.event === 'ping' || event.event === 'ready') return;
        handlers.onChange();
      });
      await readEvents(response, parser, signal);
    },
  };
}
