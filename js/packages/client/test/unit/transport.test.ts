// The transports: the requests they make (PostgREST's /rpc endpoints, @smartsync/server's
// endpoints), the token, and how answers and failures become values and typed errors.

import { describe, expect, it } from 'vitest';
import { HttpError, NetworkError, httpTransport, isMustRefetch, isTransient, postgrestTransport } from '../../src/index.js';
import { SseParser, type ServerSentEvent } from '../../src/sse.js';

interface Call {
  url: string;
  method: string;
  body: unknown;
  headers: Record<string, string>;
}

function recorder(answer: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const call = { url, method: init?.method ?? 'GET', body: init?.body ? JSON.parse(init.body as string) : undefined, headers: init?.headers as Record<string, string> };
    calls.push(call);
    return answer(call);
  };
  return { calls, fetch };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

describe('postgrestTransport', () => {
  it("calls the api schema's functions as PostgREST serves them", async () => {
    const { calls, fetch } = recorder((call) => {
      if (call.url.includes('sync_pull')) return json({ success: true, timestamp: 1, changes: [], hasMore: false, cursor: 'c2', full: false });
      if (call.url.includes('sync_changed')) return json(true);
      if (call.url.includes('resolve_conflict')) return json({ conflictId: 7, status: 'resolved', strategy: 'merge', entityType: 'pets', entityId: 1, data: {}, version: 3 });
      return json({ success: true, results: [] });
    });
    const t = postgrestTransport({ url: 'https://db.example.com/', getToken: async () => 'jwt', fetch });
    await t.push({ operations: [], clientTimestamp: 1, clientId: 'tablet-1' });
    await t.pull({ cursor: 'c+1/=', limit: 500, entityTypes: ['clients', 'pets'] });
    expect(await t.changed!({ cursor: 'c2', entityTypes: ['clients', 'pets'] })).toBe(true);
    await t.resolveConflict(7, { strategy: 'manual', resolvedData: { name: 'x' } });
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST https://db.example.com/rpc/sync_push',
      'GET https://db.example.com/rpc/sync_pull?p_cursor=c%2B1%2F%3D&p_limit=500&p_entity_types=clients%2Cpets',
      'GET https://db.example.com/rpc/sync_changed?p_cursor=c2&p_entity_types=clients%2Cpets',
      'POST https://db.example.com/rpc/resolve_conflict',
    ]);
    expect(calls[0]!.body).toEqual({ operations: [], clientTimestamp: 1, clientId: 'tablet-1' });
    expect(calls[3]!.body).toEqual({ conflict_id: 7, strategy: 'manual', resolved_data: { name: 'x' } });
    expect(calls.every((c) => c.headers.Authorization === 'Bearer jwt')).toBe(true);
    expect(calls[0]!.headers['Content-Type']).toBe('application/json');
  });

  it("turns PostgREST's error body into an HttpError with the SQLSTATE, and 410 into must-refetch", async () => {
    const { fetch } = recorder(() => json({ code: 'SS505', message: 'must refetch: the change log was pruned', details: null, hint: null }, 410));
    const error = await postgrestTransport({ url: 'http://x', fetch }).pull({ cursor: 'old' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 410, code: 'SS505', url: 'http://x/rpc/sync_pull?p_cursor=old' });
    expect(isMustRefetch(error)).toBe(true);
    expect(isTransient(error)).toBe(false);
  });

  it('keeps Retry-After as a floor for the retry', async () => {
    const { fetch } = recorder(() => json({ code: '53300', message: 'too many connections' }, 503, { 'Retry-After': '7' }));
    const error = (await postgrestTransport({ url: 'http://x', fetch }).push({ operations: [], clientTimestamp: 1, clientId: 'a' }).catch((e: unknown) => e)) as HttpError;
    expect(error.retryAfterMs).toBe(7000);
    expect(isTransient(error)).toBe(true);
  });

  it('a request without an answer in time is a NetworkError that says so', async () => {
    const fetch = (_url: string, init?: RequestInit): Promise<Response> =>
      new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
    const error = await postgrestTransport({ url: 'http://x', fetch, timeoutMs: 20 }).pull({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ timedOut: true });
  });

  it('a refused connection is a NetworkError', async () => {
    const fetch = (): Promise<Response> => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }));
    const error = await postgrestTransport({ url: 'http://127.0.0.1:1', fetch }).health().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toContain('ECONNREFUSED');
  });
});

describe('httpTransport', () => {
  it("calls @smartsync/server's endpoints under the base path", async () => {
    const { calls, fetch } = recorder((call) => {
      if (call.url.includes('/pull')) return json({ success: true, timestamp: 1, changes: [], hasMore: false, cursor: 'c' });
      if (call.url.includes('/changed')) return json({ changed: false });
      if (call.url.includes('/health')) return json({ ok: true });
      return json({ success: true, results: [] });
    });
    const t = httpTransport({ baseUrl: '/api/sync/', getToken: () => 'jwt', fetch });
    await t.push({ operations: [], clientTimestamp: 1, clientId: 'a' });
    await t.pull({ cursor: 'c1', limit: 100, entityTypes: ['pets'], practiceId: 1 });
    expect(await t.changed!({ cursor: 'c1' })).toBe(false);
    await t.resolveConflict(3, { strategy: 'merge' });
    await t.health();
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST /api/sync/push',
      'GET /api/sync/pull?cursor=c1&limit=100&entityTypes=pets&practiceId=1',
      'GET /api/sync/changed?cursor=c1',
      'POST /api/sync/conflicts/3/resolve',
      'GET /api/sync/health',
    ]);
    expect(calls[3]!.body).toEqual({ strategy: 'merge' });
  });
});

describe('server-sent events', () => {
  it('are parsed across chunk boundaries, with multi-line data, ids, CRLF and comments', () => {
    const events: ServerSentEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.feed(': keep-alive\n\nevent: chan');
    parser.feed('ge\r\nid: 41\r\ndata: {"a":');
    parser.feed('1}\r\ndata: second line\r');
    parser.feed('\n\r\ndata: plain\n\nretry: 2500\n\n');
    expect(events).toEqual([
      { event: 'change', data: '{"a":1}\nsecond line', id: '41' },
      { event: 'message', data: 'plain', id: '41' },
    ]);
    expect(parser.lastEventId).toBe('41');
    expect(parser.retryMs).toBe(2500);
  });
});
