import { VersionConflictError, type Collection, type Identity, type Store, type StoredDoc } from '@fleetgraph/kit';
import { PENDING_STATUSES, type LogBundle } from '../domain/bundle.js';

interface StoredBundle extends StoredDoc, LogBundle {}

/** Bundles a cluster's list returns at most, newest first (the retention period bounds them anyway). */
export const MAX_BUNDLES_PER_CLUSTER = 100;

/**
 * Log bundles in the store. Reads for callers are scoped by their identity: a bundle of another
 * tenant, or of a project the caller cannot read, is indistinguishable from a missing one.
 */
export class BundleRepository {
  private constructor(private readonly bundles: Collection<StoredBundle>) {}

  static async open(store: Store): Promise<BundleRepository> {
    const bundles = await store.collection<StoredBundle>({
      name: 'log_bundles',
      indexes: [{ fields: ['tenantId', 'clusterId', 'requestedAt'] }, { fields: ['status', 'leaseUntil'] }, { fields: ['expiresAt'] }],
    });
    return new BundleRepository(bundles);
  }

  async insert(bundle: LogBundle): Promise<LogBundle> {
    return fromStored(await this.bundles.insert(bundle));
  }

  /** A bundle by id, whoever owns it: for the service's own work. */
  async get(id: string): Promise<LogBundle | null> {
    const doc = await this.bundles.get(id);
    return doc && fromStored(doc);
  }

  /** A bundle the caller may read, or null. */
  async getVisible(identity: Identity, id: string): Promise<LogBundle | null> {
    const bundle = await this.get(id);
    return bundle && identity.canSee(bundle) ? bundle : null;
  }

  /** A bundle of the tenant, or null: for download tokens, which name both. */
  async getInTenant(tenantId: string, id: string): Promise<LogBundle | null> {
    const bundle = await this.get(id);
    return bundle && bundle.tenantId === tenantId ? bundle : null;
  }

  /** The cluster's bundles the caller may read, newest first. */
  async listForCluster(identity: Identity, clusterId: string): Promise<LogBundle[]> {
    const page = await this.bundles.find({
      where: { tenantId: identity.tenantId, clusterId },
      orderBy: [{ field: 'requestedAt', direction: 'desc' }],
      first: MAX_BUNDLES_PER_CLUSTER,
    });
    return page.nodes.map(fromStored).filter((b) => identity.canSee(b));
  }

  /**
   * Applies `change` to the stored bundle and saves it if nobody changed it meanwhile, retrying on
   * a conflict with what is stored then. `change` returns null to leave the bundle as it is.
   * @returns the bundle as saved, or null when it is gone or `change` declined
   */
  async update(id: string, change: (bundle: LogBundle) => LogBundle | null): Promise<LogBundle | null> {
    for (let attempt = 0; ; attempt++) {
      const doc = await this.bundles.get(id);
      if (!doc) return null;
      const changed = change(fromStored(doc));
      if (!changed) return null;
      try {
        return fromStored(await this.bundles.replace({ ...changed, id, version: doc.version }));
      } catch (error) {
        if (!(error instanceof VersionConflictError) || attempt >= 5) throw error;
      }
    }
  }

  /** Bundles still to collect or collecting whose lease ran out before `nowMs`: their replica is gone. */
  async findStale(nowMs: number, first = 100): Promise<LogBundle[]> {
    const page = await this.bundles.find({ where: { status: { in: [...PENDING_STATUSES] }, leaseUntil: { lt: nowMs } }, first });
    return page.nodes.map(fromStored);
  }

  /** Deletes the bundles that expired before `now`; returns how many. */
  deleteExpired(now: Date): Promise<number> {
    return this.bundles.deleteBefore('expiresAt', now.toISOString());
  }
}

function fromStored(doc: StoredBundle): LogBundle {
  const { version: _version, ...bundle } = doc;
  return bundle;
}
