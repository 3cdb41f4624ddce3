import type { SubgraphContext } from '@fleetgraph/kit';
import type { ClusterResolver } from './cluster.resolver.js';

/** Resolves `Cluster` references from other subgraphs, scoped by the caller like every read. */
export const clusterReferences = (
  resolver: () => ClusterResolver,
  repo: () => import('../adapters/cluster.repo.js').ClusterRepository,
) => ({
  Cluster: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const spec = await repo().get(identity, ref.id);
      return spec && resolver().toGraphQL(spec);
    },
  },
});
