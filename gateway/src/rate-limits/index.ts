import type { Bus, Logger } from '@fleetgraph/kit/core';
import { natsSharedBuckets } from './kv-store.js';
import { createRateLimiter, perMinute, type RateLimiter } from './limiter.js';

export * from './callers.js';
export * from './kv-store.js';
export * from './limiter.js';

/** The gateway's rate limits (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_ANONYMOUS_PER_MINUTE). */
export interface GatewayRateLimits {
  /** Requests a minute per caller with a valid token (by its subject). 0: none. */
  perMinute: number;
  /** Requests a minute per address without a valid token. 0: none. */
  anonymousPerMinute: number;
  /** How often a replica adds what it counted to the shared buckets. @default 1000 */
  syncIntervalMs?: number;
  /** The clock (tests). @default Date.now */
  now?: () => number;
}

/**
 * The limiter of the gateway's rate limits, shared by every replica on the same NATS through the
 * key-value bucket RATE_LIMIT_BUCKETS; undefined when both limits are 0.
 */
export function createGatewayRateLimiter(limits: GatewayRateLimits, bus: Bus, log: Logger): RateLimiter | undefined {
  const caller = perMinute(limits.perMinute);
  const anonymous = perMinute(limits.anonymousPerMinute);
  if (!caller && !anonymous) return undefined;
  return createRateLimiter({
    limits: { ...(caller && { caller }), ...(anonymous && { anonymous }) },
    shared: natsSharedBuckets(bus),
    syncIntervalMs: limits.syncIntervalMs,
    now: limits.now,
    log,
  });
}
