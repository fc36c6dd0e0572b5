/**
 * Express / Connect middleware around a Fetch API handler: requests under
 * basePath go to the handler, everything else to next(). Mount it before any
 * body parser; if one has already read a JSON body (req.body set, stream
 * consumed), that body is sent on re-encoded.
 */
import type http from "node:http";
import { Readable } from "node:stream";
import { toNodeListener, type FetchHandler } from "./node-adapter.js";

export type ConnectMiddleware = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  next: (err?: unknown) => void,
) => void;

/** The middleware; basePath must be the handler's (default "/api/sync"). */
export function expressMiddleware(handler: FetchHandler, options: { basePath?: string } = {}): ConnectMiddleware {
  const basePath = (options.basePath ?? "/api/sync").replace(/\/+$/, "");
  const listener = toNodeListener(handler);
  return (req, res, next) => {
    // Express keeps the full path in originalUrl when mounted under a prefix
    const original = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const path = original.split("?")[0] ?? "/";
    if (path !== basePath && !path.startsWith(`${basePath}/`)) {
      next();
      return;
    }
    req.url = original;
    const parsed = (req as { body?: unknown }).body;
    if (parsed !== undefined && req.readableEnded) {
      // a body parser ran first: hand the handler a stream of the same JSON
      const text = typeof parsed === "string" ? parsed : JSON.stringify(parsed);
      listener(rebuild(req, text), res);
      return;
    }
    listener(req, res);
  };
}

/** An IncomingMessage-like readable carrying text as its body, with req's headers. */
function rebuild(req: http.IncomingMessage, text: string): http.IncomingMessage {
  const body = Buffer.from(text);
  const replay = Readable.from([body]) as unknown as http.IncomingMessage;
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    if (name.toLowerCase() === "content-length" || name.toLowerCase() === "transfer-encoding") continue;
    raw.push(name, req.rawHeaders[i + 1] as string);
  }
  raw.push("content-length", String(body.byteLength));
  Object.assign(replay, {
    rawHeaders: raw,
    headers: { ...req.headers, "content-length": String(body.byteLength) },
    method: req.method,
    url: req.url,
    socket: req.socket,
  });
  return replay;
}
