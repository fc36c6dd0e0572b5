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
 * Runs fn in one transaction with the request's identity, as PostgREST does;
 * database errors become PostgREST's HTTP errors.
 */
export async function runRequest<T>(
  pool: pg.Pool,
  apiSchema: string,
  identity: RequestIdentity,
  options: TransactionOptions,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw unavailableError(err);
  }
  let broken: Error | undefined;
  try {
    await client.query(
      `BEGIN ISOLATION LEVEL READ COMMITTED ${options.readOnly ? "READ ONLY" : "READ WRITE"}`,
    );
    try {
      await client.query(SET_CONTEXT, [
        `${quoteIdent(apiSchema)}, "public"`,
        identity.role,
        JSON.stringify({ ...identity.claims, role: identity.role }),
        identity.method,
        identity.path,
        JSON.stringify(identity.headers),
        String(options.statementTimeoutMs),
      ]);
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackErr) {
        broken = rollbackErr as Error;
      }
      throw err;
    }
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

/** Runs an api function call and returns its result as text (the response body). */
export async function callApi(client: pg.PoolClient, call: { text: string; values: ApiArgument[] }): Promise<string> {
  const res = await client.query<{ body: string | null }>({ text: call.text, values: call.values });
  return res.rows[0]?.body ?? "null";
}
