import type { SubgraphContext } from '@fleetgraph/kit';
import type { ClusterRegistry } from '../ingest/registry.js';

/**
 * Resolves `Cluster` references from the gateway. The clusters subgraph has already scoped the
 * cluster to the caller; this checks again against the registry, so that nothing of another
 * tenant or an unreadable project is served even to a forged reference. A cluster the registry
 * does not know yet has nothing reported (its reports would have been dropped): it resolves, UNKNOWN.
 */
export const clusterReferences = (registry: () => ClusterRegistry) => ({
  Cluster: {
    __resolveReference: (ref: { id: string }, { identity }: SubgraphContext) => {
      const known = registry().get(ref.id);
      if (known && !identity.canSee(known)) return null;
      return { id: ref.id };
    },
  },
});
