import { claimsSchema, defineRequest } from '@fleetgraph/kit/core';
import { z } from 'zod';

/**
 * Every type that implements `Node` (Relay's global objects): the prefix of its ids and the
 * service that owns it. An id is its prefix and a ULID (`cls_01J...`), so that `Query.node` tells
 * its type from the id alone.
 */
export const NODE_TYPES = {
  Cluster: { prefix: 'cls_', service: 'clusters' },
  Webhook: { prefix: 'whk_', service: 'clusters' },
  ClusterProfile: { prefix: 'prof_', service: 'profiles' },
  ApiKey: { prefix: 'apk_', service: 'profiles' },
  Image: { prefix: 'img_', service: 'images' },
  LogBundle: { prefix: 'lb_', service: 'logs' },
} as const;
export type NodeTypeName = keyof typeof NODE_TYPES;

const NODE_ID = /^([a-z]+_)[0-9A-HJKMNP-TV-Z]{26}$/;
const byPrefix = new Map<string, NodeTypeName>(
  Object.entries(NODE_TYPES).map(([type, { prefix }]) => [prefix, type as NodeTypeName]),
);

/** The type of a Node id; null when the id is no Node's (an unknown prefix, or not a ULID after it). */
export function nodeTypeOf(id: string): NodeTypeName | null {
  const match = NODE_ID.exec(id);
  return (match && byPrefix.get(match[1]!)) ?? null;
}

/** The Node types a service owns. */
const typesOf = (service: string) =>
  Object.entries(NODE_TYPES)
    .filter(([, owner]) => owner.service === service)
    .map(([type]) => type) as [NodeTypeName, ...NodeTypeName[]];

/**
 * `<service>.v1.node.<type>`: whether the caller (its verified claims) may read the Node of this
 * id, answered by the service that owns the type with the rule its `__resolveReference` applies
 * (an unknown id, another tenant's, a project the caller cannot read: `readable: false`). Asked
 * by the clusters subgraph, which serves `Query.node`, so that `node(id)` is null, not an error,
 * for what the owner would not resolve.
 */
function nodeRequest(service: string) {
  return defineRequest(`${service}.v1.node.{type}`, {
    request: z.object({ type: z.enum(typesOf(service)), id: z.string().min(1).max(64), claims: claimsSchema }),
    reply: z.object({ readable: z.boolean() }),
  });
}

export const profilesNode = nodeRequest('profiles');
export const imagesNode = nodeRequest('images');
export const logsNode = nodeRequest('logs');

/** The request that asks the owner of a Node type, for the types clusters does not own. */
export const NODE_REQUESTS = { profiles: profilesNode, images: imagesNode, logs: logsNode } as const;
