import type { Bus, Identity } from '@fleetgraph/kit';
import { NODE_REQUESTS, NODE_TYPES } from '@fleetgraph/schema';
import type { NodeResolverDeps } from '../schema/node.resolver.js';

/**
 * Asks the service that owns a Node type whether the caller may read an id
 * (`<service>.v1.node.<type>`, with the caller's verified claims), for `Query.node`.
 */
export function natsNodeReadable(bus: Bus): NodeResolverDeps['readable'] {
  return async (type, identity: Identity, id) => {
    const request = NODE_REQUESTS[NODE_TYPES[type].service];
    return (await bus.request(request, { type, id, claims: identity.claims })).readable;
  };
}
