import { randomUUID } from 'node:crypto';
import type { Logger } from './log.js';
import { defineCounter } from './metrics.js';
import { VersionConflictError } from './store/store.js';

/**
 * Leases: how replicas share background work kept in the store (a cluster to reconcile, an image
 * to build, a log bundle to collect). A replica claims an item by compare-and-set, holds it while
 * it works (renewing the lease with its writes, or on a timer), and lets go with its last write.
 * A replica that dies stops renewing: once its leases run out, another replica's sweep finds the
 * items and takes them over.
 */

/** A hold on a piece of work: whose, and until when (ms since the epoch). */
export interface Lease {
  owner: string;
  until: number;
}

/** A lease as a document holds it: nobody's when `owner` is null. */
export interface StoredLease {
  owner: string | null;
  until: number | null;
}

/**
 * Where a kind of document keeps its lease. Each service stored leases under its own field names
 * and time format before this module existed; they are read and written as they are, so that
 * stored documents need no migration.
 */
export interface LeaseFields<T> {
  read(doc: T): StoredLease;
  /** The document holding `lease`, or let go of (`null`). */
  write<D extends T>(doc: D, lease: Lease | null): D;
}

/**
 * The lease fields of a document type, e.g. `leaseFields<ClusterStatus>({ owner: 'leaseOwner',
 * until: 'leaseUntil', time: 'iso' })`.
 */
export function leaseFields<T>(spec: {
  owner: keyof T & string;
  until: keyof T & string;
  /** How `until` is stored: an ISO-8601 string, or ms since the epoch. */
  time: 'iso' | 'epoch-ms';
  /** What `until` holds while nobody holds the lease. @default null */
  free?: 0 | null;
}): LeaseFields<T> {
  const free = spec.free ?? null;
  return {
    read(doc) {
      const fields = doc as Record<string, unknown>;
      const until = fields[spec.until];
      return {
        owner: (fields[spec.owner] as string | null | undefined) ?? null,
        until:
          until === null || until === undefined
            ? null
            : spec.time === 'iso'
              ? Date.parse(until as string)
              : (until as number),
      };
    },
    write(doc, lease) {
      const until = lease === null ? free : spec.time === 'iso' ? new Date(lease.until).toISOString() : lease.until;
      return { ...doc, [spec.owner]: lease?.owner ?? null, [spec.until]: until };
    },
  };
}

/** Whether an owner other than `owner` holds the lease and it has not run out. */
export function isHeldByAnother(lease: StoredLease, owner: string, now: number): boolean {
  return lease.owner !== null && lease.owner !== owner && lease.until !== null && lease.until > now;
}

/** Whether nobody holds the lease, or it ran out: the work may be taken (over). */
export function isLeaseFree(lease: StoredLease, now: number): boolean {
  return lease.owner === null || lease.until === null || lease.until <= now;
}

/** What leases are written to: a store collection, or a repository over one. */
export interface LeaseTarget<T> {
  get(id: string): Promise<T | null>;
  /** Compare-and-set on the document's version. @throws VersionConflictError when it changed since it was read */
  replace(doc: T): Promise<T>;
}

export interface ClaimOptions<T> {
  owner: string;
  leaseMs: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * Tries in all: after a conflict the document is read again and the claim retried. With 1, a
   * conflict means another replica got there first. @default 1
   */
  attempts?: number;
  /** Whether the document still has work to lease (e.g. an image still in progress). @default always */
  eligible?: (doc: T) => boolean;
  /**
   * The kind of work, as `fleetgraph_lease_takeovers_total` labels it. @default the target's
   * `name` (a store collection's), else `unknown`
   */
  work?: string;
}

const takeovers = defineCounter<'work'>({
  name: 'fleetgraph_lease_takeovers_total',
  help: 'Leases taken over from another replica after they ran out (its holder died or stalled), by kind of work.',
  labelNames: ['work'],
});

/**
 * Takes the lease of a document (given, or read by id) by compare-and-set, unless another owner
 * holds an unexpired one: a lease that ran out is taken over.
 * @returns the document as written, or null when it is gone, not eligible, or held by another owner
 */
export async function claimLease<T extends { id: string }>(
  target: LeaseTarget<T>,
  fields: LeaseFields<NoInfer<T>>,
  doc: T | string,
  options: ClaimOptions<NoInfer<T>>,
): Promise<T | null> {
  const now = options.now ?? Date.now;
  const attempts = options.attempts ?? 1;
  const id = typeof doc === 'string' ? doc : doc.id;
  let current = typeof doc === 'string' ? await target.get(doc) : doc;
  for (let attempt = 1; ; attempt++) {
    const at = now();
    if (
      !current ||
      (options.eligible && !options.eligible(current)) ||
      isHeldByAnother(fields.read(current), options.owner, at)
    )
      return null;
    const before = fields.read(current);
    try {
      const claimed = await target.replace(
        fields.write(current, { owner: options.owner, until: at + options.leaseMs }),
      );
      if (before.owner !== null && before.owner !== options.owner)
        takeovers.inc({ work: options.work ?? (target as { name?: string }).name ?? 'unknown' });
      return claimed;
    } catch (error) {
      if (!(error instanceof VersionConflictError)) throw error;
      if (attempt >= attempts) return null;
    }
    current = await target.get(id);
  }
}

/**
 * Lets go of a lease `owner` holds on the document, so that another replica (or the next start)
 * may take the work at once. A document that changed meanwhile is left as it is: whoever changed
 * it holds it now, or its lease runs out.
 */
export async function releaseLease<T>(
  target: LeaseTarget<T>,
  fields: LeaseFields<NoInfer<T>>,
  doc: T,
  owner: string,
): Promise<void> {
  if (fields.read(doc).owner !== owner) return;
  try {
    await target.replace(fields.write(doc, null));
  } catch (error) {
    if (!(error instanceof VersionConflictError)) throw error;
  }
}

/** Ids of items whose lease the runner kept after a run that did not let go (it crashed, or asked to hold). */
export interface HeldLeases {
  /** Held ids not being worked on now. */
  idle(): string[];
  /** Forgets a held id (its lease is no longer this replica's). */
  forget(id: string): void;
}

export interface LeaseRunnerOptions<T extends { id: string }, C extends { id: string } = T> {
  log: Logger;
  /** What the runner works on, for its log lines, e.g. `reconcile`. */
  name: string;
  /** The log field naming an item, e.g. `clusterId`. @default 'id' */
  idKey?: string;
  /** This replica's name in leases. @default a random id */
  owner?: string;
  /** How often the store is looked at for work (free or expired leases) and housekeeping. */
  sweepMs: number;
  /** Items worked on at once. @default 1 */
  concurrency?: number;
  /**
   * Work nobody holds, or whose lease ran out, most urgent first, at most `limit` (the free
   * slots). `held` are items this replica still holds after a run that did not let go.
   */
  findWork(now: Date, limit: number, held: HeldLeases): Promise<readonly T[]>;
  /**
   * Claims an item (compare-and-set, see {@link claimLease}): the item as claimed, or null when
   * another replica holds it. Without `takeOver`, every item found is claimed and then run.
   */
  claim?(item: T, owner: string, now: Date): Promise<C | null>;
  /**
   * Works on a claimed item, and lets go of the lease with its last write. Resolving `'hold'`
   * keeps the lease (the item is offered to `findWork` as held); a throw keeps it too, unless
   * `isLeaseLost` says the lease went to another replica.
   */
  /* biome-ignore lint/suspicious/noConfusingVoidType: `void` keeps a `run` that returns nothing (the usual case)
     assignable; only `'hold'` is looked at */
  run?(item: C, context: { owner: string; signal: AbortSignal }): Promise<void | 'hold'>;
  /**
   * For work that cannot go on elsewhere: what becomes of an item `findWork` found (its holder
   * died), instead of claiming and running it. Awaited by `sweep`.
   */
  takeOver?(item: T, now: Date): Promise<void>;
  /** Leases held outside of `run` (work queued in memory), renewed every third of `leaseMs`. */
  renew?: { leaseMs: number; ids(): Iterable<string>; renew(id: string, lease: Lease): Promise<void> };
  /** Other periodic work of the sweep, run after looking for work (even with no free slot). */
  housekeeping?(now: Date): Promise<void>;
  /**
   * After a run ends, looks for more work on the next turn of the event loop rather than at the
   * next sweep. @default false
   */
  refill?: boolean;
  /** Errors that mean the lease was lost to another replica (a warning, not a crash). */
  isLeaseLost?(error: unknown): boolean;
  /** When the first item starts while none was in flight, and when the last one ends. */
  onBusy?(): void;
  onIdle?(): void;
  now?(): Date;
}

/** A loop that sweeps the store for leased work and works on it; see {@link createLeaseRunner}. */
export interface LeaseRunner<T> {
  readonly owner: string;
  /** Sweeps at once, then every `sweepMs`. */
  start(): void;
  /** Looks for work now (after a change, rather than at the next sweep). */
  poke(): void;
  /** Claims and runs an item now, when there is a free slot and it is not in flight already. */
  take(item: T): void;
  /** One sweep: work found is claimed and started (or taken over), then housekeeping. Sweeps never overlap. */
  sweep(now?: Date): Promise<void>;
  /** Ids of the items in flight. */
  readonly active: string[];
  /** Stops sweeping, aborts the runs' signals and waits for them to end. */
  stop(): Promise<void>;
}

/**
 * The one loop every service's background work runs in: sweep the store for work that nobody
 * holds or whose lease ran out (a takeover), claim each item, run it under a concurrency limit,
 * remember what a crashed run still holds, renew leases of queued work, and stop cleanly.
 */
export function createLeaseRunner<T extends { id: string }, C extends { id: string } = T>(
  options: LeaseRunnerOptions<T, C>,
): LeaseRunner<T> {
  const { log, name } = options;
  const owner = options.owner ?? `${name}-${randomUUID()}`;
  const idKey = options.idKey ?? 'id';
  const concurrency = options.concurrency ?? 1;
  const now = options.now ?? (() => new Date());
  const inflight = new Set<string>();
  const held = new Set<string>();
  const running = new Set<Promise<void>>();
  const stopping = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let sweeping: Promise<void> | null = null;
  let refillScheduled = false;

  const heldLeases: HeldLeases = {
    idle: () => [...held].filter((id) => !inflight.has(id)),
    forget: (id) => held.delete(id),
  };

  async function work(item: T): Promise<void> {
    if (!options.claim || !options.run) return;
    const claimed = await options.claim(item, owner, now()).catch((error: unknown) => {
      log.error({ err: error, [idKey]: item.id, runner: name }, 'claim failed');
      return null;
    });
    if (!claimed) return;
    held.add(claimed.id);
    try {
      if ((await options.run(claimed, { owner, signal: stopping.signal })) !== 'hold') held.delete(claimed.id);
    } catch (error) {
      if (options.isLeaseLost?.(error)) {
        held.delete(claimed.id);
        log.warn({ err: error, [idKey]: claimed.id, runner: name }, 'lost the lease to another replica');
      } else log.error({ err: error, [idKey]: claimed.id, runner: name }, 'work crashed');
    }
    if (options.refill) refillSoon();
  }

  function take(item: T): void {
    if (stopping.signal.aborted || inflight.has(item.id) || inflight.size >= concurrency) return;
    if (inflight.size === 0) options.onBusy?.();
    inflight.add(item.id);
    const done = work(item).finally(() => {
      inflight.delete(item.id);
      running.delete(done);
      if (inflight.size === 0) options.onIdle?.();
    });
    running.add(done);
  }

  async function sweepOnce(at: Date, housekeeping: boolean): Promise<void> {
    const free = concurrency - inflight.size;
    if (free > 0 || options.takeOver) {
      try {
        const found = await options.findWork(at, Math.max(free, options.takeOver ? concurrency : 0), heldLeases);
        for (const item of found) {
          if (stopping.signal.aborted) break;
          if (options.takeOver) {
            await options.takeOver(item, at);
            takeovers.inc({ work: name });
          } else if (inflight.size >= concurrency) break;
          else take(item);
        }
      } catch (error) {
        log.error({ err: error, runner: name }, 'could not look for work');
      }
    }
    if (housekeeping && options.housekeeping) {
      await options
        .housekeeping(at)
        .catch((error: unknown) => log.error({ err: error, runner: name }, 'housekeeping failed'));
    }
  }

  /** A sweep from a timer or a poke: skipped while another runs. */
  function trigger(housekeeping: boolean): void {
    if (sweeping || stopping.signal.aborted) return;
    sweeping = sweepOnce(now(), housekeeping).finally(() => (sweeping = null));
  }

  function refillSoon(): void {
    if (refillScheduled || stopping.signal.aborted) return;
    refillScheduled = true;
    setImmediate(() => {
      refillScheduled = false;
      trigger(false);
    });
  }

  async function renewAll(): Promise<void> {
    const renew = options.renew!;
    const lease = { owner, until: now().getTime() + renew.leaseMs };
    for (const id of renew.ids()) {
      await renew
        .renew(id, lease)
        .catch((error: unknown) => log.warn({ err: error, [idKey]: id, runner: name }, 'could not renew a lease'));
    }
  }

  return {
    owner,
    start() {
      const sweep = setInterval(() => trigger(true), options.sweepMs);
      sweep.unref();
      timers.push(sweep);
      if (options.renew) {
        const renew = setInterval(() => void renewAll(), Math.max(50, Math.floor(options.renew.leaseMs / 3)));
        renew.unref();
        timers.push(renew);
      }
      trigger(true);
    },
    poke: () => trigger(false),
    take,
    async sweep(at = now()) {
      while (sweeping) await sweeping;
      sweeping = sweepOnce(at, true).finally(() => (sweeping = null));
      await sweeping;
    },
    get active() {
      return [...inflight];
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      stopping.abort();
      await Promise.allSettled([...running]);
      await sweeping;
    },
  };
}
