import { createLogger } from '@fleetgraph/kit/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRateLimiter,
  perMinute,
  SharedBucketConflictError,
  type BucketState,
  type RateLimiter,
  type RateLimiterOptions,
  type SharedBuckets,
} from './limiter.js';

const log = createLogger('rate-limit-test', 'silent');

/** A shared store in memory, with compare-and-set as NATS KV does it; `failing` makes every call throw. */
function memoryBuckets() {
  const entries = new Map<string, { state: BucketState; revision: number }>();
  let revision = 0;
  const store = {
    entries,
    failing: false,
    check() {
      if (store.failing) throw new Error('the store is away');
    },
    async get(key: string) {
      store.check();
      const entry = entries.get(key);
      return entry && { state: { ...entry.state }, revision: entry.revision };
    },
    async create(key: string, state: BucketState) {
      store.check();
      if (entries.has(key)) throw new SharedBucketConflictError(key);
      entries.set(key, { state, revision: ++revision });
      return revision;
    },
    async update(key: string, state: BucketState, expected: number) {
      store.check();
      if (entries.get(key)?.revision !== expected) throw new SharedBucketConflictError(key);
      entries.set(key, { state, revision: ++revision });
      return revision;
    },
  } satisfies SharedBuckets & Record<string, unknown>;
  return store;
}

describe('the rate limiter', () => {
  let clock = 1_000_000;
  const now = () => clock;
  const limiters: RateLimiter[] = [];
  const limiter = (options: Partial<RateLimiterOptions> = {}) => {
    const created = createRateLimiter({ limits: { caller: perMinute(60)! }, now, log, ...options });
    limiters.push(created);
    return created;
  };
  /** How many of `n` requests of a caller are allowed, and the Retry-After of the first refusal. */
  const take = async (on: RateLimiter, n: number, id = 'alice', kind: 'caller' | 'anonymous' = 'caller') => {
    let allowed = 0;
    let retryAfter: number | undefined;
    for (let i = 0; i < n; i++) {
      const admission = await on.admit(kind, id);
      if (admission.allowed) allowed++;
      else retryAfter ??= admission.retryAfterSeconds;
    }
    return { allowed, retryAfter };
  };

  afterEach(async () => {
    await Promise.all(limiters.splice(0).map((l) => l.close()));
  });

  it('should allow a burst of a tenth of the limit per minute (at least one), and none for 0', () => {
    expect([perMinute(600), perMinute(60), perMinute(5), perMinute(0)]).toEqual([
      { perMinute: 600, burst: 60 },
      { perMinute: 60, burst: 6 },
      { perMinute: 5, burst: 1 },
      undefined,
    ]);
  });

  it('should let a burst through, refuse with the seconds until the next token, and refill at the rate', async () => {
    const on = limiter({ limits: { caller: perMinute(600)! } });
    expect(await take(on, 61)).toEqual({ allowed: 60, retryAfter: 1 });
    clock += 1_000;
    expect(await take(on, 11)).toEqual({ allowed: 10, retryAfter: 1 });
    // Never more than the burst, however long the caller was away.
    clock += 3_600_000;
    expect(await take(on, 61)).toEqual({ allowed: 60, retryAfter: 1 });
  });

  it('should tell a caller of a slow limit to wait until its next token', async () => {
    const on = limiter({ limits: { caller: perMinute(6)! } });
    expect(await take(on, 2)).toEqual({ allowed: 1, retryAfter: 10 });
    clock += 4_000;
    expect(await take(on, 1)).toEqual({ allowed: 0, retryAfter: 6 });
  });

  it('should keep callers, addresses and kinds apart, and not limit a kind without a limit', async () => {
    const on = limiter({ limits: { caller: perMinute(60)!, anonymous: perMinute(10)! } });
    expect(await take(on, 7, 'alice')).toEqual({ allowed: 6, retryAfter: 1 });
    expect(await take(on, 7, 'bob')).toEqual({ allowed: 6, retryAfter: 1 });
    expect(await take(on, 2, 'alice', 'anonymous')).toEqual({ allowed: 1, retryAfter: 6 });
    const callersOnly = limiter();
    expect(await take(callersOnly, 100, '127.0.0.1', 'anonymous')).toEqual({ allowed: 100, retryAfter: undefined });
  });

  it('should share a bucket between replicas: what one let through, the other counts', async () => {
    const shared = memoryBuckets();
    const a = limiter({ shared });
    const b = limiter({ shared });
    expect(await take(a, 6)).toEqual({ allowed: 6, retryAfter: undefined });
    await a.sync();
    // A caller new to a replica waits for its shared bucket first.
    expect(await take(b, 1)).toEqual({ allowed: 0, retryAfter: 1 });
    clock += 2_000;
    expect(await take(b, 3)).toEqual({ allowed: 2, retryAfter: 1 });
    await b.sync();
    // The other replica's view is refreshed at its next sync, and it takes what is left, nothing more.
    clock += 1_000;
    await a.sync();
    expect(await take(a, 2)).toEqual({ allowed: 1, retryAfter: 1 });
  });

  it('should carry the debt of bursts two replicas let through before they synced', async () => {
    const shared = memoryBuckets();
    const a = limiter({ shared });
    const b = limiter({ shared });
    expect(await take(a, 6)).toEqual({ allowed: 6, retryAfter: undefined });
    expect(await take(b, 6)).toEqual({ allowed: 6, retryAfter: undefined });
    // Both write (one of them after a lost compare-and-set): the shared bucket holds both bursts.
    await Promise.all([a.sync(), b.sync()]);
    expect([...shared.entries.values()].map((e) => e.state.tokens)).toEqual([-6]);
    // So the caller gets, over time, no more than the rate: 6 s of debt, then a token a second. The
    // replica that wrote first learns of the debt at its next sync.
    expect(await take(b, 1)).toEqual({ allowed: 0, retryAfter: 7 });
    expect(await take(a, 1)).toEqual({ allowed: 0, retryAfter: 1 });
    await a.sync();
    expect(await take(a, 1)).toEqual({ allowed: 0, retryAfter: 7 });
    clock += 7_000;
    expect(await take(a, 2)).toEqual({ allowed: 1, retryAfter: 1 });
  });

  it("should limit by the replica's own counts while the store is away, and share them once it is back", async () => {
    const shared = memoryBuckets();
    shared.failing = true;
    const a = limiter({ shared });
    expect(await take(a, 7)).toEqual({ allowed: 6, retryAfter: 1 });
    await a.sync();
    shared.failing = false;
    await a.sync();
    expect([...shared.entries.values()].map((e) => e.state.tokens)).toEqual([0]);
    const b = limiter({ shared });
    expect(await take(b, 1)).toEqual({ allowed: 0, retryAfter: 1 });
  });
});
