/**
 * Errors the handler answers with. Every error body has PostgREST's shape
 * `{code, message, details, hint}`; database errors keep their SQLSTATE as
 * `code` (smartsync's own class SS, PostgreSQL's otherwise), errors of the
 * server itself have the codes listed in `ServerErrorCode`.
 */

/** The JSON body of every error response (PostgREST's). */
export interface ErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/**
 * Codes of errors the server raises itself (database errors carry their
 * SQLSTATE). PGRST000, PGRST301 and PGRST302 are PostgREST's own codes for the
 * same situations.
 */
export const ServerErrorCode = {
  /** 503: the database cannot be reached, or no connection was free in time */
  databaseUnavailable: "PGRST000",
  /** 401: the JWT is malformed, expired, not yet valid, wrongly signed, or `alg: none` */
  invalidToken: "PGRST301",
  /** 401: no JWT (the server serves no anonymous requests) */
  missingToken: "PGRST302",
  /** 404: no such endpoint under the base path */
  notFound: "SS901",
  /** 405: the endpoint exists, not with this method */
  methodNotAllowed: "SS902",
  /** 413: the request body is larger than the limit */
  bodyTooLarge: "SS903",
  /** 415: a body that is not JSON */
  unsupportedMediaType: "SS904",
  /** 400: a query parameter or body field the endpoint does not know, or of the wrong form */
  invalidParameter: "SS905",
  /** 503: the server is shutting down, or has as many live streams as it allows */
  unavailable: "SS906",
  /** 499 (logged only: nobody is left to answer): the client went away before its request body ended */
  clientClosedRequest: "SS907",
} as const;

/** An HTTP error: thrown anywhere in a request, answered in one place (handler.ts). */
export class HttpError extends Error {
  override readonly name = "HttpError";
  readonly status: number;
  readonly body: ErrorBody;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    body: { code: string; message: string; details?: string | null; hint?: string | null },
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(body.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.body = {
      code: body.code,
      message: body.message,
      details: body.details ?? null,
      hint: body.hint ?? null,
    };
    this.headers = options.headers ?? {};
  }
}

/** A configuration the server cannot start with (a missing secret, a bad flag). */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}
