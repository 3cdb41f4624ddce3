import type { SubgraphContext } from '@fleetgraph/kit';
import type { ImageRepository } from '../adapters/image.repo.js';
import { toGraphQL } from './image.resolver.js';

/**
 * Federation references: an `Image` from another subgraph, visible when public or the caller's
 * tenant's; a `Cluster` is its id (the clusters subgraph checked that the caller may see it).
 */
export const imageReferences = (images: () => ImageRepository) => ({
  Image: {
    __resolveReference: async (ref: { id: string }, { identity }: SubgraphContext) => {
      const image = await images().getVisible(identity.tenantId, ref.id);
      return image && toGraphQL(image);
    },
  },
  Cluster: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
  },
});
