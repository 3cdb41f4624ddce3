import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import type { ImageRepository } from '../adapters/image.repo.js';
import { imageReferences } from './image.reference.js';
import { ClusterImagesResolver, ImageResolver } from './image.resolver.js';
import { Cluster } from './image.type.js';

export interface ImagesDeps {
  images: ImageRepository;
}

/** The images subgraph; without deps, a schema good for printing only. */
export function buildImagesSchema(deps?: ImagesDeps): Promise<GraphQLSchema> {
  const need = () => {
    if (!deps) throw new Error('the images schema was built without dependencies');
    return deps;
  };
  const instances = new Map<unknown, unknown>(
    deps
      ? [
          [ImageResolver, new ImageResolver(deps.images)],
          [ClusterImagesResolver, new ClusterImagesResolver(deps.images)],
        ]
      : [],
  );
  return buildSubgraph({
    resolvers: [ImageResolver, ClusterImagesResolver],
    orphanedTypes: [Cluster],
    references: imageReferences(() => need().images),
    container: { get: (type) => instances.get(type) ?? need() },
  });
}
