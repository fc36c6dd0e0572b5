/**
 * What a request brings: its body, read up to a size limit (413 beyond it),
 * and its query parameters, of which an endpoint accepts a fixed set (400 for
 * any other, or one given twice).
 */
import { isUtf8 } from "node:buffer";
import { HttpError, ServerErrorCode } from "./errors.js";

/**
 * A request as the endpoints read it, whatever carried it: a Fetch API
 * Request (handler.ts) or node:http's IncomingMessage (node-adapter.ts, which
 * builds no Request, Headers or web stream for it).
 */
export interface SyncRequest {
  /** GET, POST, ... */
  readonly method: string;
  readonly url: URL;
  /** a header's value (name in lower case), or null */
  header(name: string): string | null;
  /** every header with lower-case names (what the database sees, less credentials) */
  forEachHeader(fn: (value: string, name: string) => void): void;
  /** the body's bytes, refused (tooLarge) as soon as they pass maxBytes; empty without a body */
  readBytes(maxBytes: number): Promise<Uint8Array>;
  /** aborted when the client goes away */
  readonly signal: AbortSignal;
}

/** 413 for a body over the limit. */
export function tooLarge(limit: number): HttpError {
  return new HttpError(413, {
    code: ServerErrorCode.bodyTooLarge,
    message: `request body is larger than ${limit} bytes`,
    hint: "Send smaller batches (smartsync.batch_size operations at most).",
  });
}

/** 499 (logged, not answered: the client is gone) for a body the client stopped sending. */
export function clientClosed(cause?: unknown): HttpError {
  return new HttpError(
    499,
    {
      code: ServerErrorCode.clientClosedRequest,
      message: "the client closed the connection before its request body ended",
    },
    { cause },
  );
}

/** The bytes of a Fetch API body, refused beyond maxBytes while reading. */
export async function readStream(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
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
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}

const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The request body as text, refused beyond maxBytes; JSON content types only. */
export async function readBody(request: SyncRequest, maxBytes: number): Promise<string> {
  return decodeBody(await readBodyBytes(request, maxBytes));
}

/** A body's bytes as text (a byte-order mark dropped); 400 when they are not UTF-8. */
function decodeBody(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw notUtf8(err);
  }
}

/** 400 for a body that is not UTF-8. */
function notUtf8(cause?: unknown): HttpError {
  return new HttpError(400, { code: ServerErrorCode.invalidParameter, message: "request body is not valid UTF-8" }, { cause });
}

/**
 * The request body, refused as readBody refuses it, as text: its bytes when
 * they are UTF-8 that decodes to themselves (no byte-order mark for a decoder
 * to drop) and start with a character that is not white space (so it is not
 * blank), else its text decoded. A JSON body passes to the database as it
 * came, neither decoded nor encoded again.
 */
export async function readBodyText(request: SyncRequest, maxBytes: number): Promise<string | Uint8Array> {
  const bytes = await readBodyBytes(request, maxBytes);
  const first = bytes[0];
  // ASCII and not white space: 0x09-0x0D and 0x20 are, and a BOM or any other space starts above 0x7F
  if (first !== undefined && first > 0x20 && first < 0x80) {
    if (!isUtf8(bytes)) throw notUtf8();
    return bytes;
  }
  return decodeBody(bytes);
}

/** The request body's bytes, refused beyond maxBytes (413) or with a content type other than JSON (415). */
async function readBodyBytes(request: SyncRequest, maxBytes: number): Promise<Uint8Array> {
  const type = request.header("content-type");
  if (type !== null && type !== "" && !JSON_TYPE.test(type)) {
    throw new HttpError(415, {
      code: ServerErrorCode.unsupportedMediaType,
      message: `content type ${JSON.stringify(type)} is not accepted`,
      hint: "Send the body as JSON with Content-Type: application/json.",
    });
  }
  const length = request.header("content-length");
  if (length !== null && Number(length) > maxBytes) throw tooLarge(maxBytes);
  try {
    return await request.readBytes(maxBytes);
  } catch (err) {
    if (err instanceof HttpError || !request.signal.aborted) throw err;
    throw clientClosed(err);
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
  // most requests have none: their URLSearchParams is not made
  if (url.search === "") return out;
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
