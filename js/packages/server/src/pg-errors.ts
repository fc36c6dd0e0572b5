/**
 * PostgreSQL errors as PostgREST v12 answers them (NOTES.md section 1):
 * smartsync's api functions raise their errors as PostgREST's custom error
 * (SQLSTATE PGRST: the message is the JSON body, the detail holds status and
 * headers, the status coming from smartsync.http_status()); every other
 * SQLSTATE gets PostgREST's status table and the body {code, message,
 * details, hint}.
 */
import { HttpError, ServerErrorCode } from "./errors.js";

/** The fields of a node-postgres error that matter here. */
export interface PgErrorLike {
  code?: string | undefined;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/** True for an error that came from the PostgreSQL server (it has a SQLSTATE). */
export function isPgError(err: unknown): err is PgErrorLike {
  return (
    err instanceof Error &&
    typeof (err as PgErrorLike).code === "string" &&
    /^[0-9A-Z]{5}$/.test((err as PgErrorLike).code as string)
  );
}

/** PostgREST v12's HTTP status of a SQLSTATE (anonymous: the request had no JWT). */
export function statusOfSqlstate(code: string, anonymous: boolean): number {
  if (/^PT\d{3}$/.test(code)) return Number(code.slice(2));
  if (code.startsWith("08") || (code.startsWith("53") && code !== "53400")) return 503;
  if (code === "57P01") return 503;
  if (code === "42501") return anonymous ? 401 : 403;
  if (code.startsWith("0L") || code.startsWith("0P") || code.startsWith("28")) return 403;
  if (code === "23503" || code === "23505") return 409;
  if (code === "25006") return 405;
  if (code === "42883" || code === "42P01") return 404;
  if (code === "P0001") return 400;
  if (/^(09|25|2D|38|39|3B|40|53|54|55|57|58|F0|HV|P0|XX)/.test(code) || code === "42P17") return 500;
  return 400;
}

/** Parses JSON text, or returns undefined. */
function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The HttpError PostgREST would answer for a PostgreSQL error. */
export function httpErrorFromPg(err: PgErrorLike, anonymous = false): HttpError {
  const code = err.code ?? "XX000";
  if (code === "PGRST") {
    // smartsync._api_raise(): message = body, detail = {status, headers}
    const body = parseJson(err.message) as Record<string, unknown> | undefined;
    const meta = parseJson(err.detail) as { status?: unknown; headers?: unknown } | undefined;
    if (body !== undefined && typeof body === "object" && body !== null && typeof body.code === "string") {
      const status = typeof meta?.status === "number" ? meta.status : 400;
      const headers: Record<string, string> = {};
      if (meta?.headers !== null && typeof meta?.headers === "object") {
        for (const [k, v] of Object.entries(meta.headers as Record<string, unknown>)) {
          if (typeof v === "string") headers[k] = v;
        }
      }
      return new HttpError(
        status,
        {
          code: body.code,
          message: typeof body.message === "string" ? body.message : "",
          details: typeof body.details === "string" ? body.details : null,
          hint: typeof body.hint === "string" ? body.hint : null,
        },
        { headers, cause: err },
      );
    }
  }
  const status = statusOfSqlstate(code, anonymous);
  const headers: Record<string, string> = status === 401 ? { "WWW-Authenticate": "Bearer" } : {};
  return new HttpError(
    status,
    { code, message: err.message, details: err.detail ?? null, hint: err.hint ?? null },
    { headers, cause: err },
  );
}

/** A connection failure (not a SQL error): 503 with PostgREST's PGRST000. */
export function unavailableError(err: unknown): HttpError {
  return new HttpError(
    503,
    {
      code: ServerErrorCode.databaseUnavailable,
      message: "Could not connect with the database",
      details: err instanceof Error ? err.message : null,
    },
    { cause: err, headers: { "Retry-After": "1" } },
  );
}
