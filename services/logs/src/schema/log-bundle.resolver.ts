import {
  GatewayExecutedFieldError,
  graphqlError,
  StreamSubscription,
  userError,
  type SubgraphContext,
} from '@fleetgraph/kit';
import { logBundleChanged } from '@fleetgraph/schema';
import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { BundleRepository } from '../adapters/bundle.repo.js';
import type { DownloadLinks } from '../adapters/download-links.js';
import type { LogCollections } from '../app/collections.js';
import type { LogBundle as DomainLogBundle } from '../domain/bundle.js';
import { RequestClusterLogsInput } from './log-bundle.input.js';
import { Cluster, LogBundle, LogBundlePayload } from './log-bundle.type.js';

/** The GraphQL shape of a stored bundle. */
export const toGraphQL = (b: DomainLogBundle): LogBundle =>
  Object.assign(new LogBundle(), {
    id: b.id,
    clusterId: b.clusterId,
    status: b.status,
    message: b.message,
    fileName: b.status === 'READY' || b.status === 'COLLECTING' ? b.fileName : null,
    sizeBytes: b.sizeBytes,
    requestedAt: new Date(b.requestedAt),
    readyAt: b.readyAt ? new Date(b.readyAt) : null,
    record: b,
  });

export interface LogBundleResolverDeps {
  bundles: BundleRepository;
  collections: LogCollections;
  links: DownloadLinks;
}

@Resolver(() => LogBundle)
export class LogBundleResolver {
  constructor(private readonly deps: LogBundleResolverDeps) {}

  @Query(() => LogBundle, {
    nullable: true,
    description: 'A log bundle by id; null when unknown or not visible to the caller.',
  })
  async logBundle(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<LogBundle | null> {
    const bundle = await this.deps.bundles.getVisible(identity, id);
    return bundle && toGraphQL(bundle);
  }

  @Mutation(() => LogBundlePayload, {
    description:
      "Collects a cluster's logs into an archive (editor or admin of the cluster's project). " +
      'Returns at once with the bundle REQUESTED; ' +
      'watch it with the logBundle subscription or query it until READY or FAILED.',
  })
  async requestClusterLogs(
    @Arg('input', () => RequestClusterLogsInput) input: RequestClusterLogsInput,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<LogBundlePayload> {
    const outcome = await this.deps.collections.request(identity, input);
    switch (outcome.kind) {
      case 'requested':
        return { bundle: toGraphQL(outcome.bundle), userErrors: [] };
      case 'problems':
        return { bundle: null, userErrors: outcome.problems.map((p) => userError(p.code, p.message, p.field)) };
      case 'forbidden':
        throw graphqlError('FORBIDDEN', outcome.message);
      case 'unavailable':
        throw graphqlError('SERVICE_UNAVAILABLE', outcome.message);
    }
  }

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'When READY: a link to the archive that needs no other credential and expires within minutes; ' +
      'query again for a fresh one.',
  })
  downloadUrl(@Root() bundle: LogBundle, @Ctx() { identity }: SubgraphContext): Promise<string | null> | null {
    // Minted only for a caller who may read the bundle, whichever path reached it.
    if (!bundle.record || !identity.canSee(bundle.record)) return null;
    return this.deps.links.urlFor(bundle.record);
  }
}

@Resolver(() => Cluster)
export class ClusterLogBundlesResolver {
  constructor(private readonly bundles: BundleRepository) {}

  @FieldResolver(() => [LogBundle], {
    description: 'Log bundles of this cluster still retained, newest first (at most 100).',
  })
  async logBundles(@Root() cluster: Cluster, @Ctx() { identity }: SubgraphContext): Promise<LogBundle[]> {
    return (await this.bundles.listForCluster(identity, cluster.id)).map(toGraphQL);
  }
}

/** The `logBundle` subscription, executed by the gateway from `logs.v1.bundles.<tenantId>.<id>`. */
@Resolver()
export class LogBundleSubscriptionResolver {
  @StreamSubscription(
    () => LogBundle,
    {
      subject: logBundleChanged.subjectTemplate(),
      stream: logBundleChanged.stream,
      authorize: 'logBundle(id: $id) { id }',
      replay: 'LAST',
      complete: 'status in [READY, FAILED]',
    },
    { description: "A log bundle's current state first, then every change, until it is READY or FAILED." },
  )
  logBundle(@Arg('id', () => ID, { description: 'The bundle.' }) _id: string): LogBundle {
    throw new GatewayExecutedFieldError('logBundle');
  }
}
