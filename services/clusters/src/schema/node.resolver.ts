import { BusError, graphqlError, Node, type Identity, type SubgraphContext } from '@fleetgraph/kit';
import { NODE_TYPES, nodeTypeOf, type NodeTypeName } from '@fleetgraph/schema';
import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';
import type { Webhook } from '../webhooks/webhook.type.js';
import { type Cluster, ClusterProfile } from './cluster.type.js';
import { ApiKey, Image, LogBundle } from './node.type.js';

/** The Node types of other services, answered by their id alone (the gateway fetches their fields from their owner). */
const STUBS = { ClusterProfile, ApiKey, Image, LogBundle } as const;
type RemoteNodeType = keyof typeof STUBS;

export interface NodeResolverDeps {
  /** A cluster the caller may read, or null. */
  cluster(identity: Identity, id: string): Promise<Cluster | null>;
  /** A webhook the caller may read (its project's admins), or null. */
  webhook(identity: Identity, id: string): Promise<Webhook | null>;
  /**
   * Whether the service that owns the type lets the caller read the id, by the rule its
   * `__resolveReference` applies (`<service>.v1.node.<type>` over NATS). @throws BusError
   */
  readable(type: RemoteNodeType, identity: Identity, id: string): Promise<boolean>;
}

/**
 * `Query.node` (Relay), served here for every Node type of the supergraph: the clusters subgraph
 * declares `Node` an entity interface (`@key(fields: "id")`) and every type that implements it. The
 * type comes from the id's prefix; the answer is null, not an error, for a malformed or unknown
 * id and for one the caller may not read (an owner out of reach is SERVICE_UNAVAILABLE). An object of another service is answered only once its
 * owner said the caller may read it: for a reference its owner resolves to null, @apollo/gateway
 * (2.14) answers a partial object (`{ id }`, nullable fields null) or, when a non-null field is
 * selected, null with a `valueCompletion` error, so a bare reference would answer unknown ids.
 */
@Resolver()
export class NodeResolver {
  constructor(private readonly deps: NodeResolverDeps) {}

  @Query(() => Node, {
    nullable: true,
    description:
      'Any object with an id (Relay): a Cluster, ClusterProfile, Image, LogBundle, ApiKey or Webhook the caller ' +
      'may read, by its id; null for an id that is unknown, malformed, or not readable by the caller.',
  })
  async node(@Arg('id', () => ID) id: string, @Ctx() { identity }: SubgraphContext): Promise<Node | null> {
    const type: NodeTypeName | null = nodeTypeOf(id);
    if (type === null) return null;
    if (type === 'Cluster') return this.deps.cluster(identity, id);
    if (type === 'Webhook') return this.deps.webhook(identity, id);
    let readable: boolean;
    try {
      readable = await this.deps.readable(type, identity, id);
    } catch (error) {
      if (error instanceof BusError && (error.code === 'NO_RESPONDERS' || error.code === 'TIMEOUT'))
        throw graphqlError('SERVICE_UNAVAILABLE', `the ${NODE_TYPES[type].service} service cannot be reached`, {
          cause: error,
        });
      throw error;
    }
    return readable ? Object.assign(new STUBS[type](), { id }) : null;
  }
}
