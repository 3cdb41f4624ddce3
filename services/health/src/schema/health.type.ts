import { NodeRole } from '@fleetgraph/schema';
import { Directive, Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { HealthStatus } from '../domain/health.js';
import { UsageScope } from '../domain/usage.js';

export const ConditionStatus = { TRUE: 'TRUE', FALSE: 'FALSE', UNKNOWN: 'UNKNOWN' } as const;
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];
export const ServiceType = { LOAD_BALANCER: 'LOAD_BALANCER', NODE_PORT: 'NODE_PORT' } as const;
export type ServiceType = (typeof ServiceType)[keyof typeof ServiceType];

registerEnumType(HealthStatus, {
  name: 'HealthStatus',
  description:
    'How a cluster is: HEALTHY; PROGRESSING (a check fails, for less than its threshold); UNHEALTHY (a check failed for longer, or heartbeats stopped); UNKNOWN (nothing reported yet).',
});
registerEnumType(UsageScope, {
  name: 'UsageScope',
  description: 'Which nodes usage covers: the worker nodes, or all of them.',
});
registerEnumType(ServiceType, { name: 'ServiceType', description: 'How a service is exposed outside the cluster.' });
// Shared with the clusters subgraph: same values, same descriptions.
registerEnumType(NodeRole, { name: 'NodeRole', description: 'What a node does in its cluster.' });
registerEnumType(ConditionStatus, { name: 'ConditionStatus', description: 'Whether a condition holds.' });

@ObjectType({ description: 'Why a cluster is not HEALTHY: which factor, and why.' })
export class HealthReason {
  @Field({ description: 'HEARTBEAT, NODE_CONDITION or METRICS.' })
  factor!: string;

  @Field({ description: 'What fails, for a person.' })
  message!: string;

  @Field(() => Date, { nullable: true, description: 'Since when it has been failing.' })
  since!: Date | null;

  @Field({ description: 'Reported before heartbeats stopped: the last known state, not the current one.' })
  stale!: boolean;
}

@ObjectType({
  description:
    "A cluster's health and its worker nodes' usage as a fleet overview shows them (see Subscription.fleetHealth).",
})
export class FleetHealth {
  @Field(() => ID, { description: 'The cluster.' })
  clusterId!: string;

  @Field(() => ID, { description: 'Its project.' })
  projectId!: string;

  @Field(() => HealthStatus, { description: 'Its overall health.' })
  status!: HealthStatus;

  @Field({ description: 'The node conditions and usage behind it were reported before heartbeats stopped.' })
  stale!: boolean;

  @Field(() => Float, {
    nullable: true,
    description: "Share of the worker nodes' CPU in use, 0 to 1; null before a report.",
  })
  cpuUsage!: number | null;

  @Field(() => Float, {
    nullable: true,
    description: "Share of the worker nodes' memory in use, 0 to 1; null before a report.",
  })
  memoryUsage!: number | null;

  @Field(() => Int, { description: 'Worker nodes reported.' })
  nodes!: number;

  @Field(() => Date, { nullable: true, description: 'When the nodes were last observed.' })
  observedAt!: Date | null;

  @Field(() => Date, { description: 'When the status last changed.' })
  changedAt!: Date;

  @Field({ description: 'Opaque and ordered: the position of this state in the fleet stream.' })
  cursor!: string;
}

@ObjectType({ description: "A cluster's health, from its agent's heartbeats, its nodes' conditions and its usage." })
export class ClusterHealth {
  @Field(() => HealthStatus, { description: 'The worst of the checks.' })
  status!: HealthStatus;

  @Field(() => Date, { nullable: true, description: 'When the agent last reported.' })
  lastHeartbeatAt!: Date | null;

  @Field(() => [HealthReason], { description: 'Every failing check; empty when HEALTHY.' })
  reasons!: HealthReason[];

  @Field({ description: 'Heartbeats stopped: node conditions and metrics are as last reported, not current.' })
  stale!: boolean;

  @Field(() => Date, { nullable: true, description: 'When the status or its reasons last changed.' })
  changedAt!: Date | null;
}

@ObjectType({ description: 'Usage at one time, for charts.' })
export class UsageSample {
  @Field(() => Date, { description: 'When it was measured.' })
  time!: Date;

  @Field(() => Float, { description: 'CPU cores used.' })
  cpuCores!: number;

  @Field(() => Float, { description: 'Memory used (working set), in bytes.' })
  memoryBytes!: number;
}

@ObjectType({ description: 'CPU, memory and disk of a set of nodes: what they have, use and have been requested.' })
export class ClusterUsage {
  @Field(() => UsageScope, { description: 'Which nodes it covers.' })
  scope!: UsageScope;

  @Field(() => Float, { description: 'CPU cores of the nodes.' })
  coresTotal!: number;

  @Field(() => Float, { description: 'CPU cores in use.' })
  coresUsed!: number;

  @Field(() => Float, { description: 'coresUsed / coresTotal, 0..1.' })
  cpuUsage!: number;

  @Field(() => Float, { description: 'Memory of the nodes, in bytes.' })
  memoryTotalBytes!: number;

  @Field(() => Float, { description: 'Memory in use (working set), in bytes.' })
  memoryUsedBytes!: number;

  @Field(() => Float, { description: 'memoryUsedBytes / memoryTotalBytes, 0..1.' })
  memoryUsage!: number;

  @Field(() => Float, {
    description: "Sum of the CPU requests of the nodes' non-terminated pods, as the scheduler counts them.",
  })
  cpuRequestsCores!: number;

  @Field(() => Float, { description: "Sum of the memory requests of the nodes' non-terminated pods, in bytes." })
  memoryRequestsBytes!: number;

  @Field(() => Float, { nullable: true, description: 'Root filesystem size of the nodes that report it, in bytes.' })
  diskTotalBytes!: number | null;

  @Field(() => Float, { nullable: true, description: 'Root filesystem used, in bytes.' })
  diskUsedBytes!: number | null;

  @Field(() => Float, { nullable: true, description: 'diskUsedBytes / diskTotalBytes, 0..1.' })
  diskUsage!: number | null;

  @Field(() => Int, { description: 'Nodes it covers.' })
  nodes!: number;

  @Field(() => Date, { nullable: true, description: 'When it was observed.' })
  observedAt!: Date | null;

  @Field({ description: 'Heartbeats stopped: this is the last usage reported, not the current one.' })
  stale!: boolean;

  @Field(() => [UsageSample], {
    description: 'Used cores and memory over the requested window, oldest first, for charts.',
  })
  series!: UsageSample[];
}

@ObjectType({
  description:
    'A node condition as its kubelet reports it (Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable, ...).',
})
export class NodeCondition {
  @Field({ description: 'The condition, e.g. MemoryPressure.' })
  type!: string;

  @Field(() => ConditionStatus, { description: 'Whether it holds.' })
  status!: ConditionStatus;

  @Field(() => String, {
    nullable: true,
    description: 'Short machine-readable reason, e.g. KubeletHasInsufficientMemory.',
  })
  reason!: string | null;

  @Field(() => String, { nullable: true, description: 'Why, for a person.' })
  message!: string | null;
}

@ObjectType({ description: 'A node of a cluster, as its agent last reported it.' })
export class ClusterNode {
  @Field({ description: 'Node name.' })
  name!: string;

  @Field(() => NodeRole, { description: 'Control-plane or worker.' })
  role!: NodeRole;

  @Field({ description: 'Its node pool.' })
  pool!: string;

  @Field(() => String, { nullable: true, description: 'Availability zone.' })
  zone!: string | null;

  @Field(() => String, { nullable: true, description: 'Machine size, e.g. m5.large.' })
  instanceType!: string | null;

  @Field(() => [NodeCondition], { description: 'Its conditions.' })
  conditions!: NodeCondition[];

  @Field(() => ClusterUsage, { description: 'Its own usage (scope ALL: this node); the series holds the last sample.' })
  usage!: ClusterUsage;

  @Field(() => Int, { description: 'Non-terminated pods on it.' })
  pods!: number;

  @Field({ description: 'Heartbeats stopped: this is the node as last reported.' })
  stale!: boolean;

  @Field(() => Date, { nullable: true, description: 'When it was observed.' })
  observedAt!: Date | null;
}

@ObjectType({ description: 'A LoadBalancer or NodePort service of a cluster.' })
export class ApplicationService {
  @Field({ description: 'Its namespace.' })
  namespace!: string;

  @Field({ description: 'Its name.' })
  name!: string;

  @Field(() => ServiceType, { description: 'LOAD_BALANCER or NODE_PORT.' })
  type!: ServiceType;

  @Field(() => [String], { description: 'Links a person can open (none while a load balancer is pending).' })
  urls!: string[];
}

@ObjectType({ description: 'Clusters by health status, among those the caller may read.' })
export class HealthSummary {
  @Field(() => Int, { description: 'HEALTHY clusters.' })
  healthy!: number;

  @Field(() => Int, { description: 'PROGRESSING clusters.' })
  progressing!: number;

  @Field(() => Int, { description: 'UNHEALTHY clusters.' })
  unhealthy!: number;

  @Field(() => Int, { description: 'Clusters that have not reported yet.' })
  unknown!: number;
}

/** The clusters subgraph's Cluster, extended here with its health, usage, nodes and services. */
@Directive('@key(fields: "id")')
@ObjectType({ description: 'A Kubernetes cluster, reconciled towards its definition for its whole life.' })
export class Cluster {
  @Field(() => ID, { description: 'The globally unique id.' })
  id!: string;
}
