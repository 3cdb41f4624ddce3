import { Node } from '@fleetgraph/kit';
import { Directive, ObjectType } from 'type-graphql';

// The Node types of other subgraphs, by their id alone: `Query.node` (node.resolver.ts) answers
// one of these, and the gateway fetches the rest of its fields from the subgraph that owns it.
// (ClusterProfile is in cluster.type.ts, where Cluster.profile uses it.)

@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: 'A machine image for cluster nodes, in one cloud region.' })
export class Image extends Node {}

@Directive('@key(fields: "id")')
@ObjectType({ implements: Node, description: "An archive of a cluster's logs, collected on request from its agent." })
export class LogBundle extends Node {}

@Directive('@key(fields: "id")')
@ObjectType({
  implements: Node,
  description:
    'An API key (a service account) of a project. It acts as the role it was given in its project, sent as ' +
    '`Authorization: Bearer <key>` on HTTP, graphql-ws and SSE alike; its subject is `apikey:<id>`.',
})
export class ApiKey extends Node {}
