import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import { clusterReferences } from './cluster.reference.js';
import { HealthResolver, HealthSubscriptions, type HealthResolverDeps } from './health.resolver.js';
import { Cluster } from './health.type.js';

/** The health subgraph; without deps, a schema good for printing only. */
export function buildHealthSchema(deps?: HealthResolverDeps): Promise<GraphQLSchema> {
  const need = () => {
    if (!deps) throw new Error('the health schema was built without dependencies');
    return deps;
  };
  const resolver = deps && new HealthResolver(deps);
  const subscriptions = new HealthSubscriptions();
  return buildSubgraph({
    resolvers: [HealthResolver, HealthSubscriptions],
    // Cluster is reached only through the gateway (an entity of the clusters subgraph).
    orphanedTypes: [Cluster],
    references: clusterReferences(() => need().registry),
    container: {
      get: (someClass) => (someClass === HealthSubscriptions ? subscriptions : (resolver ?? need())),
    },
  });
}
