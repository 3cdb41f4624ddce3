import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import { natsNodeReadable } from '../adapters/node.requests.js';
import { readableWebhook, webhookReferences } from '../webhooks/webhook.reference.js';
import { toWebhook, WebhookResolver, type WebhookResolverDeps } from '../webhooks/webhook.resolver.js';
import { clusterReferences } from './cluster.reference.js';
import { ClusterResolver, type ClusterResolverDeps } from './cluster.resolver.js';
import { ClusterSubscriptions } from './cluster.subscription.js';
import { NodeResolver } from './node.resolver.js';
import { ApiKey, Image, LogBundle } from './node.type.js';

/** The clusters subgraph; without deps, a schema good for printing only. */
export function buildClustersSchema(
  deps?: ClusterResolverDeps & { webhooks: WebhookResolverDeps },
): Promise<GraphQLSchema> {
  const resolver = deps && new ClusterResolver(deps);
  const webhooks = deps && new WebhookResolver(deps.webhooks);
  const nodes =
    deps &&
    resolver &&
    new NodeResolver({
      cluster: async (identity, id) => {
        const spec = await deps.clusters.get(identity, id);
        return spec && resolver.toGraphQL(spec);
      },
      webhook: async (identity, id) => {
        const doc = await readableWebhook(deps.webhooks.repo, identity, id);
        return doc && toWebhook(doc);
      },
      readable: natsNodeReadable(deps.bus),
    });
  const need = () => {
    if (!resolver || !deps || !webhooks || !nodes)
      throw new Error('the clusters schema was built without dependencies');
    return { resolver, deps, webhooks, nodes };
  };
  return buildSubgraph({
    resolvers: [ClusterResolver, ClusterSubscriptions, WebhookResolver, NodeResolver],
    // The Node types of other subgraphs, reached only through Query.node.
    orphanedTypes: [Image, LogBundle, ApiKey],
    // Node is an entity interface here (Federation 2.3): this subgraph serves Query.node for every type.
    entityInterfaces: ['Node'],
    references: {
      ...clusterReferences(
        () => need().resolver,
        () => need().deps.clusters,
      ),
      ...webhookReferences(() => need().deps.webhooks.repo),
    },
    container: {
      get: (type) =>
        type === ClusterSubscriptions
          ? new ClusterSubscriptions()
          : type === WebhookResolver
            ? need().webhooks
            : type === NodeResolver
              ? need().nodes
              : need().resolver,
    },
  });
}
