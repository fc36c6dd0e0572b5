// A stand-in for PostgREST v12 (test code, never shipped): PostgREST has no Debian package,
// so the tests serve HTTP themselves and turn each request into exactly the SQL PostgREST
// runs (../shared/NOTES.md section 1, README "PostgREST: Tests"):
//
//   1. BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY for GET and for POST to a STABLE or
//      IMMUTABLE function, READ WRITE for POST to a VOLATILE one
//   2. one SELECT of set_config(..., true): search_path, role (the JWT's role claim, or
//      anon), request.jwt.claims (with "role"), request.method, request.path,
//      request.headers (lower-cased names), request.cookies
//   3. the call: POST to a function of one unnamed jsonb parameter gets the raw body
//      (SELECT "api"."sync_push"($1::jsonb)); POST to named parameters reads them with
//      json_to_recordset; GET passes each query parameter to the parameter of that name
//   4. response.status / response.headers settings, then COMMIT (ROLLBACK on error)
//   5. errors: PGRST carries its body and status (the api functions raise it with the
//      status of smartsync.http_status()); a raw smartsync SQLSTATE gets http_status();
//      others PostgREST's table (42501 401/403, 23505 409, P0001 400, ...)
// It logs in as `authenticator` with the password setup_postgrest() was given, never as a
// superuser, and verifies the HS256 JWT as PostgREST does.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { verifyJwt } from './jwt.js';

export interface StandinOptions {
  /** Connection of the authenticator role. */
  connection: pg.PoolConfig;
  /** A superuser pool, only to look up smartsync.http_status() of a raw smartsync SQLSTATE. */
  admin: pg.Pool;
  jwtSecret: string;
  anonRole?: string;
  schema?: string;
}

export interface Standin {
  url: string;
  /** Every SQL statement sent, in order (for the tests that check the protocol). */
  statements: string[];
  /** Requests answered. */
  requests: number;
  close(): Promise<void>;
}

interface FunctionInfo {
  volatile: boolean;
  args: { name: string; type: string }[];
}

export async function startStandin(options: StandinOptions): Promise<Standin> {
  const schema = options.schema ?? 'api';
  const anonRole = options.anonRole ?? 'anon';
  const pool = new pg.Pool(options.connection);
  const functions = new Map<string, FunctionInfo | null>();
  const statements: string[] = [];
  const standin: Standin = { url: '', statements, requests: 0, close: async () => undefined };

  const lookup = async (client: pg.PoolClient, fn: string): Promise<FunctionInfo | null> => {
    if (functions.has(fn)) return functions.get(fn)!;
    const { rows } = await client.query<{ provolatile: string; names: string[] | null; types: string[] }>(
      `SELECT p.provolatile, p.proargnames AS names, array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t) AS types
         FROM pg_proc p WHERE p.pronamespace = to_regnamespace($1) AND p.proname = $2`,
      [schema, fn],
    );
    const row = rows[0];
    const info = row ? { volatile: row.provolatile === 'v', args: row.types.map((type, i) => ({ name: row.names?.[i] ?? '', type })) } : null;
    functions.set(fn, info);
    return info;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    standin.requests += 1;
    if (url.pathname === '/' && method === 'GET') return send(res, 200, '{"swagger":"2.0","info":{"title":"standin"}}');

    // the JWT, as PostgREST checks it
    let claims: Record<string, unknown> = { role: anonRole };
    const auth = req.headers.authorization;
    if (auth) {
      const token = /^Bearer (.+)$/i.exec(auth)?.[1];
      const verified = token ? verifyJwt(token, options.jwtSecret) : null;
      if (!verified) return send(res, 401, JSON.stringify({ code: 'PGRST301', message: 'JWT invalid', details: null, hint: null }), { 'WWW-Authenticate': 'Bearer' });
      claims = { ...verified, role: typeof verified.role === 'string' ? verified.role : anonRole };
    }
    const anonymous = claims.role === anonRole;

    const match = /^\/rpc\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(url.pathname);
    if (!match || (method !== 'GET' && method !== 'POST')) return send(res, 404, JSON.stringify({ code: 'PGRST125', message: 'Invalid path specified in request URL', details: null, hint: null }));
    const fn = match[1]!;

    const client = await pool.connect();
    const query = async (text: string, values: unknown[] = []): Promise<pg.QueryResult> => {
      statements.push(text);
      return client.query(text, values);
    };
    try {
      const info = await lookup(client, fn);
      const queryArgs = [...url.searchParams.keys()];
      if (!info || (method === 'GET' && queryArgs.some((name) => !info.args.some((a) => a.name === name)))) {
        return send(res, 404, JSON.stringify({ code: 'PGRST202', message: `Could not find the function ${schema}.${fn}`, details: null, hint: null }));
      }
      const readOnly = method === 'GET' || !info.volatile;
      await query(`BEGIN ISOLATION LEVEL READ COMMITTED ${readOnly ? 'READ ONLY' : 'READ WRITE'}`);
      try {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name.toLowerCase()] = value;
        await query(
          `SELECT set_config('search_path', $1, true), set_config('role', $2, true), set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), set_config('request.path', $5, true), set_config('request.headers', $6, true), set_config('request.cookies', $7, true)`,
          [`"${schema}", "public"`, claims.role, JSON.stringify(claims), method, url.pathname, JSON.stringify(headers), '{}'],
        );
        let call: string;
        let values: unknown[];
        const single = info.args.length === 1 && info.args[0]!.name === '' && (info.args[0]!.type === 'jsonb' || info.args[0]!.type === 'json');
        if (method === 'POST' && single) {
          call = `SELECT "${schema}"."${fn}"($1::${info.args[0]!.type})::text AS body`;
          values = [body === '' ? null : body];
        } else if (method === 'POST') {
          let given: string[] = [];
          try {
            const parsed = JSON.parse(body || '{}') as unknown;
            if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) given = Object.keys(parsed);
          } catch {
            throw Object.assign(new Error('Empty or invalid json'), { code: 'PGRST102' });
          }
          const used = info.args.filter((a) => a.name !== '' && given.includes(a.name));
          const recdef = used.map((a) => `"${a.name}" ${a.type}`).join(', ');
          const named = used.map((a) => `"${a.name}" := (SELECT "${a.name}" FROM pgrst_args LIMIT 1)`).join(', ');
          call =
            `WITH pgrst_payload AS (SELECT $1::json AS json_data), pgrst_body AS ( SELECT CASE WHEN json_typeof(json_data) = 'array' THEN json_data ELSE json_build_array(json_data) END AS val FROM pgrst_payload)` +
            (used.length ? `, pgrst_args AS ( SELECT * FROM json_to_recordset((SELECT val FROM pgrst_body)) AS _(${recdef}) )` : '') +
            ` SELECT "${schema}"."${fn}"(${named})::text AS body`;
          values = [body || '{}'];
        } else {
          const names = [...url.searchParams.keys()];
          call = `SELECT "${schema}"."${fn}"(${names.map((name, i) => `"${name}" := $${i + 1}`).join(', ')})::text AS body`;
          values = names.map((name) => url.searchParams.get(name));
        }
        const result = await query(call, values);
        const shaped = await query(`SELECT current_setting('response.status', true) AS status, current_setting('response.headers', true) AS headers`);
        await query('COMMIT');
        const status = Number(shaped.rows[0]?.status) || 200;
        const extra = shaped.rows[0]?.headers ? (JSON.parse(shaped.rows[0].headers as string) as Record<string, string>) : {};
        const text = (result.rows[0]?.body as string | null) ?? 'null';
        return send(res, status, text, extra);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const answer = await errorAnswer(error as pg.DatabaseError, anonymous, options.admin);
        return send(res, answer.status, answer.body, answer.headers);
      }
    } finally {
      client.release();
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, JSON.stringify({ code: 'STANDIN', message: String(error), details: null, hint: null }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  standin.url = `http://127.0.0.1:${port}`;
  standin.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pool.end();
  };
  return standin;
}

/** PostgREST v12's answer to a failed call. */
async function errorAnswer(error: pg.DatabaseError, anonymous: boolean, admin: pg.Pool): Promise<{ status: number; body: string; headers: Record<string, string> }> {
  const code = error.code ?? 'XX000';
  if (code === 'PGRST') {
    // the api functions' errors: message is the body, detail {status, headers}
    const detail = JSON.parse(error.detail ?? '{}') as { status?: number; headers?: Record<string, string> };
    return { status: detail.status ?? 400, body: error.message, headers: detail.headers ?? {} };
  }
  if (code === 'PGRST102') return { status: 400, body: JSON.stringify({ code, message: error.message, details: null, hint: null }), headers: {} };
  const body = JSON.stringify({ code, message: error.message, details: error.detail ?? null, hint: error.hint ?? null });
  let status: number;
  if (/^SS/.test(code)) {
    const { rows } = await admin.query<{ status: number | null }>('SELECT smartsync.http_status($1) AS status', [code]);
    status = rows[0]?.status ?? 400;
  } else if (/^PT\d\d\d$/.test(code)) status = Number(code.slice(2));
  else if (code === '42501') status = anonymous ? 401 : 403;
  else if (/^(08|53)/.test(code) && code !== '53400') status = 503;
  else if (/^(0L|0P|28)/.test(code)) status = 403;
  else if (code === '23503' || code === '23505') status = 409;
  else if (code === '25006') status = 405;
  else if (code === '42883' || code === '42P01') status = 404;
  else if (code === 'P0001') status = 400;
  else if (/^(09|25|2D|38|39|3B|40|53|54|55|57|58|F0|HV|P0|XX)/.test(code) || code === '42P17') status = 500;
  else status = 400;
  return { status, body, headers: status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {} };
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
