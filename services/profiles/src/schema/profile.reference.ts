import type { SubgraphContext } from '@fleetgraph/kit';
import type { ProfileRepository } from '../adapters/profile.repo.js';
import { toGraphQL } from './profile.resolver.js';

/** Resolves `ClusterProfile` references from other subgraphs, scoped by the caller like every read. */
export const profileReferences = (profiles: () => ProfileRepository) => ({
  ClusterProfile: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const profile = await profiles().get(identity, ref.id);
      return profile && toGraphQL(profile);
    },
  },
});
