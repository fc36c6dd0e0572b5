// The transport for @smartsync/server, or any server with the spec's endpoints under one
// base path: POST /push, GET /pull, GET /changed, POST /conflicts/{id}/resolve,
// GET /health and GET /live (server-sent events).
import { readEvents, SseParser } from './sse.js';
import { ProtocolError } from './errors.js';
import { joinUrl, query, readChanged, requestJson, send } from './transport.js';
/** A transport for @smartsync/server's endpoints. */
export function httpTransport(options) {
    const url = (path) => joinUrl(options.baseUrl, path);
    return {
        kind: 'http',
        push(request, signal) {
            return requestJson(options, url('push'), { method: 'POST', body: request, signal });
        },
        async pull(params, signal) {
            const q = query({
                cursor: params.cursor,
                limit: params.limit,
                entityTypes: params.entityTypes?.join(','),
                practiceId: params.practiceId,
            });
            const body = await requestJson(options, url('pull') + q, { method: 'GET', signal });
            if (!body || !Array.isArray(body.changes))
                throw new ProtocolError('pull: the answer has no changes array');
            return body;
        },
        resolveConflict(conflictId, body, signal) {
            return requestJson(options, url(`conflicts/${encodeURIComponent(String(conflictId))}/resolve`), {
                method: 'POST',
                body,
                signal,
            });
        },
        async health(signal) {
            const response = await send(options, url('health'), { method: 'GET', signal, timeoutMs: options.healthTimeoutMs ?? 5000 });
            await response.body?.cancel();
        },
        async changed(params, signal) {
            const q = query({ cursor: params.cursor, entityTypes: params.entityTypes?.join(',') });
            return readChanged(await requestJson(options, url('changed') + q, { method: 'GET', signal }));
        },
        async live(params, handlers, signal) {
            const response = await send(options, url('live') + query({ cursor: params.cursor, entityTypes: params.entityTypes?.join(',') }), {
                method: 'GET',
                signal,
                accept: 'text/event-stream',
                timeoutMs: options.timeoutMs ?? 30_000, // time to the response headers; the stream itself has no timeout
            });
            handlers.onOpen?.();
            // @smartsync/server sends `ready` first, then `changed` (pull now) and `heartbeat`
            const parser = new SseParser((event) => {
                if (event.event === 'heartbeat' || event.event === 'ping' || event.event === 'ready')
                    return;
                handlers.onChange();
            });
            await readEvents(response, parser, signal);
        },
    };
}
