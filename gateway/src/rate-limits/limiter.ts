/**
 * Rate limits shared by every gateway replica (see gateway/README.md, Rate limits): a token bucket
 * per caller, kept by each replica for the requests it serves and reconciled through a shared store
 * (a NATS key-value bucket, kv-store.ts) with compare-and-set writes. A request takes a token from
 * the replica's own bucket, with no round trip; every `syncIntervalMs` the replica adds what it
 * took since the last time to the shared bucket and takes the result back, which holds what the
 * other replicas took too. A caller new to a replica, or whose view is older than two intervals,
 * waits for the shared bucket first (one read).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '@fleetgraph/kit/core';

/** Who a limit applies to: a caller with valid credentials (by subject), or an address without. */
export type CallerKind = 'caller' | 'anonymous';

/** A token bucket: `perMinute` tokens a minute, at most `burst` at once. */
export interface RateLimit {
  perMinute: number;
  burst: number;
}

/** The limit of `perMinute` requests a minute with a burst of a tenth of it (at least 1); none for 0. */
export function perMinute(requests: number): RateLimit | undefined {
  return requests > 0 ? { perMinute: requests, burst: Math.max(1, Math.floor(requests / 10)) } : undefined;
}

/** Whether a request may go on, and when not, in how many seconds a token will be there. */
export type Admission = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** A bucket as the replicas share it: its tokens at `at` (ms since the epoch); it can be in debt (negative). */
export interface BucketState {
  tokens: number;
  at: number;
}

/** The store the replicas share their buckets through. */
export interface SharedBuckets {
  get(key: string): Promise<{ state: BucketState | undefined; revision: number } | undefined>;
  /** @throws SharedBucketConflictError when the key exists */
  create(key: string, state: BucketState): Promise<number>;
  /** @throws SharedBucketConflictError when `revision` is no longer the key's last */
  update(key: string, state: BucketState, revision: number): Promise<number>;
}

/** A compare-and-set write to the shared store lost to another replica's. */
export class SharedBucketConflictError extends Error {
  constructor(key: string, options?: ErrorOptions) {
    super(`bucket ${key} changed since it was read`, options);
    this.name = 'SharedBucketConflictError';
  }
}

export interface RateLimiterOptions {
  /** The limit of each kind of caller; none: not limited. */
  limits: Partial<Record<CallerKind, RateLimit>>;
  /** Where replicas share their buckets; none: this replica's own only. */
  shared?: SharedBuckets;
  /** How often what was taken goes to the shared store. @default 1000 */
  syncIntervalMs?: number;
  /** How long a request waits for a caller's shared bucket before it is judged by the replica's own. @default 250 */
  readTimeoutMs?: number;
  /** The clock. @default Date.now */
  now?: () => number;
  log: Logger;
}

export interface RateLimiter {
  /** Takes a token of the caller's bucket (`id`: a subject, an address), or says when to retry. */
  admit(kind: CallerKind, id: string): Promise<Admission>;
  /** Adds what was taken since the last sync to the shared buckets now (the timer does it every interval). */
  sync(): Promise<void>;
  /** Stops the timer after a last sync. */
  close(): Promise<void>;
}

const ALLOWED: Admission = { allowed: true };
/** Compare-and-set attempts of one sync of a bucket before what it took waits for the next. */
const MAX_ATTEMPTS = 4;
/** How often full, idle buckets are forgotten. */
const SWEEP_MS = 10_000;
/** After the shared store failed, how long requests are judged by this replica's own counts without asking it. */
const STORE_BACKOFF_MS = 5_000;

/** One caller's bucket as this replica sees it. */
class Bucket {
  /** Tokens at `at` (this replica's view: the shared bucket at the last sync, less what it took since). */
  tokens: number;
  at: number;
  /** Tokens taken since the last sync began. */
  taken = 0;
  /** The shared bucket as last read or written, and its revision. */
  shared?: { state: BucketState; revision: number };
  /** When the view last came from the shared bucket (or failed to). */
  syncedAt = Number.NEGATIVE_INFINITY;
  /** A read of the shared bucket in flight: requests wait for it. */
  reading?: Promise<void>;
  syncing = false;

  constructor(
    readonly kind: CallerKind,
    /** The shared store's key: a hash, so that no subject or address is stored. */
    readonly key: string,
    limit: RateLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.at = now;
  }
}

/** The tokens of a bucket at `now`, refilled at the limit's rate up to its burst. */
export function refill(state: BucketState, limit: RateLimit, now: number): number {
  const elapsed = Math.max(0, now - state.at);
  return Math.min(limit.burst, state.tokens + (elapsed * limit.perMinute) / 60_000);
}

/** Seconds until a bucket of `tokens` holds one again. */
export function retryAfterSeconds(tokens: number, limit: RateLimit): number {
  return Math.max(1, Math.ceil(((1 - tokens) * 60) / limit.perMinute));
}

/**
 * The lowest a shared bucket goes: a minute of tokens in debt (replicas that each let a burst
 * through before they synced), so that a caller is never refused for longer than about a minute.
 */
const floorOf = (limit: RateLimit) => -limit.perMinute;

const keyOf = (kind: CallerKind, id: string) =>
  `${kind}.${createHash('sha256').update(`${kind}\u0000${id}`).digest('hex').slice(0, 40)}`;

/** Creates the limiter (see the module's comment); its sync timer runs until `close`. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { limits, shared, log } = options;
  const now = options.now ?? Date.now;
  const syncIntervalMs = options.syncIntervalMs ?? 1_000;
  const readTimeoutMs = options.readTimeoutMs ?? 250;
  const buckets = new Map<string, Bucket>();
  /** Buckets with tokens taken since their last sync. */
  const dirty = new Set<Bucket>();
  /** Buckets that refused a request with nothing to sync: read again at the next sync (another replica may hold more debt). */
  const refused = new Set<Bucket>();
  let lastFailureLogged = 0;
  /** Until when no request waits for the shared store, which just failed. */
  let storeAwayUntil = 0;
  const failed = (error: unknown, what: string) => {
    storeAwayUntil = now() + STORE_BACKOFF_MS;
    // A store that is away must not become a flood of log lines.
    if (now() - lastFailureLogged < 10_000) return;
    lastFailureLogged = now();
    log.warn({ err: error }, `rate limits: ${what}; limiting with this replica's own counts meanwhile`);
  };

  /** The replica's view becomes the shared bucket at `state`, less what was taken since. */
  function adopt(bucket: Bucket, limit: RateLimit, state: BucketState, revision: number) {
    const at = now();
    bucket.shared = { state, revision };
    bucket.tokens = refill(state, limit, at) - bucket.taken;
    bucket.at = at;
    bucket.syncedAt = at;
  }

  function read(bucket: Bucket, limit: RateLimit, store: SharedBuckets): Promise<void> {
    bucket.reading ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(resolve, readTimeoutMs, 'late');
        });
        const entry = await Promise.race([store.get(bucket.key), late]);
        if (entry === 'late') throw new Error(`the shared bucket did not answer in ${readTimeoutMs} ms`);
        if (entry?.state) adopt(bucket, limit, entry.state, entry.revision);
        else bucket.syncedAt = now();
      } catch (error) {
        bucket.syncedAt = now();
        failed(error, 'cannot read a shared bucket');
      } finally {
        clearTimeout(timer);
        bucket.reading = undefined;
      }
    })();
    return bucket.reading;
  }

  /** Adds what the replica took to the shared bucket (compare-and-set, again on a conflict), and takes it back. */
  async function push(bucket: Bucket, limit: RateLimit, store: SharedBuckets) {
    const taken = bucket.taken;
    bucket.taken = 0;
    bucket.syncing = true;
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        // The last revision this replica knows first: when no other replica wrote since, one round trip.
        let base = attempt === 1 ? bucket.shared : undefined;
        if (!base) {
          const entry = await store.get(bucket.key);
          base = entry && { state: entry.state ?? { tokens: limit.burst, at: now() }, revision: entry.revision };
        }
        const at = now();
        const state: BucketState = {
          tokens: Math.max(floorOf(limit), (base ? refill(base.state, limit, at) : limit.burst) - taken),
          at,
        };
        try {
          const revision = base
            ? await store.update(bucket.key, state, base.revision)
            : await store.create(bucket.key, state);
          adopt(bucket, limit, state, revision);
          return;
        } catch (error) {
          if (!(error instanceof SharedBucketConflictError)) throw error;
          bucket.shared = undefined;
        }
      }
      throw new Error(`bucket ${bucket.key} kept changing under ${MAX_ATTEMPTS} attempts`);
    } catch (error) {
      // What was taken goes with the next sync.
      bucket.taken += taken;
      dirty.add(bucket);
      failed(error, 'cannot write a shared bucket');
    } finally {
      bucket.syncing = false;
    }
  }

  let syncing: Promise<void> | undefined;
  async function sync() {
    if (!shared) return;
    const round = [...dirty].filter((bucket) => !bucket.syncing);
    for (const bucket of round) dirty.delete(bucket);
    const reread = [...refused].filter((bucket) => !bucket.syncing && bucket.taken === 0);
    refused.clear();
    await Promise.all([
      ...round.map((bucket) => push(bucket, limits[bucket.kind]!, shared)),
      ...reread.map((bucket) => read(bucket, limits[bucket.kind]!, shared)),
    ]);
  }
  const timer = setInterval(() => {
    if (!shared || syncing) return;
    syncing = sync().finally(() => (syncing = undefined));
  }, syncIntervalMs);
  timer.unref();

  // Full buckets nobody used for a while are forgotten: they hold nothing the shared bucket does not.
  const sweep = setInterval(() => {
    const at = now();
    for (const [id, bucket] of buckets) {
      if (bucket.taken > 0 || bucket.syncing || bucket.reading) continue;
      const limit = limits[bucket.kind]!;
      if (refill(bucket, limit, at) >= limit.burst && at - bucket.at > SWEEP_MS) buckets.delete(id);
    }
  }, SWEEP_MS);
  sweep.unref();

  return {
    async admit(kind, id) {
      const limit = limits[kind];
      if (!limit) return ALLOWED;
      const local = `${kind}:${id}`;
      let bucket = buckets.get(local);
      if (!bucket) {
        bucket = new Bucket(kind, keyOf(kind, id), limit, now());
        buckets.set(local, bucket);
      }
      // A view older than two syncs (or none yet) may not hold what other replicas took: it is read
      // first, unless this replica has taken tokens since (its sync is due) or the store just failed.
      const stale = now() - bucket.syncedAt > 2 * syncIntervalMs;
      if (shared && stale && !bucket.syncing && bucket.taken === 0 && now() >= storeAwayUntil)
        void read(bucket, limit, shared);
      if (bucket.reading) await bucket.reading;
      const at = now();
      const tokens = refill(bucket, limit, at);
      if (tokens < 1) {
        bucket.tokens = tokens;
        bucket.at = at;
        if (shared && bucket.taken === 0) refused.add(bucket);
        return { allowed: false, retryAfterSeconds: retryAfterSeconds(tokens, limit) };
      }
      bucket.tokens = tokens - 1;
      bucket.at = at;
      bucket.taken++;
      if (shared) dirty.add(bucket);
      return ALLOWED;
    },
    async sync() {
      await syncing;
      await sync();
    },
    async close() {
      clearInterval(timer);
      clearInterval(sweep);
      await syncing;
      await sync();
    },
  };
}
