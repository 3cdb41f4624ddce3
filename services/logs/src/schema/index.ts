import { buildSubgraph } from '@fleetgraph/kit';
import type { GraphQLSchema } from 'graphql';
import { logBundleReferences } from './log-bundle.reference.js';
import {
  ClusterLogBundlesResolver,
  LogBundleResolver,
  LogBundleSubscriptionResolver,
  type LogBundleResolverDeps,
} from './log-bundle.resolver.js';
import { Cluster } from './log-bundle.type.js';

export type LogsSchemaDeps = LogBundleResolverDeps;

/** The logs subgraph; without deps, a schema good for printing only. */
export function buildLogsSchema(deps?: LogsSchemaDeps): Promise<GraphQLSchema> {
  const need = () => {
    if (!deps) throw new Error('the logs schema was built without dependencies');
    return deps;
  };
  const instances = new Map<unknown, unknown>(
    deps
      ? [
          [LogBundleResolver, new LogBundleResolver(deps)],
          [ClusterLogBundlesResolver, new ClusterLogBundlesResolver(deps.bundles)],
          [LogBundleSubscriptionResolver, new LogBundleSubscriptionResolver()],
        ]
      : [],
  );
  return buildSubgraph({
    resolvers: [LogBundleResolver, ClusterLogBundlesResolver, LogBundleSubscriptionResolver],
    orphanedTypes: [Cluster],
    references: logBundleReferences(() => need().bundles),
    container: { get: (type) => instances.get(type) ?? need() },
  });
}
