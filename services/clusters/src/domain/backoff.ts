/** Capped exponential backoff with jitter (0.5x to 1.5x), from the number of consecutive failures. */
export function backoffMs(failures: number, options: { baseMs: number; capMs: number }, random = Math.random): number {
  const exponential = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exponential * (0.5 + random()));
}
