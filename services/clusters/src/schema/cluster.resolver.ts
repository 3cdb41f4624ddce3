import {
  API_KEY_SUBJECT_PREFIX,
  BusError,
  graphqlError,
  InvalidQueryError,
  PageArgs,
  PAGE_SIZE,
  toConnection,
  userError,
  type Bus,
  type SubgraphContext,
} from '@fleetgraph/kit';
import { isCloudError } from '@fleetgraph/clouds';
import { CloudType, getProfile, listProfileVersions } from '@fleetgraph/schema';
import semver from 'semver';
import { Arg, Args, ArgsType, Ctx, Field, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ulid } from 'ulid';
import type { ClusterRepository } from '../adapters/cluster.repo.js';
import type { ClusterSecretsRepository } from '../adapters/cluster-secrets.repo.js';
import {
  issueKubeconfig,
  KUBECONFIG_API_KEY_MAX_MINUTES,
  KUBECONFIG_DEFAULT_MINUTES,
  KUBECONFIG_MAX_MINUTES,
} from '../bootstrap/kubeconfig.js';
import { StaleWriteError } from '../domain/errors.js';
import type { ProviderRegistry } from '../adapters/providers.js';
import {
  LIMITS,
  validateClusterName,
  validatePool,
  validatePools,
  type ClusterSpec,
  type CloudOffer,
  type NodePool as Pool,
  type Problem,
} from '../domain/cluster.js';
import { CreateClusterInput, NodePoolInput, UpdateNodePoolInput } from './cluster.input.js';
import {
  Cluster,
  ClusterConnection,
  ClusterEventConnection,
  ClusterPayload,
  ClusterProfile,
  InstanceType,
  Kubeconfig,
  ProxyRequirement,
  Region,
} from './cluster.type.js';
import type { ProxySettings } from '../domain/proxy.js';
import { proxyRequirements } from '../domain/proxy.js';

@ArgsType()
class ClustersArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: 'One project; without it, every project the caller may read.' })
  projectId?: string | null;
}

@ArgsType()
class EventsArgs {
  @Field(() => Int, { nullable: true, description: 'Page size, 1 to 1000. Defaults to 50.' })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'A cursor: events after it.' })
  after?: string | null;
}

/** An event cursor: a JetStream stream sequence. */
const CURSOR = /^(0|[1-9]\d{0,15})$/;

const problemsToErrors = (problems: Problem[]) => problems.map((p) => userError(p.code, p.message, p.field));
const payloadError = (code: string, message: string, field?: string[]): ClusterPayload => ({
  cluster: null,
  userErrors: [userError(code, message, field)],
});

function pageSize(
  first: number | null | undefined,
  max: number = PAGE_SIZE.max,
  fallback: number = PAGE_SIZE.default,
): number {
  if (first == null) return fallback;
  if (!Number.isInteger(first) || first < 1 || first > max)
    throw graphqlError('BAD_USER_INPUT', `first must be between 1 and ${max}`);
  return first;
}

export interface ClusterResolverDeps {
  clusters: ClusterRepository;
  /** Each cluster's PKI (its CA signs users' kubeconfigs). */
  secrets: ClusterSecretsRepository;
  providers: ProviderRegistry;
  bus: Bus;
  proxy: ProxySettings;
  /** Wakes the orchestrator after a change. */
  poke: () => void;
}

@Resolver(() => Cluster)
export class ClusterResolver {
  constructor(private readonly deps: ClusterResolverDeps) {}

  /** A spec and its status as the GraphQL Cluster. */
  async toGraphQL(spec: ClusterSpec): Promise<Cluster> {
    const status = await this.deps.clusters.getStatus(spec.id);
    return Object.assign(new Cluster(), {
      ...spec,
      profile: { id: spec.profileId },
      phase: status?.phase ?? 'PENDING',
      observedGeneration: status?.observedGeneration ?? 0,
      conditions: (status?.conditions ?? []).map((c) => ({
        ...c,
        lastTransitionTime: new Date(c.lastTransitionTime),
        nextAttemptAt: c.nextAttemptAt ? new Date(c.nextAttemptAt) : null,
      })),
      createdAt: new Date(spec.createdAt),
    });
  }

  @Query(() => ClusterConnection, {
    description:
      'Clusters, newest first: in one project, or in every project the caller may read ' +
      '(a tenant admin: the whole tenant).',
  })
  async clusters(
    @Args() { projectId, first, after }: ClustersArgs,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ClusterConnection> {
    try {
      const page = await this.deps.clusters.list(identity, { projectId, first: pageSize(first), after });
      return toConnection(page, await Promise.all(page.nodes.map((s) => this.toGraphQL(s))));
    } catch (error) {
      if (error instanceof InvalidQueryError)
        throw graphqlError('BAD_USER_INPUT', 'after is not a cursor of this list');
      throw error;
    }
  }

  @Query(() => Cluster, {
    nullable: true,
    description: 'A cluster by id; null when unknown or not visible to the caller.',
  })
  async cluster(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<Cluster | null> {
    const spec = await this.deps.clusters.get(identity, id);
    return spec && this.toGraphQL(spec);
  }

  @Query(() => [Region], { description: 'The regions of a cloud, with their zones.' })
  async regions(@Arg('cloud', () => CloudType) cloud: CloudType): Promise<Region[]> {
    return this.offered(() => this.deps.providers.regions(cloud));
  }

  @Query(() => [InstanceType], { description: 'The machine sizes a cloud offers in a region.' })
  async instanceTypes(
    @Arg('cloud', () => CloudType) cloud: CloudType,
    @Arg('region') region: string,
  ): Promise<InstanceType[]> {
    const regions = await this.offered(() => this.deps.providers.regions(cloud));
    if (!regions.some((r) => r.name === region))
      throw graphqlError('BAD_USER_INPUT', `${cloud} has no region ${region.slice(0, 64)}`);
    return this.offered(() => this.deps.providers.instanceTypes(cloud, region));
  }

  @Query(() => [ProxyRequirement], { description: 'The domains and ports the platform and its clusters must reach.' })
  proxyRequirements(): ProxyRequirement[] {
    return proxyRequirements(this.deps.proxy);
  }

  @FieldResolver(() => ClusterEventConnection, { description: 'Events, oldest first; the last 1000 are retained.' })
  async events(@Root() cluster: Cluster, @Args() { first, after }: EventsArgs): Promise<ClusterEventConnection> {
    if (after != null && !CURSOR.test(after)) throw graphqlError('BAD_USER_INPUT', 'after is not an event cursor');
    const page = await this.deps.clusters.listEvents(cluster.id, {
      first: pageSize(first, 1000, 50),
      after: after == null ? null : Number(after),
    });
    return toConnection(
      page,
      page.nodes.map((e) => ({ ...e, cursor: e.cursor!, time: new Date(e.time) })),
    );
  }

  @FieldResolver(() => Kubeconfig, {
    nullable: true,
    description:
      "A kubeconfig for the caller, valid ttlMinutes (at most 1440; an API key's at most 60, since a certificate " +
      "cannot be revoked): for the project's admins and editors, " +
      'null for others (a tenant admin gets none by that right). ' +
      'Issuing one is recorded as an event of the cluster. SERVICE_UNAVAILABLE until the API server has an address.',
  })
  async kubeconfig(
    @Root() cluster: Cluster,
    @Ctx() { identity }: SubgraphContext,
    @Arg('ttlMinutes', () => Int, { defaultValue: KUBECONFIG_DEFAULT_MINUTES }) ttlMinutes: number,
  ): Promise<Kubeconfig | null> {
    const role = identity.can('admin', cluster.projectId)
      ? 'admin'
      : identity.can('editor', cluster.projectId)
        ? 'editor'
        : null;
    if (!role) return null;
    if (!Number.isInteger(ttlMinutes) || ttlMinutes < 1 || ttlMinutes > KUBECONFIG_MAX_MINUTES) {
      throw graphqlError(
        'BAD_USER_INPUT',
        `ttlMinutes must be between 1 and ${KUBECONFIG_MAX_MINUTES}, not ${ttlMinutes}`,
      );
    }
    // A certificate cannot be revoked: an API key's outlives the key's revocation by an hour at most.
    const minutes = identity.userId.startsWith(API_KEY_SUBJECT_PREFIX)
      ? Math.min(ttlMinutes, KUBECONFIG_API_KEY_MAX_MINUTES)
      : ttlMinutes;
    const status = await this.deps.clusters.getStatus(cluster.id);
    if (!status?.apiEndpoint || status.phase === 'DELETED' || status.phase === 'DELETING')
      throw graphqlError('SERVICE_UNAVAILABLE', 'the cluster has no API server address yet (or any more)');
    const pki = await this.deps.secrets.pki(cluster.id, cluster.tenantId);
    const issued = await issueKubeconfig(pki.ca, {
      clusterName: cluster.name,
      apiEndpoint: status.apiEndpoint,
      user: identity.userId,
      role,
      validityMinutes: minutes,
    });
    await this.deps.clusters.record({
      tenantId: cluster.tenantId,
      clusterId: cluster.id,
      time: new Date().toISOString(),
      severity: 'NORMAL',
      reason: 'KubeconfigIssued',
      message: `kubeconfig issued to ${identity.userId} (${role}), valid until ${issued.expiresAt.toISOString()}`,
      object: `cluster/${cluster.name}`,
    });
    return { clusterId: cluster.id, kubeconfig: issued.kubeconfig, expiresAt: issued.expiresAt };
  }

  @FieldResolver(() => [ClusterProfile], { description: 'Newer versions of its profile, newest first.' })
  async availableUpdates(@Root() cluster: Cluster): Promise<ClusterProfile[]> {
    try {
      const current = await this.deps.bus.request(getProfile, {
        tenantId: cluster.tenantId,
        projectId: cluster.projectId,
        id: cluster.profile.id,
      });
      const { profiles } = await this.deps.bus.request(listProfileVersions, {
        tenantId: cluster.tenantId,
        projectId: cluster.projectId,
        name: current.name,
      });
      return profiles.filter((p) => semver.gt(p.version, current.version)).map((p) => ({ id: p.id }));
    } catch (error) {
      if (error instanceof BusError && error.code === 'NOT_FOUND') return [];
      throw graphqlError('SERVICE_UNAVAILABLE', 'the profiles service did not answer', { cause: error });
    }
  }

  @Mutation(() => ClusterPayload, {
    description: 'Creates a cluster (editor or admin of the project); the orchestrator provisions it.',
  })
  async createCluster(
    @Arg('input', () => CreateClusterInput) input: CreateClusterInput,
    @Ctx() { identity }: SubgraphContext,
  ): Promise<ClusterPayload> {
    if (!identity.can('editor', input.projectId))
      throw graphqlError('FORBIDDEN', 'creating a cluster needs the editor or admin role in the project');
    const problems: Problem[] = [...validateClusterName(input.name)];
    const offer = await this.offer(input.cloud.type, input.cloud.region);
    if (!offer)
      return payloadError('INVALID_REGION', `${input.cloud.type} has no region ${input.cloud.region.slice(0, 64)}`, [
        'input',
        'cloud',
        'region',
      ]);
    const pools = input.nodePools.map((p) => toPool(p, offer));
    problems.push(...validatePools(pools, offer));
    try {
      const profile = await this.deps.bus.request(getProfile, {
        tenantId: identity.tenantId,
        projectId: input.projectId,
        id: input.profileId,
      });
      if (profile.cloud && profile.cloud !== input.cloud.type) {
        problems.push({
          field: ['input', 'profileId'],
          code: 'PROFILE_CLOUD_MISMATCH',
          message: `the profile is made for ${profile.cloud}, not ${input.cloud.type}`,
        });
      }
    } catch (error) {
      if (!(error instanceof BusError && error.code === 'NOT_FOUND'))
        throw graphqlError('SERVICE_UNAVAILABLE', 'the profiles service did not answer', { cause: error });
      problems.push({
        field: ['input', 'profileId'],
        code: 'PROFILE_NOT_FOUND',
        message: 'no such profile in this project',
      });
    }
    if (problems.length) return { cluster: null, userErrors: problemsToErrors(problems) };

    const now = new Date();
    const spec: ClusterSpec = {
      id: `cls_${ulid()}`,
      tenantId: identity.tenantId,
      projectId: input.projectId,
      name: input.name,
      profileId: input.profileId,
      cloud: { type: input.cloud.type, region: input.cloud.region, credentialRef: input.cloud.credentialRef ?? null },
      nodePools: pools,
      generation: 1,
      deletionRequested: false,
      createdAt: now.toISOString(),
    };
    const created = await this.deps.clusters.create(spec, now, [
      await this.deps.secrets.create(spec.id, spec.tenantId),
    ]);
    if (!created)
      return payloadError('NAME_TAKEN', `a cluster named ${input.name} exists in this project`, ['input', 'name']);
    this.deps.poke();
    return { cluster: await this.toGraphQL(created), userErrors: [] };
  }

  @Mutation(() => ClusterPayload, { description: 'Adds a node pool (editor or admin).' })
  async addNodePool(
    @Arg('clusterId', () => ID) clusterId: string,
    @Arg('pool', () => NodePoolInput) poolInput: NodePoolInput,
    @Ctx() ctx: SubgraphContext,
  ): Promise<ClusterPayload> {
    return this.change(ctx, clusterId, 'editor', null, async (spec) => {
      const offer = await this.offer(spec.cloud.type, spec.cloud.region);
      const pool = toPool(poolInput, offer!);
      const problems = validatePool(pool, offer!, ['pool']);
      if (pool.role === 'CONTROL_PLANE')
        problems.push({
          field: ['pool', 'role'],
          code: 'INVALID_CONTROL_PLANE',
          message: 'a cluster has exactly one control-plane pool',
        });
      if (spec.nodePools.some((p) => p.name === pool.name))
        problems.push({ field: ['pool', 'name'], code: 'DUPLICATE_POOL', message: `pool ${pool.name} exists already` });
      if (spec.nodePools.length >= LIMITS.pools)
        problems.push({
          field: ['pool'],
          code: 'TOO_MANY_POOLS',
          message: `a cluster has at most ${LIMITS.pools} pools`,
        });
      if (problems.length) return problems;
      return (current) =>
        current.nodePools.some((p) => p.name === pool.name)
          ? `pool ${pool.name} exists already`
          : { ...current, nodePools: [...current.nodePools, pool] };
    });
  }

  @Mutation(() => ClusterPayload, {
    description: 'Scales, resizes or adds zones to a node pool (editor or admin); nodes are rolled to it.',
  })
  async updateNodePool(
    @Arg('input', () => UpdateNodePoolInput) input: UpdateNodePoolInput,
    @Ctx() ctx: SubgraphContext,
  ): Promise<ClusterPayload> {
    return this.change(ctx, input.clusterId, 'editor', input.expectedGeneration ?? null, async (spec) => {
      const existing = spec.nodePools.find((p) => p.name === input.name);
      if (!existing)
        return [
          {
            field: ['input', 'name'],
            code: 'POOL_NOT_FOUND',
            message: `the cluster has no pool ${input.name.slice(0, 64)}`,
          },
        ];
      const offer = await this.offer(spec.cloud.type, spec.cloud.region);
      const apply = (pool: Pool): Pool => ({
        ...pool,
        count: input.count ?? pool.count,
        instanceType: input.instanceType ?? pool.instanceType,
        availabilityZones: input.availabilityZones ?? pool.availabilityZones,
      });
      const problems = validatePool(apply(existing), offer!, ['input']);
      if (problems.length) return problems;
      return (current) => {
        const pool = current.nodePools.find((p) => p.name === input.name);
        if (!pool) return `the cluster has no pool ${input.name}`;
        return { ...current, nodePools: current.nodePools.map((p) => (p === pool ? apply(p) : p)) };
      };
    });
  }

  @Mutation(() => ClusterPayload, {
    description:
      'Removes a worker pool (editor or admin): its machines are deleted. The control-plane pool stays; ' +
      'scale a pool to 0 to keep it without machines.',
  })
  async removeNodePool(
    @Arg('clusterId', () => ID) clusterId: string,
    @Arg('name', () => String) name: string,
    @Arg('expectedGeneration', () => Int, { nullable: true }) expectedGeneration: number | null,
    @Ctx() ctx: SubgraphContext,
  ): Promise<ClusterPayload> {
    return this.change(ctx, clusterId, 'editor', expectedGeneration ?? null, async (spec) => {
      const pool = spec.nodePools.find((p) => p.name === name);
      if (!pool)
        return [{ field: ['name'], code: 'POOL_NOT_FOUND', message: `the cluster has no pool ${name.slice(0, 64)}` }];
      if (pool.role === 'CONTROL_PLANE')
        return [
          {
            field: ['name'],
            code: 'INVALID_CONTROL_PLANE',
            message: 'a cluster has exactly one control-plane pool, which cannot be removed',
          },
        ];
      return (current) =>
        current.nodePools.some((p) => p.name === name)
          ? { ...current, nodePools: current.nodePools.filter((p) => p.name !== name) }
          : `the cluster has no pool ${name}`;
    });
  }

  @Mutation(() => ClusterPayload, {
    description: 'Moves the cluster to another version of its profile (admin), rolled out node by node.',
  })
  async applyClusterUpdate(
    @Arg('clusterId', () => ID) clusterId: string,
    @Arg('profileId', () => ID) profileId: string,
    @Ctx() ctx: SubgraphContext,
  ): Promise<ClusterPayload> {
    return this.change(ctx, clusterId, 'admin', null, async (spec) => {
      if (spec.profileId === profileId)
        return [{ field: ['profileId'], code: 'ALREADY_APPLIED', message: 'the cluster uses this profile already' }];
      try {
        const [current, next] = await Promise.all([
          this.deps.bus.request(getProfile, { tenantId: spec.tenantId, projectId: spec.projectId, id: spec.profileId }),
          this.deps.bus.request(getProfile, { tenantId: spec.tenantId, projectId: spec.projectId, id: profileId }),
        ]);
        if (next.name !== current.name)
          return [
            {
              field: ['profileId'],
              code: 'NOT_AN_UPDATE',
              message: `profile ${next.name} is not a version of ${current.name}`,
            },
          ];
        if (next.cloud && next.cloud !== spec.cloud.type)
          return [
            { field: ['profileId'], code: 'PROFILE_CLOUD_MISMATCH', message: `the profile is made for ${next.cloud}` },
          ];
      } catch (error) {
        if (error instanceof BusError && error.code === 'NOT_FOUND')
          return [
            { field: ['profileId'], code: 'PROFILE_NOT_FOUND', message: "no such profile in the cluster's project" },
          ];
        throw graphqlError('SERVICE_UNAVAILABLE', 'the profiles service did not answer', { cause: error });
      }
      return (current) => ({ ...current, profileId });
    });
  }

  @Mutation(() => ClusterPayload, {
    description: 'Deletes a cluster (admin): every machine and network resource, then it is DELETED.',
  })
  async deleteCluster(@Arg('id', () => ID) id: string, @Ctx() ctx: SubgraphContext): Promise<ClusterPayload> {
    return this.change(ctx, id, 'admin', null, async () => (current) => ({ ...current, deletionRequested: true }), {
      allowDeleting: true,
    });
  }

  /**
   * The common path of every change: find the cluster as the caller sees it (unknown and
   * foreign alike), check the role, validate, then apply the change with compare-and-set.
   */
  private async change(
    { identity }: SubgraphContext,
    clusterId: string,
    role: 'editor' | 'admin',
    expectedGeneration: number | null,
    prepare: (spec: ClusterSpec) => Promise<Problem[] | ((spec: ClusterSpec) => ClusterSpec | string)>,
    options: { allowDeleting?: boolean } = {},
  ): Promise<ClusterPayload> {
    const spec = await this.deps.clusters.get(identity, clusterId);
    if (!spec) return payloadError('NOT_FOUND', 'no such cluster', ['clusterId']);
    if (!identity.can(role, spec.projectId))
      throw graphqlError('FORBIDDEN', `this change needs the ${role} role in the cluster's project`);
    if (spec.deletionRequested) {
      if (options.allowDeleting) return { cluster: await this.toGraphQL(spec), userErrors: [] };
      return payloadError('CLUSTER_DELETING', 'the cluster is being deleted');
    }
    const prepared = await prepare(spec);
    if (Array.isArray(prepared)) return { cluster: null, userErrors: problemsToErrors(prepared) };
    try {
      const updated = await this.deps.clusters.updateSpec(
        spec.id,
        (current) =>
          current.deletionRequested && !options.allowDeleting ? 'the cluster is being deleted' : prepared(current),
        {
          expectedGeneration,
          now: new Date(),
        },
      );
      if (typeof updated === 'string') return payloadError('CONFLICT', updated);
      this.deps.poke();
      return { cluster: await this.toGraphQL(updated), userErrors: [] };
    } catch (error) {
      if (error instanceof StaleWriteError)
        return payloadError(
          expectedGeneration != null ? 'STALE_GENERATION' : 'CONFLICT',
          error.message,
          expectedGeneration != null ? ['input', 'expectedGeneration'] : undefined,
        );
      throw error;
    }
  }

  /** Regions and instance types of a cloud region, or null when the region does not exist. */
  private async offer(cloud: CloudType, region: string): Promise<CloudOffer | null> {
    const regions = await this.offered(() => this.deps.providers.regions(cloud));
    const match = regions.find((r) => r.name === region);
    if (!match) return null;
    const types = await this.offered(() => this.deps.providers.instanceTypes(cloud, region));
    return { zones: match.zones, instanceTypes: new Set(types.map((t) => t.name)) };
  }

  private async offered<T>(load: () => Promise<T>): Promise<T> {
    try {
      return await load();
    } catch (error) {
      const detail = isCloudError(error) ? `${error.code}: ${error.message}` : 'unreachable';
      throw graphqlError('SERVICE_UNAVAILABLE', `the cloud could not be asked what it offers (${detail})`, {
        cause: error,
      });
    }
  }
}

/** A pool from input, with every zone of the region when none are given. */
function toPool(input: NodePoolInput, offer: CloudOffer): Pool {
  return {
    name: input.name,
    role: input.role,
    count: input.count,
    instanceType: input.instanceType,
    availabilityZones:
      input.availabilityZones ??
      (input.role === 'CONTROL_PLANE'
        ? offer.zones.slice(0, Math.min(offer.zones.length, input.count))
        : [...offer.zones]),
  };
}
