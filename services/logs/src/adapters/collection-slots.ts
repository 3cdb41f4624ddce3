import {
  claimLease,
  DuplicateKeyError,
  leaseFields,
  releaseLease,
  type Collection,
  type Store,
  type StoredDoc,
} from '@fleetgraph/kit';
import type { CollectionSlots } from '../app/ports.js';

/** One slot: free, or held by a replica for one bundle until its lease runs out. */
interface SlotDoc extends StoredDoc {
  owner: string | null;
  until: number | null;
  bundleId: string | null;
}

const fields = leaseFields<SlotDoc>({ owner: 'owner', until: 'until', time: 'epoch-ms' });

export interface StoreSlotsOptions {
  store: Store;
  /** The replica: the owner of the slots it takes. */
  owner: string;
  /** Slots for the whole service, and for one cluster. */
  limits: { total: number; perCluster: number };
  /** How long a slot is held unless renewed (as the bundle's own lease). */
  leaseMs: number;
  /** How many bundles wait across the replicas. */
  countQueued: () => Promise<number>;
  now?: () => number;
}

/**
 * The collection limits for the whole service, however many replicas it runs: `total` slots for
 * the service and `perCluster` for each cluster, each a document of the store taken by
 * compare-and-set under a lease (as a bundle is). A replica that dies stops renewing its slots,
 * and they come free when their lease runs out, as its bundles are taken over.
 */
export async function storeCollectionSlots(options: StoreSlotsOptions): Promise<CollectionSlots> {
  const slots: Collection<SlotDoc> = await options.store.collection<SlotDoc>({ name: 'collection_slots', indexes: [] });
  const now = options.now ?? Date.now;
  /** The slots this replica holds, by bundle. */
  const held = new Map<string, string[]>();

  const ensure = async (id: string) => {
    try {
      await slots.insert({ id, owner: null, until: null, bundleId: null });
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
    }
  };
  /** Takes one free slot among `ids` for the bundle, trying them from a random one. */
  const takeOne = async (ids: readonly string[], bundleId: string): Promise<string | null> => {
    const start = Math.floor(Math.random() * ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[(start + i) % ids.length]!;
      let doc = await slots.get(id);
      if (!doc) {
        await ensure(id);
        doc = await slots.get(id);
      }
      if (!doc) continue;
      const taken = await claimLease(
        slots,
        fields,
        { ...doc, bundleId },
        {
          owner: options.owner,
          leaseMs: options.leaseMs,
          now,
          // One of this replica's own slots is free to take only when it holds no bundle.
          eligible: (d) => d.owner !== options.owner || d.bundleId === null || (d.until ?? 0) <= now(),
        },
      );
      if (taken) return id;
    }
    return null;
  };
  const release = async (ids: readonly string[]) => {
    for (const id of ids) {
      const doc = await slots.get(id);
      if (doc) await releaseLease(slots, fields, { ...doc, bundleId: null }, options.owner);
    }
  };

  return {
    async acquire(bundleId, clusterId) {
      const perCluster = Array.from({ length: options.limits.perCluster }, (_, k) => `cluster:${clusterId}:${k}`);
      const mine = await takeOne(perCluster, bundleId);
      if (!mine) return false;
      const total = Array.from({ length: options.limits.total }, (_, k) => `total:${k}`);
      const global = await takeOne(total, bundleId);
      if (!global) {
        await release([mine]);
        return false;
      }
      held.set(bundleId, [mine, global]);
      return true;
    },
    async release(bundleId) {
      const ids = held.get(bundleId);
      held.delete(bundleId);
      if (ids) await release(ids);
    },
    async renew(bundleId) {
      for (const id of held.get(bundleId) ?? []) {
        const doc = await slots.get(id);
        if (doc?.owner === options.owner && doc.bundleId === bundleId) {
          await claimLease(slots, fields, doc, { owner: options.owner, leaseMs: options.leaseMs, now });
        }
      }
    },
    queued: options.countQueued,
  };
}
