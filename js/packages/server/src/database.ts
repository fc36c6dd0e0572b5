/**
 * One request, run as PostgREST v12 runs one (NOTES.md section 1): a
 * transaction (READ ONLY for reads), one SELECT of set_config(..., true) for
 * search_path, the JWT's role and claims and the request's method, path and
 * headers, then the call of the api function, then COMMIT (ROLLBACK on error).
 * The pool logs in as authenticator (never a superuser), so the database's
 * privileges and row-level security decide what a request may do.
 */
import type pg from "pg";
import { HttpError } from "./errors.js";
import type { Claims } from "./jwt.js";
import { httpErrorFromPg, isPgError, unavailableError } from "./pg-errors.js";

/** Who is asking and what, as PostgREST passes it to the database. */
export interface RequestIdentity {
  /** the role to switch to: the JWT's role claim (PostgREST's default role claim key) */
  role: string;
  /** the verified claims; "role" is always present in what the database sees */
  claims: Claims;
  method: string;
  /** the HTTP path of the request */
  path: string;
  /** request headers, lower-cased names; Authorization and Cookie are left out */
  headers: Record<string, string>;
}

export interface TransactionOptions {
  readOnly: boolean;
  /** statement_timeout for the request's statements, in milliseconds (0: none) */
  statementTimeoutMs: number;
}

/** A value for one parameter of an api function: text, cast by PostgreSQL to the parameter's type. */
export type ApiArgument = string | null;

/** Quotes an identifier for SQL (the api schema and function names are fixed, but quoted all the same). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The call PostgREST generates: named arguments, each a parameter PostgreSQL
 * casts to the named parameter's type (`"p_limit" := $1` with '10'), the
 * result as text so it passes through unchanged (no JSON re-encoding, no
 * loss of big numbers).
 */
export function apiCall(
  schema: string,
  fn: string,
  args: ReadonlyArray<readonly [string, ApiArgument]>,
): { text: string; values: ApiArgument[] } {
  const named = args.map(([name], i) => `${quoteIdent(name)} := $${i + 1}`);
  return {
    text: `SELECT ${quoteIdent(schema)}.${quoteIdent(fn)}(${named.join(", ")})::text AS body`,
    values: args.map(([, v]) => v),
  };
}

/** The call for a POST whose raw body is the one unnamed jsonb parameter. */
export function apiCallWithBody(schema: string, fn: string, body: string): { text: string; values: ApiArgument[] } {
  return { text: `SELECT ${quoteIdent(schema)}.${quoteIdent(fn)}($1::jsonb)::text AS body`, values: [body] };
}

const SET_CONTEXT =
  "SELECT set_config('search_path', $1, true), set_config('role', $2, true)," +
  " set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true)," +
  " set_config('request.path', $5, true), set_config('request.headers', $6, true)," +
  " set_config('request.cookies', '{}', true), set_config('statement_timeout', $7, true)";

/**
 * Names of prepared statements by text: the context's SELECT and the api
 * calls are parsed once per connection (node-postgres keeps which are), as
 * PostgREST prepares its statements. Few texts exist (one per endpoint and
 * set of query parameters given), so the map stays small.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `smartsync_${statementNames.size}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * request.jwt.claims as text, made once per verified token: the verifier
 * remembers a token's claims object (jwt.ts), so a device's requests share it.
 */
const claimsTexts = new WeakMap<object, { role: string; text: string }>();
function claimsText(claims: Claims, role: string): string {
  const known = claimsTexts.get(claims);
  if (known !== undefined && known.role === role) return known.text;
  const text = JSON.stringify({ ...claims, role });
  claimsTexts.set(claims, { role, text });
  return text;
}

type Statement = () => Promise<pg.QueryResult>;

/**
 * Runs BEGIN, the context, the call and COMMIT on a pipelined connection:
 * written together (one write, one round trip), run one after the other.
 * When one fails, those after it in the transaction fail too (25P02) and the
 * COMMIT rolls it back, so nothing of a failed request is kept; the first
 * error is the request's.
 */
async function pipelined(client: pg.PoolClient, statements: Statement[]): Promise<pg.QueryResult[]> {
  // node-postgres writes each statement's messages with the socket corked; cork around all four
  const socket = client.connection.stream;
  let sent: Array<Promise<pg.QueryResult>>;
  socket.cork();
  try {
    sent = statements.map((s) => s());
  } finally {
    socket.uncork();
  }
  const settled = await Promise.allSettled(sent);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  const results = settled.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value);
  // COMMIT answers ROLLBACK only for a failed transaction, whose error is thrown above
  const commit = results.at(-1)?.command;
  if (commit !== "COMMIT") throw new Error(`the request's transaction ended with ${commit}`);
  return results;
}

/** The same, one round trip a statement (a pool passed in without pipeline mode); ROLLBACK on error. */
async function oneByOne(client: pg.PoolClient, statements: Statement[]): Promise<pg.QueryResult[]> {
  const [begin, ...rest] = statements as [Statement, ...Statement[]];
  await begin();
  const results: pg.QueryResult[] = [];
  try {
    for (const s of rest) results.push(await s());
    return results;
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  }
}

/**
 * Runs one api call in one transaction with the request's identity, as
 * PostgREST does, and returns its result as text (the response body). The
 * pool's connections are in node-postgres's pipeline mode, so the
 * transaction's four statements cost one round trip to the database, not
 * four. Database errors become PostgREST's HTTP errors.
 */
export async function runRequest(
  pool: pg.Pool,
  apiSchema: string,
  identity: RequestIdentity,
  options: TransactionOptions,
  call: { text: string; values: ApiArgument[] },
): Promise<string> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw unavailableError(err);
  }
  let broken: Error | undefined;
  try {
    const statements: Statement[] = [
      () => client.query(`BEGIN ISOLATION LEVEL READ COMMITTED ${options.readOnly ? "READ ONLY" : "READ WRITE"}`),
      () =>
        client.query({
          name: statementName(SET_CONTEXT),
          text: SET_CONTEXT,
          values: [
            `${quoteIdent(apiSchema)}, "public"`,
            identity.role,
            claimsText(identity.claims, identity.role),
            identity.method,
            identity.path,
            JSON.stringify(identity.headers),
            String(options.statementTimeoutMs),
          ],
        }),
      () => client.query({ name: statementName(call.text), text: call.text, values: call.values }),
      () => client.query("COMMIT"),
    ];
    const results = await (client.pipeline ? pipelined(client, statements) : oneByOne(client, statements));
    const called = results.at(-2) as pg.QueryResult<{ body: string | null }>;
    return called.rows[0]?.body ?? "null";
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (isPgError(err)) throw httpErrorFromPg(err, false);
    broken = err as Error;
    throw unavailableError(err);
  } finally {
    // a connection that failed outside SQL is dropped, not reused
    client.release(broken);
  }
}
