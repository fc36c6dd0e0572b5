// The transport for PostgREST in front of smartsync's `api` schema (README "PostgREST"):
//   POST /rpc/sync_push          the push body as is (one unnamed jsonb parameter)
//   GET  /rpc/sync_pull          p_cursor, p_limit, p_entity_types, p_practice_id
//   POST /rpc/resolve_conflict   {conflict_id, strategy, resolved_data}
//   GET  /rpc/sync_changed       p_cursor (where the server has it)
// Errors arrive as PostgREST's {code, message, details, hint} with smartsync's SQLSTATE as
// code and the status of smartsync.http_status().
import { ProtocolError } from './errors.js';
import { joinUrl, query, readChanged, requestJson, send } from './transport.js';
/** A transport for PostgREST serving smartsync's api schema. */
export function postgrestTransport(options) {
    const rpc = (fn) => joinUrl(options.url, `rpc/${fn}`);
    return {
        kind: 'postgrest',
        push(request, signal) {
            return requestJson(options, rpc('sync_push'), { method: 'POST', body: request, signal });
        },
        async pull(params, signal) {
            const q = query({
                p_cursor: params.cursor,
                p_limit: params.limit,
                p_entity_types: params.entityTypes?.join(','),
                p_practice_id: params.practiceId,
            });
            const body = await requestJson(options, rpc('sync_pull') + q, { method: 'GET', signal });
            if (!body || !Array.isArray(body.changes))
                throw new ProtocolError('sync_pull: the answer has no changes array');
            return body;
        },
        resolveConflict(conflictId, body, signal) {
            const args = { conflict_id: conflictId, strategy: body.strategy };
            if (body.resolvedData !== undefined)
                args.resolved_data = body.resolvedData;
            return requestJson(options, rpc('resolve_conflict'), { method: 'POST', body: args, signal });
        },
        async health(signal) {
            const response = await send(options, joinUrl(options.url, options.healthPath ?? '/'), {
                method: 'GET',
                signal,
                timeoutMs: options.healthTimeoutMs ?? 5000,
            });
            await response.body?.cancel();
        },
        async changed(params, signal) {
            const q = query({ p_cursor: params.cursor, p_entity_types: params.entityTypes?.join(',') });
            return readChanged(await requestJson(options, rpc('sync_changed') + q, { method: 'GET', signal }));
        },
    };
}
