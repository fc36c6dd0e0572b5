/**
 * Serving a Fetch API handler with node:http: the request becomes a Request
 * whose signal aborts when the client goes away (the socket closes before
 * the response is finished). A JSON answer leaves with its headers in one
 * write; a live stream is written with backpressure (a slow client stops the
 * reading of the stream, which makes it coalesce its events).
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
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

/**
 * Writes a live stream straight to the response: the hub's fan-out writes
 * each event's bytes (encoded once for all streams) with res.write, with no
 * promise or copy per stream; a full socket buffer makes the stream keep only
 * its newest event until 'drain'. Resolves false when the stream was taken
 * already (then its readable is read instead), else when it has ended.
 */
function writeSse(res: http.ServerResponse, sse: SseStream, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const attached = sse.attach({
      write: (chunk) => (res.destroyed ? true : res.write(chunk)),
      end: () => {
        if (!res.destroyed) res.end();
        resolve(true);
      },
    });
    if (!attached) {
      resolve(false);
      return;
    }
    res.on("drain", () => sse.drained());
    // the client went away (or the handler was aborted): the stream ends and unsubscribes
    res.on("close", () => sse.close());
    signal.addEventListener("abort", () => sse.close(), { once: true });
    if (signal.aborted || res.destroyed) sse.close();
  });
}

/** A node:http request listener for a Fetch API handler. */
export function toNodeListener(handler: FetchHandler): NodeListener {
  return (req, res) => {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    let request: Request;
    try {
      request = toRequest(req, controller);
    } catch {
      res.writeHead(400, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ code: "SS905", message: "malformed request", details: null, hint: null }));
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
