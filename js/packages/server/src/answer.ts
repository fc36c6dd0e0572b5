/**
 * What an endpoint answers, whatever carries it: handler.ts makes a Fetch API
 * Response of it, node-adapter.ts writes it to node:http's ServerResponse
 * itself (no Request, Response, Headers or web stream per request).
 */
import type { SyncRequest } from "./request-input.js";
import type { SseStream } from "./sse-stream.js";

export interface Answer {
  status: number;
  /** the JSON body's text (ignored for a stream) */
  body: string;
  /** headers beyond those of JSON_HEADERS or SSE_HEADERS, which every answer has */
  headers: Record<string, string> | undefined;
  /** GET /live: the server-sent events stream */
  stream?: SseStream;
}

/** A JSON answer with the body text as the database produced it. */
export function jsonAnswer(body: string, status = 200, headers?: Record<string, string>): Answer {
  return { status, body, headers };
}

/** The headers of every JSON answer. */
export const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
});

/** The headers of a live stream. */
export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
});

/**
 * One request answered: what the handler does for either carrier (logs and
 * metrics included). A carrier that can send the answer at once gives deliver:
 * it is called with the answer before the request is counted and logged, so
 * that the client need not wait for them.
 */
export type SyncCore = (
  request: SyncRequest,
  deliver?: (answer: Answer, requestId: string) => void,
) => Promise<{ answer: Answer; requestId: string }>;

/**
 * The property of a handler made by createSyncHandler() that holds its core:
 * node-adapter.ts finds it and serves node:http requests without the Fetch API.
 */
export const SYNC_CORE: unique symbol = Symbol.for("smartsync.syncCore");
