import type { GraphQLSchema } from 'graphql';
import { Directive, Subscription, type PubSub } from 'type-graphql';
import { printStreamDirective, STREAM_DIRECTIVE, STREAM_TYPE_DEFS, type StreamBinding } from './stream-directive.js';

export * from './stream-directive.js';

/** type-graphql's `() => ReturnType` (not exported by name). */
type ReturnTypeFunc = Parameters<typeof Subscription>[0];

/**
 * Subscription fields are declared by the subgraph that owns their data and executed by the
 * gateway: each one is bound, by the composed `@jetstream` directive, to a JetStream subject. The
 * subgraph never runs them; the gateway reads the binding from the supergraph, authorises each
 * subscription through the federated query path, consumes the subject and executes the client's
 * selection over each event (gateway/README.md, Subscriptions).
 *
 * The directive is not called `@stream`: Apollo Federation reserves that name (incremental delivery).
 */

/** Thrown if anything ever tries to run a JetStream-bound field inside its subgraph. */
export class GatewayExecutedFieldError extends Error {
  constructor(field: string) {
    super(`Subscription.${field} is bound to a JetStream subject and executed by the gateway, not by its subgraph`);
    this.name = 'GatewayExecutedFieldError';
  }
}

/**
 * The pub/sub type-graphql insists on once a schema has Subscription fields: subgraphs never run
 * them, so it refuses every use. `buildSubgraph` passes it.
 */
export const gatewayExecutedPubSub: PubSub = {
  publish: () => {
    throw new GatewayExecutedFieldError('*');
  },
  subscribe: () => {
    throw new GatewayExecutedFieldError('*');
  },
};

/**
 * The SDL `buildSubgraph` prepends to a type-graphql schema: `STREAM_TYPE_DEFS` when one of its
 * Subscription fields carries `@jetstream`, else nothing (a subgraph without such fields prints as before).
 */
export function streamTypeDefsFor(schema: GraphQLSchema): string {
  const fields = Object.values(schema.getSubscriptionType()?.getFields() ?? {});
  return fields.some((f) => f.astNode?.directives?.some((d) => d.name.value === STREAM_DIRECTIVE))
    ? STREAM_TYPE_DEFS
    : '';
}

/** Options of a JetStream-bound Subscription field besides its binding. */
export interface StreamSubscriptionOptions {
  description?: string;
  deprecationReason?: string;
}

/**
 * Declares a Subscription field bound to a JetStream subject: type-graphql's `@Subscription`
 * (whose `subscribe` throws: the subgraph never executes it) plus the `@jetstream` directive the
 * gateway reads. The method's `@Arg` parameters declare the field's arguments; its body never runs.
 *
 * @example
 * ```ts
 * @StreamSubscription(() => ClusterEvent, {
 *   subject: clusterEvent.subjectTemplate(), // 'clusters.v1.events.{tenantId}.{clusterId}'
 *   stream: clusterEvent.stream,
 *   authorize: 'cluster(id: $clusterId) { id }',
 *   replay: 'CURSOR',
 * })
 * clusterEvents(
 *   @Arg('clusterId', () => ID) _clusterId: string,
 *   @Arg('after', () => String, { nullable: true }) _after?: string,
 * ): ClusterEvent {
 *   throw new GatewayExecutedFieldError('clusterEvents');
 * }
 * ```
 */
export function StreamSubscription(
  returnType: ReturnTypeFunc,
  binding: StreamBinding,
  options: StreamSubscriptionOptions = {},
): MethodDecorator {
  const directive = Directive(printStreamDirective(binding));
  return (prototype, key, descriptor) => {
    const field = String(key);
    Subscription(returnType, {
      ...options,
      subscribe: () => {
        throw new GatewayExecutedFieldError(field);
      },
    })(prototype, key, descriptor);
    directive(prototype, key, descriptor);
  };
}
