/**
 * @smartsync/server: smartsync's sync endpoints over HTTP (the spec's
 * /api/sync/push and /api/sync/pull, and changed, conflicts, live, health,
 * metrics) as a Fetch API handler, with node:http and Express adapters.
 */
export { createSyncHandler, type SyncHandler } from "./handler.js";
export type { LiveOptions, SyncHandlerOptions } from "./options.js";
export type { JwtOptions, Claims } from "./jwt.js";
export { ConfigError, HttpError, ServerErrorCode, type ErrorBody } from "./errors.js";
export { serve, toNodeListener, type FetchHandler, type NodeServer, type ServeOptions } from "./node-adapter.js";
export { expressMiddleware, type ConnectMiddleware } from "./express.js";
export { createLogger, silentLogger, type Logger, type LogLevel, type LogFields } from "./logger.js";
export type { SignalMode } from "./change-signal.js";
export type { ChangeSignal } from "./live-hub.js";
