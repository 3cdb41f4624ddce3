import { graphqlError, GatewayExecutedFieldError, StreamSubscription, type SubgraphContext } from '@fleetgraph/kit';
import { clusterHealthChanged, clusterUsageSampled, fleetHealth } from '@fleetgraph/schema';
import { Arg, Ctx, FieldResolver, ID, Int, Query, Resolver, Root } from 'type-graphql';
import { evaluate, INITIAL_STATE, type Health } from '../domain/health.js';
import { UsageScope, usageFigures, usageOf, type NodeView, type UsageTotals } from '../domain/usage.js';
import type { ClusterView, HealthIngest } from '../ingest/ingest.js';
import type { ClusterRegistry } from '../ingest/registry.js';
import {
  ApplicationService,
  Cluster,
  ClusterHealth,
  ClusterNode,
  ClusterUsage,
  FleetHealth,
  HealthSummary,
  type UsageSample,
} from './health.type.js';

export interface HealthResolverDeps {
  ingest: HealthIngest;
  registry: ClusterRegistry;
  /** How far back samples are kept: the longest usage window. */
  retentionMs: number;
}

const UNKNOWN: Health = evaluate(INITIAL_STATE, 0, {
  heartbeatTimeoutMs: 1,
  lateAfterIntervals: 1,
  nodeConditionThresholdMs: 1,
  metricsWindowMs: 1,
  cpuThreshold: 1,
  memoryThreshold: 1,
  diskThreshold: 1,
});
const date = (ms: number | null) => (ms === null ? null : new Date(ms));

function toUsage(
  scope: UsageScope,
  totals: UsageTotals,
  observedAt: number | null,
  stale: boolean,
  series: UsageSample[],
): ClusterUsage {
  return {
    scope,
    ...usageFigures(totals),
    observedAt: date(observedAt),
    stale,
    series,
  };
}

/**
 * Extends `Cluster` with its health, usage, nodes and services, and declares the health
 * subscriptions (executed by the gateway from JetStream). Reads come from the ingest's memory:
 * the current state of every cluster that reported, and the usage series from the store.
 */
@Resolver(() => Cluster)
export class HealthResolver {
  constructor(private readonly deps: HealthResolverDeps) {}

  #view(cluster: Cluster): ClusterView | null {
    return this.deps.ingest.view(cluster.id);
  }

  @FieldResolver(() => ClusterHealth, { description: 'Its health: UNKNOWN until its agent first reports.' })
  health(@Root() cluster: Cluster): ClusterHealth {
    const view = this.#view(cluster);
    const health = view?.health ?? UNKNOWN;
    return {
      status: health.status,
      lastHeartbeatAt: date(view?.lastHeartbeatAt ?? null),
      reasons: health.reasons.map((r) => ({
        factor: r.factor,
        message: r.message,
        since: date(r.since),
        stale: r.stale,
      })),
      stale: health.stale,
      changedAt: date(view?.changedAt ?? null),
    };
  }

  @FieldResolver(() => ClusterUsage, {
    description:
      'CPU, memory and disk: of the worker nodes by default, of all nodes on request, with a series over the last windowMinutes.',
  })
  async usage(
    @Root() cluster: Cluster,
    // type-graphql registers arguments last first: declared in reverse to print in the contract's order.
    @Arg('windowMinutes', () => Int, {
      nullable: true,
      defaultValue: 60,
      description: 'How far back the series goes, in minutes (at most the retention).',
    })
    windowArg: number | null,
    @Arg('scope', () => UsageScope, {
      nullable: true,
      defaultValue: UsageScope.WORKERS,
      description: 'Worker nodes, or all nodes.',
    })
    scopeArg: UsageScope | null,
  ): Promise<ClusterUsage> {
    const scope = scopeArg ?? UsageScope.WORKERS;
    const windowMinutes = windowArg ?? 60;
    const maxMinutes = Math.floor(this.deps.retentionMs / 60_000);
    if (!Number.isInteger(windowMinutes) || windowMinutes < 1 || windowMinutes > maxMinutes) {
      throw graphqlError('BAD_USER_INPUT', `windowMinutes must be between 1 and ${maxMinutes}`);
    }
    const view = this.#view(cluster);
    const totals = view ? (scope === UsageScope.WORKERS ? view.workers : view.all) : usageOf([], scope);
    const series = view ? await this.deps.ingest.series(cluster.id, scope, windowMinutes * 60_000) : [];
    return toUsage(
      scope,
      totals,
      view?.nodesObservedAt ?? null,
      view?.health.stale ?? false,
      series.map((p) => ({ time: new Date(p.time), cpuCores: p.cpuCores, memoryBytes: p.memoryBytes })),
    );
  }

  @FieldResolver(() => [ClusterNode], { description: 'Its nodes with their conditions and usage, as last reported.' })
  nodes(@Root() cluster: Cluster): ClusterNode[] {
    const view = this.#view(cluster);
    if (!view) return [];
    const stale = view.health.stale;
    return view.nodes.map((node) => toNode(node, view.nodesObservedAt, stale));
  }

  @FieldResolver(() => [ApplicationService], {
    description: 'Its LoadBalancer and NodePort services, with URLs a person can open.',
  })
  services(@Root() cluster: Cluster): ApplicationService[] {
    return (this.#view(cluster)?.services ?? []).map((s) => ({
      namespace: s.namespace,
      name: s.name,
      type: s.type,
      urls: [...s.urls],
    }));
  }

  @Query(() => HealthSummary, {
    description:
      'How many clusters are in each health status: in one project, or in every project the caller may read.',
  })
  healthSummary(
    @Arg('projectId', () => ID, { nullable: true, description: 'One project; without it, every readable one.' })
    projectId: string | null,
    @Ctx() { identity }: SubgraphContext,
  ): HealthSummary {
    const ids: string[] = [];
    for (const cluster of this.deps.registry.ofTenant(identity.tenantId)) {
      if (projectId != null && cluster.projectId !== projectId) continue;
      if (identity.canRead(cluster.projectId)) ids.push(cluster.id);
    }
    const counts = this.deps.ingest.statusCounts(ids);
    return {
      healthy: counts.HEALTHY,
      progressing: counts.PROGRESSING,
      unhealthy: counts.UNHEALTHY,
      unknown: counts.UNKNOWN,
    };
  }
}

function toNode(node: NodeView, observedAt: number | null, stale: boolean): ClusterNode {
  const totals = usageOf([node], UsageScope.ALL);
  const series =
    observedAt !== null && node.cpuUsed !== null
      ? [{ time: new Date(observedAt), cpuCores: node.cpuUsed, memoryBytes: node.memoryUsed ?? 0 }]
      : [];
  return {
    name: node.name,
    role: node.role,
    pool: node.pool,
    zone: node.zone,
    instanceType: node.instanceType,
    conditions: node.conditions.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
    usage: toUsage(UsageScope.ALL, totals, observedAt, stale, series),
    pods: node.pods,
    stale,
    observedAt: date(observedAt),
  };
}

/**
 * The health subscriptions, bound to the JetStream subjects the ingest publishes on; the gateway
 * runs them (authorising each through `cluster(id:)`, or per event by project for `fleetHealth`),
 * this subgraph never does.
 */
@Resolver()
export class HealthSubscriptions {
  @StreamSubscription(
    () => ClusterHealth,
    {
      subject: clusterHealthChanged.subjectTemplate(),
      stream: clusterHealthChanged.stream,
      authorize: 'cluster(id: $clusterId) { id }',
      replay: 'LAST',
    },
    { description: "A cluster's health: the current one first, then every change." },
  )
  clusterHealth(@Arg('clusterId', () => ID) _clusterId: string): ClusterHealth {
    throw new GatewayExecutedFieldError('clusterHealth');
  }

  @StreamSubscription(
    () => ClusterUsage,
    {
      // {scope} is the enum argument's value (default WORKERS): samples of each scope have their subject.
      subject: clusterUsageSampled.subjectTemplate(),
      stream: clusterUsageSampled.stream,
      authorize: 'cluster(id: $clusterId) { id }',
      replay: 'LAST',
    },
    {
      description:
        "A cluster's usage: the last sample first, then one at each report of its agent, over worker nodes or all nodes.",
    },
  )
  clusterMetrics(
    @Arg('scope', () => UsageScope, {
      nullable: true,
      defaultValue: UsageScope.WORKERS,
      description: 'Worker nodes (default) or all nodes.',
    })
    _scope: UsageScope | null,
    @Arg('clusterId', () => ID) _clusterId: string,
  ): ClusterUsage {
    throw new GatewayExecutedFieldError('clusterMetrics');
  }

  @StreamSubscription(
    () => FleetHealth,
    {
      subject: fleetHealth.subjectTemplate({ clusterId: '*' }),
      stream: fleetHealth.stream,
      replay: 'LAST',
      // Each cluster reaches only callers who may read its project (the gateway checks, per event).
      project: 'projectId',
    },
    {
      description:
        "The fleet's health, live: of every cluster the caller may read (in one project, or in every project it may " +
        'read; a tenant admin: the whole tenant) its health and worker usage now, then again after each health ' +
        'change and with new usage (at most every 10 s per cluster). Clusters that never reported are absent.',
    },
  )
  fleetHealth(
    @Arg('projectId', () => ID, { nullable: true, description: 'One project only.' }) _projectId?: string,
  ): FleetHealth {
    throw new GatewayExecutedFieldError('fleetHealth');
  }
}
