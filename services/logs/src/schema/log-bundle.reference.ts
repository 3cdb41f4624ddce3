import type { SubgraphContext } from '@fleetgraph/kit';
import type { BundleRepository } from '../adapters/bundle.repo.js';
import { toGraphQL } from './log-bundle.resolver.js';

/**
 * Federation references: a `LogBundle` the caller may read; a `Cluster` is its id (the clusters
 * subgraph checked that the caller may see it, and `logBundles` scopes by the caller again).
 */
export const logBundleReferences = (bundles: () => BundleRepository) => ({
  LogBundle: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const bundle = await bundles().getVisible(identity, ref.id);
      return bundle && toGraphQL(bundle);
    },
  },
  Cluster: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
  },
});
