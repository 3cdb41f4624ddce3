import { CloudType, NodeRole } from '@fleetgraph/schema';
import { Field, ID, InputType, Int } from 'type-graphql';
// The enums are registered with their GraphQL names there.
import './cluster.type.js';

@InputType({ description: 'A node pool of a new cluster, or one to add.' })
export class NodePoolInput {
  @Field({ description: 'Pool name: lowercase letters, digits and "-".' })
  name!: string;

  @Field(() => NodeRole, { description: 'Control-plane or worker nodes.' })
  role!: NodeRole;

  @Field(() => Int, { description: 'Number of nodes: 1, 3 or 5 for a control plane; 0 or more for workers.' })
  count!: number;

  @Field({ description: 'Machine size, e.g. m5.large.' })
  instanceType!: string;

  @Field(() => [String], {
    nullable: true,
    description: 'Zones to spread the nodes over; defaults to every zone of the region.',
  })
  availabilityZones?: string[] | null;
}

@InputType({ description: 'Where a new cluster runs.' })
export class CloudConfigInput {
  @Field(() => CloudType, { description: 'The cloud.' })
  type!: CloudType;

  @Field({ description: 'The region.' })
  region!: string;

  @Field(() => String, { nullable: true, description: 'Name of stored cloud credentials.' })
  credentialRef?: string | null;
}

@InputType({ description: 'A new cluster.' })
export class CreateClusterInput {
  @Field(() => ID, { description: 'The project; the caller must be its editor or admin.' })
  projectId!: string;

  @Field({ description: 'Name, unique in the project.' })
  name!: string;

  @Field(() => ID, { description: 'A profile of the same project.' })
  profileId!: string;

  @Field(() => CloudConfigInput, { description: 'Where it runs.' })
  cloud!: CloudConfigInput;

  @Field(() => [NodePoolInput], { description: 'Exactly one control-plane pool, and any worker pools.' })
  nodePools!: NodePoolInput[];
}

@InputType({ description: 'A change to a node pool: scale, resize, add zones.' })
export class UpdateNodePoolInput {
  @Field(() => ID, { description: 'The cluster.' })
  clusterId!: string;

  @Field({ description: 'The pool.' })
  name!: string;

  @Field(() => Int, { nullable: true, description: 'New node count.' })
  count?: number | null;

  @Field(() => String, { nullable: true, description: 'New instance type: nodes are replaced one at a time.' })
  instanceType?: string | null;

  @Field(() => [String], {
    nullable: true,
    description: 'The zones to use (a superset adds zones; nodes are rebalanced).',
  })
  availabilityZones?: string[] | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Refuse the change (STALE_GENERATION) unless the cluster is still at this generation.',
  })
  expectedGeneration?: number | null;
}
