// The transport for PostgREST in front of smartsync's `api` schema (README "PostgREST"):
//   POST /rpc/sync_push          the push body as is (one unnamed jsonb parameter)
//   GET  /rpc/sync_pull          p_cursor, p_limit, p_entity_types, p_practice_id
//   POST /rpc/resolve_conflict   {conflict_id, strategy, resolved_data}
//   GET  /rpc/sync_changed       p_cursor (where the server has it)
// Errors arrive as PostgREST's {code, message, details, hint} with smartsync's SQLSTATE as
// code and the status of smartsync.http_status().

import { ProtocolError } from './errors.js';
import { joinUrl, query, readChanged, requestJson, send, type ChangedParams, type Transport, type TransportOptions } from './transport.js';
import type { EntityData, PullParams, PullResponse, PushRequest, PushResponse, ResolutionStrategy, ResolveResponse } from './types.js';

export interface PostgrestTransportOptions extends TransportOptions {
  /** PostgREST's root URL, e.g. `https://db.example.com` (the api schema is its only schema). */
  url: string;
  /** A cheap GET for the heartbeat (default `/`, PostgREST's root). */
  healthPath?: string;
  /** How long the health check may take (default 5000 ms). */
  healthTimeoutMs?: number;
}

/** A transport for PostgREST serving smartsync's api schema. */
export function postgrestTransport(options: PostgrestTransportOptions): Transport {
  const rpc = (fn: string): string => joinUrl(options.url, `rpc/${fn}`);
  return {
    kind: 'postgrest',

    push(request: PushRequest, signal?: AbortSignal): Promise<PushResponse> {
      return requestJson<PushResponse>(options, rpc('sync_push'), { method: 'POST', body: request, signal });
    },

    async pull(params: PullParams, signal?: AbortSignal): Promise<PullResponse> {
      const q = query({
        p_cursor: params.cursor,
        p_limit: params.limit,
        p_entity_types: params.entityTypes?.join(','),
        p_practice_id: params.practiceId,
      });
      const body = await requestJson<PullResponse>(options, rpc('sync_pull') + q, { method: 'GET', signal });
      if (!body || !Array.isArray(body.changes)) throw new ProtocolError('sync_pull: the answer has no changes array');
      return body;
    },

    resolveConflict(conflictId: number, body: { strategy: ResolutionStrategy; resolvedData?: EntityData }, signal?: AbortSignal): Promise<ResolveResponse> {
      const args: Record<string, unknown> = { conflict_id: conflictId, strategy: body.strategy };
      if (body.resolvedData !== undefined) args.resolved_data = body.resolvedData;
      return requestJson<ResolveResponse>(options, rpc('resolve_conflict'), { method: 'POST', body: args, signal });
    },

    async health(signal?: AbortSignal): Promise<void> {
      const response = await send(options, joinUrl(options.url, options.healthPath ?? '/'), {
        method: 'GET',
        signal,
        timeoutMs: options.healthTimeoutMs ?? 5000,
      });
      await response.body?.cancel();
    },

    async changed(params: ChangedParams, signal?: AbortSignal): Promise<boolean> {
      const q = query({ p_cursor: params.cursor, p_entity_types: params.entityTypes?.join(',') });
      return readChanged(await requestJson<unknown>(options, rpc('sync_changed') + q, { method: 'GET', signal }));
    },
  };
}
