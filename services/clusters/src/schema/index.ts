import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import { clusterReferences } from './cluster.reference.js';
import { ClusterResolver, type ClusterResolverDeps } from './cluster.resolver.js';
import { ClusterSubscriptions } from './cluster.subscription.js';

/** The clusters subgraph; without deps, a schema good for printing only. */
export function buildClustersSchema(deps?: ClusterResolverDeps): Promise<GraphQLSchema> {
  const resolver = deps && new ClusterResolver(deps);
  const need = () => {
    if (!resolver || !deps) throw new Error('the clusters schema was built without dependencies');
    return { resolver, deps };
  };
  return buildSubgraph({
    resolvers: [ClusterResolver, ClusterSubscriptions],
    references: clusterReferences(
      () => need().resolver,
      () => need().deps.clusters,
    ),
    container: { get: (type) => (type === ClusterSubscriptions ? new ClusterSubscriptions() : need().resolver) },
  });
}
