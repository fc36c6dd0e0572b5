// Listens on smartsync_changes like @smartsync/server does (one connection that
// consumes every notification), counts them, and prints the count when stopped.
//   node bench/notify-listener.mjs   (PG* environment variables say where)
import { createRequire } from "node:module";

// pg from the npm workspace (js/: npm ci)
const require = createRequire(new URL("../js/packages/server/package.json", import.meta.url));
const pg = require("pg");

const client = new pg.Client();
let count = 0;
client.on("notification", () => { count++; });
await client.connect();
await client.query("LISTEN smartsync_changes");
process.stdout.write("listening\n");
const stop = async () => {
  await client.end();
  process.stdout.write(`notifications ${count}\n`);
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
