import { defineKeyValue, KeyValueConflictError, type Bus } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { SharedBucketConflictError, type SharedBuckets } from './limiter.js';

/**
 * The gateway replicas' rate-limit buckets: one key per caller (a hash of its kind and subject or
 * address), `{ tokens, at }`, in memory on the NATS server. A key unwritten for two minutes goes:
 * by then any bucket has refilled (from its lowest, a minute of debt, in 66 s).
 */
export const RATE_LIMIT_BUCKETS = defineKeyValue({
  bucket: 'GATEWAY_RATE_LIMITS',
  schema: z.object({ tokens: z.number(), at: z.number() }),
  ttlMs: 120_000,
  storage: 'memory',
});

/** The shared buckets of the rate limiter in the NATS key-value bucket RATE_LIMIT_BUCKETS. */
export function natsSharedBuckets(bus: Bus): SharedBuckets {
  const kv = bus.keyValue(RATE_LIMIT_BUCKETS, { timeoutMs: 1_000 });
  const cas = async (key: string, write: () => Promise<number>) => {
    try {
      return await write();
    } catch (error) {
      throw error instanceof KeyValueConflictError ? new SharedBucketConflictError(key, { cause: error }) : error;
    }
  };
  return {
    async get(key) {
      const entry = await kv.get(key);
      return entry && { state: entry.value, revision: entry.revision };
    },
    create: (key, state) => cas(key, () => kv.create(key, state)),
    update: (key, state, revision) => cas(key, () => kv.update(key, state, revision)),
  };
}
