// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
// Jitter"): the n-th retry waits a uniformly random time between 0 and
// min(maxDelayMs, baseDelayMs * 2^(n-1)); a server's Retry-After is a floor.

/** How retries are spaced. */
export interface BackoffOptions {
  /** The ceiling of the first retry's delay (default 1000 ms). */
  baseDelayMs?: number;
  /** The ceiling of any delay (default 60000 ms). */
  maxDelayMs?: number;
}

export const DEFAULT_BASE_DELAY_MS = 1000;
export const DEFAULT_MAX_DELAY_MS = 60_000;

/**
 * The delay before retry number `retry` (1 for the first retry).
 * `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelay(retry: number, random: () => number, options: BackoffOptions = {}, retryAfterMs?: number): number {
  const base = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const cap = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, retry - 1));
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs !== undefined ? Math.max(jittered, retryAfterMs) : jittered;
}

/** Reads a Retry-After header (seconds or an HTTP date) as milliseconds from now. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
