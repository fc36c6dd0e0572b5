/**
 * What a request brings: its body, read up to a size limit (413 beyond it),
 * and its query parameters, of which an endpoint accepts a fixed set (400 for
 * any other, or one given twice).
 */
import { HttpError, ServerErrorCode } from "./errors.js";

/** 413 for a body over the limit. */
function tooLarge(limit: number): HttpError {
  return new HttpError(413, {
    code: ServerErrorCode.bodyTooLarge,
    message: `request body is larger than ${limit} bytes`,
    hint: "Send smaller batches (smartsync.batch_size operations at most).",
  });
}

/** The request body as text, refused beyond maxBytes; JSON content types only. */
export async function readBody(request: Request, maxBytes: number): Promise<string> {
  const type = request.headers.get("content-type");
  if (type !== null && type !== "" && !/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, {
      code: ServerErrorCode.unsupportedMediaType,
      message: `content type ${JSON.stringify(type)} is not accepted`,
      hint: "Send the body as JSON with Content-Type: application/json.",
    });
  }
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > maxBytes) throw tooLarge(maxBytes);
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    throw new HttpError(
      400,
      { code: ServerErrorCode.invalidParameter, message: "request body is not valid UTF-8" },
      { cause: err },
    );
  }
}

/** 400 for a query parameter or body field the endpoint does not take. */
export function invalidParameter(message: string, hint?: string): HttpError {
  return new HttpError(400, { code: ServerErrorCode.invalidParameter, message, hint: hint ?? null });
}

/**
 * The query parameters of url, each at most once and each one of allowed;
 * the access token a live stream may carry is not a parameter of the endpoint.
 */
export function queryParams(url: URL, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    if (name === "access_token") continue;
    if (!allowed.includes(name)) {
      throw invalidParameter(
        `unknown query parameter ${JSON.stringify(name)}`,
        allowed.length > 0 ? `This endpoint takes ${allowed.join(", ")}.` : "This endpoint takes no query parameters.",
      );
    }
    if (out.has(name)) throw invalidParameter(`query parameter ${JSON.stringify(name)} is given twice`);
    out.set(name, value);
  }
  return out;
}
