import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import { WebhookResolver, type WebhookResolverDeps } from '../webhooks/webhook.resolver.js';
import { clusterReferences } from './cluster.reference.js';
import { ClusterResolver, type ClusterResolverDeps } from './cluster.resolver.js';
import { ClusterSubscriptions } from './cluster.subscription.js';

/** The clusters subgraph; without deps, a schema good for printing only. */
export function buildClustersSchema(
  deps?: ClusterResolverDeps & { webhooks: WebhookResolverDeps },
): Promise<GraphQLSchema> {
  const resolver = deps && new ClusterResolver(deps);
  const webhooks = deps && new WebhookResolver(deps.webhooks);
  const need = () => {
    if (!resolver || !deps || !webhooks) throw new Error('the clusters schema was built without dependencies');
    return { resolver, deps, webhooks };
  };
  return buildSubgraph({
    resolvers: [ClusterResolver, ClusterSubscriptions, WebhookResolver],
    references: clusterReferences(
      () => need().resolver,
      () => need().deps.clusters,
    ),
    container: {
      get: (type) =>
        type === ClusterSubscriptions
          ? new ClusterSubscriptions()
          : type === WebhookResolver
            ? need().webhooks
            : need().resolver,
    },
  });
}
