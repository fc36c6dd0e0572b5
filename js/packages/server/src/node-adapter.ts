/**
 * Serving a handler with node:http. A handler made by createSyncHandler() is
 * served without the Fetch API: the endpoints read the IncomingMessage (its
 * headers as node parsed them, its body from its 'data' events) and the
 * answer is written to the ServerResponse (headers and the database's JSON
 * text in one write), with no Request, Response, Headers or web stream per
 * request. Any other Fetch API handler gets a Request whose signal aborts
 * when the client goes away (the socket closes before the response is
 * finished). A live stream is written with backpressure (a slow client makes
 * it coalesce its events).
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Readable } from "node:stream";
import { JSON_HEADERS, SSE_HEADERS, SYNC_CORE, type Answer, type SyncCore } from "./answer.js";
import { clientClosed, tooLarge, type SyncRequest } from "./request-input.js";
import { SSE_STREAM, type SseStream } from "./sse-stream.js";

export type FetchHandler = (request: Request) => Promise<Response>;

export type NodeListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The Request for an incoming message; the controller aborts it. */
export function toRequest(req: http.IncomingMessage, controller: AbortController): Request {
  const host = req.headers.host ?? "localhost";
  const scheme = (req.socket as { encrypted?: boolean }).encrypted === true ? "https" : "http";
  const url = new URL(req.url ?? "/", `${scheme}://${host}`);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string);
  }
  const method = req.method ?? "GET";
  const withBody = method !== "GET" && method !== "HEAD";
  const init: RequestInit & { duplex?: "half" } = { method, headers, signal: controller.signal };
  if (withBody) {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = "half";
  }
  return new Request(url, init);
}

/** Writes a Response to a ServerResponse, honouring backpressure; stops when aborted. */
export async function writeResponse(res: http.ServerResponse, response: Response, signal: AbortSignal): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  if (response.body === null) {
    res.writeHead(response.status, headers);
    res.end();
    return;
  }
  if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    // a whole body (the JSON answers): headers and body leave in one write
    let body: Buffer;
    try {
      body = Buffer.from(await response.arrayBuffer());
    } catch {
      res.destroy();
      return;
    }
    headers["content-length"] = String(body.byteLength);
    res.writeHead(response.status, headers);
    res.end(body);
    return;
  }
  res.writeHead(response.status, headers);
  res.flushHeaders();
  // a live stream of this package: its events are written to the socket as they come
  const sse = (response as Response & { [SSE_STREAM]?: SseStream })[SSE_STREAM];
  if (sse !== undefined && (await writeSse(res, sse, signal))) return;
  const reader = response.body.getReader();
  const onAbort = () => {
    reader.cancel().catch(() => undefined);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await Promise.race([once(res, "drain"), once(res, "close")]);
        if (res.destroyed) break;
      }
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** An event framed as one chunk of a chunked body; the last one is kept (a fan-out writes the same event to every stream). */
let lastEvent: Uint8Array | undefined;
let lastFrame: Buffer | undefined;
function chunkFrame(event: Uint8Array): Buffer {
  if (event !== lastEvent) {
    const head = Buffer.from(`${event.byteLength.toString(16)}\r\n`, "latin1");
    lastFrame = Buffer.concat([head, event, CRLF]);
    lastEvent = event;
  }
  return lastFrame as Buffer;
}
const CRLF = Buffer.from("\r\n", "latin1");

/**
 * Writes a live stream straight to the response: the hub's fan-out writes
 * each event's bytes (encoded once for all streams) with no promise or copy
 * per stream; a full socket buffer makes the stream keep only its newest
 * event until 'drain'. Once the headers are out, an event goes to the socket
 * itself as one chunk of the chunked body, framed once for all streams:
 * ServerResponse.write would cork the socket until the next tick, so that no
 * stream of a fan-out would get its event before the loop over all of them
 * ends. Resolves false when the stream was taken already (then its readable
 * is read instead), else when it has ended.
 */
function writeSse(res: http.ServerResponse, sse: SseStream, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    // the chunked framing this writes itself is the one node would (HTTP/1.1; HTTP/1.0 gets no chunks)
    const chunked = (res as { chunkedEncoding?: boolean }).chunkedEncoding === true;
    let drainOn: Socket | null = null;
    const onDrain = () => sse.drained();
    const attached = sse.attach({
      write: (chunk) => {
        if (res.destroyed) return true;
        const socket = res.socket;
        if (socket === null || !chunked || socket.destroyed) return res.write(chunk);
        if (socket.write(chunkFrame(chunk))) return true;
        if (drainOn !== socket) {
          drainOn?.off("drain", onDrain);
          drainOn = socket;
          socket.on("drain", onDrain);
        }
        return false;
      },
      end: () => {
        drainOn?.off("drain", onDrain);
        drainOn = null;
        if (!res.destroyed) res.end();
        resolve(true);
      },
    });
    if (!attached) {
      resolve(false);
      return;
    }
    res.on("drain", onDrain);
    // the client went away (or the handler was aborted): the stream ends and unsubscribes
    res.on("close", () => {
      drainOn?.off("drain", onDrain);
      drainOn = null;
      sse.close();
    });
    signal?.addEventListener("abort", () => sse.close(), { once: true });
    if (signal?.aborted === true || res.destroyed) sse.close();
  });
}

/** A header of an IncomingMessage as one string (node joins repeated ones, but keeps some as arrays). */
function headerText(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return typeof value === "string" ? value : value.join(", ");
}

/** node:http's request as the endpoints read it; undefined when its URL cannot be parsed. */
function nodeRequest(req: http.IncomingMessage, res: http.ServerResponse): SyncRequest | undefined {
  const host = req.headers.host ?? "localhost";
  const scheme = (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? "https" : "http";
  let url: URL;
  try {
    url = new URL(req.url ?? "/", `${scheme}://${host}`);
  } catch {
    return undefined;
  }
  let controller: AbortController | undefined;
  return {
    method: req.method ?? "GET",
    url,
    header: (name) => headerText(req.headers[name]),
    forEachHeader: (fn) => {
      for (const name of Object.keys(req.headers)) {
        const v = headerText(req.headers[name]);
        if (v !== null) fn(v, name);
      }
    },
    readBytes: (maxBytes) => readNodeBody(req, maxBytes),
    // made when asked for (GET /live): most requests never look at it
    get signal() {
      if (controller === undefined) {
        const c = new AbortController();
        controller = c;
        if (res.destroyed || (res.socket?.destroyed ?? false)) {
          c.abort();
        } else {
          res.on("close", () => {
            if (!res.writableFinished) c.abort();
          });
        }
      }
      return controller.signal;
    },
  };
}

/** The body of an IncomingMessage, refused (413) as soon as it passes maxBytes. */
function readNodeBody(req: http.IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  if (req.readableEnded || req.method === "GET" || req.method === "HEAD") return Promise.resolve(new Uint8Array(0));
  // the client went away before the body was read (while the token was checked, say): its
  // 'close' has been emitted already, and no 'end' will come
  if (req.destroyed) return Promise.reject(clientClosed());
  // the whole body has arrived (it usually comes with the headers) and waits in the stream: taken at once
  // (read() of a stream that is not flowing returns all it holds, in one buffer)
  if (req.complete && req.readableFlowing !== true && req.readableLength > 0 && req.readableLength <= maxBytes) {
    const bytes = req.read() as Buffer | null;
    if (bytes !== null) return Promise.resolve(bytes);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        done();
        // the rest is read and dropped, so that the answer can still be sent
        req.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const done = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    // the client went away before the body ended
    const onClose = () => {
      if (!req.readableEnded)
        onError(clientClosed());
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

const JSON_TYPE = JSON_HEADERS["content-type"] as string;

/** Writes an answer of the core: a JSON body with its headers in one write, or a live stream. */
async function writeAnswer(res: http.ServerResponse, answer: Answer, requestId: string): Promise<void> {
  if (answer.stream === undefined) {
    // the text goes to the socket as it is, encoded once, by the write itself
    const length = String(Buffer.byteLength(answer.body));
    const headers: Record<string, string> =
      answer.headers === undefined
        ? {
            "content-type": JSON_TYPE,
            "cache-control": "no-store",
            "x-request-id": requestId,
            "content-length": length,
          }
        : { ...JSON_HEADERS, ...lowerCased(answer.headers), "x-request-id": requestId, "content-length": length };
    res.writeHead(answer.status, headers);
    res.end(answer.body, "utf8");
    return;
  }
  res.writeHead(answer.status, { ...SSE_HEADERS, ...lowerCased(answer.headers ?? {}), "x-request-id": requestId });
  res.flushHeaders();
  await writeSse(res, answer.stream);
}

/** Header names in lower case (as a Fetch API Response has them), so that one replaces another. */
function lowerCased(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/** 400 for a request whose URL cannot be read. */
function malformed(res: http.ServerResponse): void {
  res.writeHead(400, { "content-type": JSON_TYPE });
  res.end(JSON.stringify({ code: "SS905", message: "malformed request", details: null, hint: null }));
}

/** A node:http request listener for a handler of createSyncHandler() (no Fetch API per request). */
function coreListener(core: SyncCore): NodeListener {
  return (req, res) => {
    const request = nodeRequest(req, res);
    if (request === undefined) {
      malformed(res);
      return;
    }
    const failed = () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    };
    // the answer is written as soon as it is known, before the request is counted and logged
    core(request, (answer, requestId) => {
      writeAnswer(res, answer, requestId).catch(failed);
    }).catch(failed);
  };
}

/**
 * A node:http request listener for a Fetch API handler. A handler of
 * createSyncHandler() is served without building Fetch API objects.
 */
export function toNodeListener(handler: FetchHandler): NodeListener {
  const core = (handler as FetchHandler & { [SYNC_CORE]?: SyncCore })[SYNC_CORE];
  if (typeof core === "function") return coreListener(core);
  return (req, res) => {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    let request: Request;
    try {
      request = toRequest(req, controller);
    } catch {
      malformed(res);
      return;
    }
    handler(request)
      .then((response) => writeResponse(res, response, controller.signal))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  };
}

export interface ServeOptions {
  port?: number;
  host?: string;
}

export interface NodeServer {
  readonly server: http.Server;
  /** the port it listens on (useful with port 0) */
  readonly port: number;
  /** Stops accepting connections, ends idle keep-alive ones; resolves when all are closed. */
  close(): Promise<void>;
}

/** Serves a handler with node:http. */
export async function serve(handler: FetchHandler, options: ServeOptions = {}): Promise<NodeServer> {
  const server = http.createServer({ noDelay: true, keepAliveTimeout: 5000 }, toNodeListener(handler));
  server.listen(options.port ?? 3000, options.host ?? "0.0.0.0");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
