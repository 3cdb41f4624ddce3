import { randomUUID } from 'node:crypto';
import type { Logger } from './log.js';
import { claimLease, leaseFields, releaseLease } from './lease.js';
import { DuplicateKeyError, type Store, type StoredDoc } from './store/store.js';

/** The one document of a role: who holds it, until when. */
interface RoleDoc extends StoredDoc {
  owner: string | null;
  until: number | null;
}

const fields = leaseFields<RoleDoc>({ owner: 'owner', until: 'until', time: 'epoch-ms' });

export interface LeadershipOptions {
  /** The service's store, shared by its replicas. */
  store: Store;
  /** What is led, e.g. `health-ingest`: one holder per role among the replicas of a store. */
  role: string;
  log: Logger;
  /** How long a hold lasts unless renewed; renewed every third of it. @default 15000 */
  leaseMs?: number;
  /** @default a random id for this process */
  owner?: string;
  /** Hears each change of this replica's leadership. */
  onChange?: (leading: boolean) => void;
  /** @default Date.now */
  now?: () => number;
}

export interface Leadership {
  /** Whether this replica holds the role now (it held it at its last renewal, and that lease has not run out). */
  readonly leading: boolean;
  /** Lets the role go (another replica takes it at its next attempt) and stops trying. */
  stop(): Promise<void>;
}

/**
 * One replica at a time holds a role, by a lease on one document of the store (compare-and-set,
 * as leases.ts does for pieces of work): it renews it every third of the lease; a replica that
 * dies stops renewing, and another takes the role once the lease ran out. A replica that cannot
 * reach the store stops leading when its lease runs out, whatever it believes.
 */
export async function startLeadership(options: LeadershipOptions): Promise<Leadership> {
  const leaseMs = options.leaseMs ?? 15_000;
  const owner = options.owner ?? randomUUID();
  const now = options.now ?? Date.now;
  const roles = await options.store.collection<RoleDoc>({ name: 'leadership', indexes: [] });
  try {
    await roles.insert({ id: options.role, owner: null, until: null });
  } catch (error) {
    if (!(error instanceof DuplicateKeyError)) throw error;
  }
  let heldUntil = 0;
  let leading = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const set = (next: boolean) => {
    if (next === leading) return;
    leading = next;
    options.log.info({ role: options.role, owner, leading }, leading ? 'took the role' : 'no longer holds the role');
    options.onChange?.(leading);
  };
  const attempt = async () => {
    try {
      const held = await claimLease(roles, fields, options.role, { owner, leaseMs, now });
      heldUntil = held ? now() + leaseMs : 0;
      set(held !== null);
    } catch (error) {
      options.log.warn({ err: error, role: options.role }, 'could not renew the role');
      if (heldUntil <= now()) set(false);
    }
    if (!stopped) {
      timer = setTimeout(() => void attempt(), leaseMs / 3);
      timer.unref();
    }
  };
  await attempt();
  return {
    get leading() {
      return leading && heldUntil > now();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const doc = await roles.get(options.role).catch(() => null);
      if (doc) await releaseLease(roles, fields, doc, owner).catch(() => {});
      set(false);
    },
  };
}
