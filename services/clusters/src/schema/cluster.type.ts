import { Node, PageInfo, UserError } from '@fleetgraph/kit';
import { CloudType, ClusterPhase, NodeRole } from '@fleetgraph/schema';
import { Directive, Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export const ConditionStatus = { TRUE: 'TRUE', FALSE: 'FALSE', UNKNOWN: 'UNKNOWN' } as const;
export type ConditionStatus = (typeof ConditionStatus)[keyof typeof ConditionStatus];
export const EventSeverity = { NORMAL: 'NORMAL', WARNING: 'WARNING' } as const;
export type EventSeverity = (typeof EventSeverity)[keyof typeof EventSeverity];

registerEnumType(CloudType, { name: 'CloudType', description: 'A cloud Fleetgraph provisions clusters on.' });
registerEnumType(ClusterPhase, { name: 'ClusterPhase', description: 'Where a cluster is in its life.' });
registerEnumType(NodeRole, { name: 'NodeRole', description: 'What a node does in its cluster.' });
registerEnumType(ConditionStatus, { name: 'ConditionStatus', description: 'Whether a condition holds.' });
registerEnumType(EventSeverity, { name: 'EventSeverity', description: 'How much an event matters.' });

/**
 * The profile a cluster uses: an entity of the profiles subgraph, referenced here by id (and a
 * `Node` that `Query.node` answers with its id, see node.resolver.ts).
 */
@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: 'A versioned cluster profile: the packs a cluster is made of.' })
export class ClusterProfile extends Node {}

@ObjectType({ description: 'A group of nodes of one role and instance type.' })
export class NodePool {
  @Field({ description: 'Pool name, unique in the cluster.' })
  name!: string;

  @Field(() => NodeRole, { description: 'Control-plane or worker nodes.' })
  role!: NodeRole;

  @Field(() => Int, { description: 'Desired number of nodes.' })
  count!: number;

  @Field({ description: 'Machine size, e.g. m5.large.' })
  instanceType!: string;

  @Field(() => [String], { description: 'Zones the nodes are spread over.' })
  availabilityZones!: string[];
}

@ObjectType({ description: 'Where a cluster runs.' })
export class CloudConfig {
  @Field(() => CloudType, { description: 'The cloud.' })
  type!: CloudType;

  @Field({ description: 'The region, e.g. us-east-1 or local-1.' })
  region!: string;

  @Field(() => String, { nullable: true, description: 'Name of stored cloud credentials; never the secret itself.' })
  credentialRef!: string | null;
}

@ObjectType({ description: 'A lifecycle milestone: "Creating Infrastructure", "Adding Worker Nodes", ...' })
export class ClusterCondition {
  @Field({ description: 'The milestone.' })
  type!: string;

  @Field(() => ConditionStatus, { description: 'TRUE once reached.' })
  status!: ConditionStatus;

  @Field({ description: 'The milestone the orchestrator is working on now.' })
  active!: boolean;

  @Field({ description: 'The last attempt failed; reconciliation keeps retrying.' })
  failed!: boolean;

  @Field(() => String, { nullable: true, description: 'Short machine-readable reason, e.g. WorkersFailed.' })
  reason!: string | null;

  @Field(() => String, { nullable: true, description: "The cloud's own error text, verbatim, or progress." })
  message!: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      'Classified failure: QUOTA_EXCEEDED, RATE_LIMITED, UNAUTHORIZED, RESOURCES_DEPLETED, ' +
      'INVALID_CONFIGURATION, TRANSIENT.',
  })
  code!: string | null;

  @Field(() => Date, { description: 'When the status last changed.' })
  lastTransitionTime!: Date;

  @Field(() => Int, { description: 'Failed attempts since the milestone last succeeded.' })
  attempts!: number;

  @Field(() => Date, {
    nullable: true,
    description: 'For a failed milestone: when the orchestrator tries again (null otherwise).',
  })
  nextAttemptAt?: Date | null;
}

@ObjectType({
  description:
    'A cluster as a fleet overview shows it: where it is in its life, and where it runs (see Subscription.fleet).',
})
export class FleetCluster {
  @Field(() => ID, { description: 'The cluster.' })
  id!: string;

  @Field(() => ID, { description: 'Its project.' })
  projectId!: string;

  @Field({ description: 'Its name, unique in the project.' })
  name!: string;

  @Field(() => ClusterPhase, { description: 'Its phase; DELETED once it is gone (it is then no longer sent).' })
  phase!: ClusterPhase;

  @Field(() => CloudType, { description: 'The cloud it runs on.' })
  cloud!: CloudType;

  @Field({ description: 'The region it runs in.' })
  region!: string;

  @Field(() => Int, { description: 'Nodes of every pool, as defined.' })
  nodeCount!: number;

  @Field(() => Int, { description: 'The generation of its definition.' })
  generation!: number;

  @Field(() => Int, { description: 'The generation it last converged to.' })
  observedGeneration!: number;

  @Field(() => ClusterCondition, {
    nullable: true,
    description: 'The failed milestone, else the one being worked on; null when every milestone is reached.',
  })
  condition!: ClusterCondition | null;

  @Field(() => Date, { description: 'When this state was recorded.' })
  updatedAt!: Date;

  @Field({ description: 'Opaque and ordered: the position of this state in the fleet stream.' })
  cursor!: string;
}

@ObjectType({ description: 'Something that happened to a cluster.' })
export class ClusterEvent {
  @Field({ description: 'Opaque and ordered; pass to clusterEvents(after:) to resume.' })
  cursor!: string;

  @Field(() => ID, { description: 'The cluster.' })
  clusterId!: string;

  @Field(() => Date, { description: 'When it happened.' })
  time!: Date;

  @Field(() => EventSeverity, { description: 'NORMAL or WARNING.' })
  severity!: EventSeverity;

  @Field({ description: 'Short machine-readable reason, e.g. MachineCreated.' })
  reason!: string;

  @Field({ description: 'What happened, for a person.' })
  message!: string;

  @Field(() => String, { nullable: true, description: 'What it is about, e.g. "machine/workers-abc12".' })
  object!: string | null;
}

@ObjectType({ description: 'An event of a page and its cursor.' })
export class ClusterEventEdge {
  @Field({ description: 'Opaque; pass it as `after` to continue right after this node.' })
  cursor!: string;

  @Field(() => ClusterEvent, { description: 'The event.' })
  node!: ClusterEvent;
}

@ObjectType({ description: 'A page of cluster events, oldest first.' })
export class ClusterEventConnection {
  @Field(() => [ClusterEvent], { description: 'The events of this page.' })
  nodes!: ClusterEvent[];

  @Field(() => [ClusterEventEdge], { description: 'The events of this page, each with its cursor (Relay).' })
  edges!: ClusterEventEdge[];

  @Field(() => PageInfo, { description: 'Where this page ends.' })
  pageInfo!: PageInfo;
}

@Directive('@key(fields: "id")')
@ObjectType({
  implements: Node,
  description: 'A Kubernetes cluster, reconciled towards its definition for its whole life.',
})
export class Cluster extends Node {
  @Field(() => ID, { description: 'The project it belongs to.' })
  projectId!: string;

  @Field({ description: 'Name, unique in the project.' })
  name!: string;

  @Field(() => ClusterProfile, { description: 'The profile it is made from.' })
  profile!: ClusterProfile;

  @Field(() => CloudConfig, { description: 'Where it runs.' })
  cloud!: CloudConfig;

  @Field(() => [NodePool], { description: 'Its node pools.' })
  nodePools!: NodePool[];

  @Field(() => ClusterPhase, { description: 'Where it is in its life.' })
  phase!: ClusterPhase;

  @Field(() => [ClusterCondition], { description: 'Lifecycle milestones, in order.' })
  conditions!: ClusterCondition[];

  @Field(() => Int, { description: 'Increments on every change of the definition.' })
  generation!: number;

  @Field(() => Int, { description: 'The generation the cluster last converged to.' })
  observedGeneration!: number;

  @Field(() => Date, { description: 'When it was created.' })
  createdAt!: Date;

  /** Owning tenant; not exposed. */
  tenantId!: string;
}

@ObjectType({ description: 'A cluster of a page and its cursor.' })
export class ClusterEdge {
  @Field({ description: 'Opaque; pass it as `after` to continue right after this node.' })
  cursor!: string;

  @Field(() => Cluster, { description: 'The cluster.' })
  node!: Cluster;
}

@ObjectType({ description: 'A page of clusters.' })
export class ClusterConnection {
  @Field(() => [Cluster], { description: 'The clusters of this page.' })
  nodes!: Cluster[];

  @Field(() => [ClusterEdge], { description: 'The clusters of this page, each with its cursor (Relay).' })
  edges!: ClusterEdge[];

  @Field(() => PageInfo, { description: 'Where this page ends.' })
  pageInfo!: PageInfo;
}

@ObjectType({ description: 'The outcome of a cluster mutation.' })
export class ClusterPayload {
  @Field(() => Cluster, { nullable: true, description: 'The cluster, when the mutation succeeded.' })
  cluster!: Cluster | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'A region of a cloud and its availability zones.' })
export class Region {
  @Field({ description: 'Region name, e.g. local-1.' })
  name!: string;

  @Field(() => [String], { description: 'Its zones, e.g. local-1a.' })
  zones!: string[];
}

@ObjectType({ description: 'A machine size a cloud offers.' })
export class InstanceType {
  @Field({ description: 'Name, e.g. m5.large.' })
  name!: string;

  @Field(() => Int, { description: 'Virtual CPUs.' })
  vcpus!: number;

  @Field(() => Int, { description: 'Memory in MiB.' })
  memoryMiB!: number;
}

@ObjectType({ description: 'A domain and port the platform or its clusters must reach through a proxy.' })
export class ProxyRequirement {
  @Field({ description: 'Domain name.' })
  domain!: string;

  @Field(() => Int, { description: 'TCP port.' })
  port!: number;

  @Field(() => String, { nullable: true, description: 'What it is needed for.' })
  description!: string | null;
}

@ObjectType({ description: "A cluster's phase and conditions after a change." })
export class ConditionsUpdate {
  @Field(() => ID, { description: 'The cluster.' })
  clusterId!: string;

  @Field(() => ClusterPhase, { description: 'Its phase.' })
  phase!: ClusterPhase;

  @Field(() => [ClusterCondition], { description: 'Its conditions, in milestone order.' })
  conditions!: ClusterCondition[];
}

@ObjectType({
  description:
    "A kubeconfig with a client certificate signed by the cluster's CA, for the project's admins and editors.",
})
export class Kubeconfig {
  @Field(() => ID)
  clusterId!: string;

  @Field({
    description:
      'YAML, ready for kubectl: the user in the certificate CN, the project role in O (group fleetgraph:<role>).',
  })
  kubeconfig!: string;

  @Field(() => Date, { description: 'When the certificate stops being accepted.' })
  expiresAt!: Date;
}
