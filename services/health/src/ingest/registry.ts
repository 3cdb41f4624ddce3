import type { ClusterSummary } from '@fleetgraph/schema';

/** A cluster the health service accepts reports for: whose it is and where it is in its life. */
export interface RegisteredCluster {
  id: string;
  tenantId: string;
  projectId: string;
  phase: ClusterSummary['phase'];
}

/**
 * The clusters that exist and whose they are, from the clusters service's lifecycle events
 * (`clusters.v1.lifecycle.<tenantId>.<id>`), so that no report needs a request to another service.
 */
export class ClusterRegistry {
  readonly #clusters = new Map<string, RegisteredCluster>();
  readonly #byTenant = new Map<string, Set<string>>();

  get size(): number {
    return this.#clusters.size;
  }

  get(id: string): RegisteredCluster | undefined {
    return this.#clusters.get(id);
  }

  /** Applies a lifecycle event; returns what it did. A DELETED cluster is forgotten. */
  apply(
    summary: Pick<ClusterSummary, 'id' | 'tenantId' | 'projectId' | 'phase'>,
  ): 'added' | 'changed' | 'removed' | 'ignored' {
    const known = this.#clusters.get(summary.id);
    if (summary.phase === 'DELETED') {
      if (!known) return 'ignored';
      this.#remove(known);
      return 'removed';
    }
    if (known && known.tenantId !== summary.tenantId) this.#remove(known);
    const cluster = { id: summary.id, tenantId: summary.tenantId, projectId: summary.projectId, phase: summary.phase };
    this.#clusters.set(cluster.id, cluster);
    let ids = this.#byTenant.get(cluster.tenantId);
    if (!ids) {
      ids = new Set();
      this.#byTenant.set(cluster.tenantId, ids);
    }
    ids.add(cluster.id);
    return known ? 'changed' : 'added';
  }

  /** The clusters of a tenant. */
  *ofTenant(tenantId: string): Iterable<RegisteredCluster> {
    for (const id of this.#byTenant.get(tenantId) ?? []) yield this.#clusters.get(id)!;
  }

  #remove(cluster: RegisteredCluster): void {
    this.#clusters.delete(cluster.id);
    const ids = this.#byTenant.get(cluster.tenantId);
    ids?.delete(cluster.id);
    if (ids?.size === 0) this.#byTenant.delete(cluster.tenantId);
  }
}
