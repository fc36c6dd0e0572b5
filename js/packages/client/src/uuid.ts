// Identifiers: UUIDv7 (RFC 9562: 48 bits of Unix milliseconds, then random bits) for
// operation ids and temporary entity ids. Ids made by one generator sort in the order
// they were made, even within one millisecond, so the queue's key order is its order.

/** Fills a byte array with random bytes (crypto.getRandomValues by default). */
export type RandomBytes = (bytes: Uint8Array) => void;

const pool = new Uint8Array(4096);
let poolUsed = pool.length;

/** crypto.getRandomValues, drawn from a pool refilled 4 KB at a time (one call per 256 ids). */
export const defaultRandomBytes: RandomBytes = (bytes) => {
  if (bytes.length > pool.length) {
    globalThis.crypto.getRandomValues(bytes);
    return;
  }
  if (poolUsed + bytes.length > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolUsed = 0;
  }
  bytes.set(pool.subarray(poolUsed, poolUsed + bytes.length));
  pool.fill(0, poolUsed, poolUsed + bytes.length); // never hand out the same bytes twice
  poolUsed += bytes.length;
};

/** The prefix smartsync's server treats as a temporary id (its `smartsync.temp_id_prefix`). */
export const TEMP_ID_PREFIX = 'temp_';

/** Makes UUIDv7 strings that increase strictly, also within one millisecond. */
export function uuidv7Generator(now: () => number, randomBytes: RandomBytes = defaultRandomBytes): () => string {
  let lastMs = -1;
  let counter = 0; // 12 bits (rand_a) used as a counter within one millisecond, RFC 9562 method 1
  return () => {
    let ms = Math.max(now(), 0);
    const bytes = new Uint8Array(16);
    randomBytes(bytes);
    if (ms <= lastMs) {
      ms = lastMs;
      counter += 1;
      if (counter > 0xfff) {
        ms = lastMs + 1; // counter exhausted: borrow the next millisecond
        counter = 0;
      }
    } else {
      counter = (bytes[6]! & 0x07) << 8 | bytes[7]!; // start low in the range, leaving room to count
    }
    lastMs = ms;
    const hi = Math.floor(ms / 2 ** 16);
    bytes[0] = (hi >>> 24) & 0xff;
    bytes[1] = (hi >>> 16) & 0xff;
    bytes[2] = (hi >>> 8) & 0xff;
    bytes[3] = hi & 0xff;
    bytes[4] = (ms >>> 8) & 0xff;
    bytes[5] = ms & 0xff;
    bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
    bytes[7] = counter & 0xff;
    bytes[8] = 0x80 | (bytes[8]! & 0x3f);
    let hex = '';
    for (const b of bytes) hex += b.toString(16).padStart(2, '0');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
}

const defaultGenerator = uuidv7Generator(() => Date.now());

/** A new UUIDv7. */
export function uuidv7(): string {
  return defaultGenerator();
}

/** A new temporary entity id: `temp_` + a UUIDv7. */
export function createTempId(): string {
  return TEMP_ID_PREFIX + defaultGenerator();
}

/** True for a temporary id (a string that starts with the prefix and is longer). */
export function isTempId(value: unknown, prefix = TEMP_ID_PREFIX): value is string {
  return typeof value === 'string' && value.length > prefix.length && value.startsWith(prefix);
}
