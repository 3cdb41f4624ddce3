import { defineEvent, defineRequest, type StreamDef } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { enumOf } from './enums.js';
import { cloudTypes } from './profiles.js';

/** Where a cluster is in its life: contract.graphql's `ClusterPhase`, the one definition every service imports. */
export const clusterPhases = ['PENDING', 'PROVISIONING', 'RUNNING', 'UPDATING', 'DELETING', 'DELETED'] as const;
export type ClusterPhase = (typeof clusterPhases)[number];
export const ClusterPhase = enumOf(clusterPhases);
export const conditionStatuses = ['TRUE', 'FALSE', 'UNKNOWN'] as const;
export const eventSeverities = ['NORMAL', 'WARNING'] as const;
/** What a node does in its cluster: contract.graphql's `NodeRole`, the one definition every service imports. */
export const nodeRoles = ['CONTROL_PLANE', 'WORKER'] as const;
export type NodeRole = (typeof nodeRoles)[number];
export const NodeRole = enumOf(nodeRoles);

/** A lifecycle condition, as contract.graphql's ClusterCondition. */
export const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(conditionStatuses),
  active: z.boolean(),
  failed: z.boolean(),
  reason: z.string().nullable(),
  message: z.string().nullable(),
  code: z.string().nullable(),
  lastTransitionTime: z.string(),
  attempts: z.number().int(),
  /** A failed milestone's next attempt (absent from conditions recorded before it existed). */
  nextAttemptAt: z.string().nullable().optional(),
});
export type ConditionMessage = z.infer<typeof conditionSchema>;

/**
 * `clusters.v1.events.<tenantId>.<clusterId>`: one cluster event (contract ClusterEvent, plus its
 * tenant). Its cursor is its JetStream stream sequence (decimal): the publisher leaves it out and
 * the store and the gateway both take it from the stream, so one cursor resumes the
 * `Cluster.events` query and the `clusterEvents` subscription alike.
 */
export const clusterEventSchema = z.object({
  cursor: z.string().optional(),
  tenantId: z.string(),
  clusterId: z.string(),
  time: z.string(),
  severity: z.enum(eventSeverities),
  reason: z.string(),
  message: z.string(),
  object: z.string().nullable(),
});
export type ClusterEventMessage = z.infer<typeof clusterEventSchema>;

/** `clusters.v1.conditions.<tenantId>.<clusterId>`: the cluster's phase and conditions after a change. */
export const conditionsUpdateSchema = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  phase: z.enum(clusterPhases),
  conditions: z.array(conditionSchema),
});
export type ConditionsUpdateMessage = z.infer<typeof conditionsUpdateSchema>;

/** A cluster as other services need it: where it is and whose it is. */
export const clusterSummarySchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  name: z.string(),
  phase: z.enum(clusterPhases),
  cloud: z.object({ type: z.enum(cloudTypes), region: z.string() }),
  nodePools: z.array(z.object({ name: z.string(), role: z.enum(nodeRoles), count: z.number().int() })),
});
export type ClusterSummary = z.infer<typeof clusterSummarySchema>;

/**
 * `clusters.v1.fleet.<tenantId>.<projectId>.<id>`: a cluster as a fleet overview shows it, after
 * any change of its phase, conditions or converged generation (contract FleetCluster, plus its
 * tenant). The stream keeps the last of each cluster: the fleet's current state.
 */
export const fleetClusterSchema = z.object({
  tenantId: z.string(),
  projectId: z.string(),
  id: z.string(),
  name: z.string(),
  phase: z.enum(clusterPhases),
  cloud: z.enum(cloudTypes),
  region: z.string(),
  nodeCount: z.number().int(),
  generation: z.number().int(),
  observedGeneration: z.number().int(),
  /** The milestone being worked on, or the failed one; null once every milestone is reached. */
  condition: conditionSchema.nullable(),
  updatedAt: z.string(),
});
export type FleetClusterMessage = z.infer<typeof fleetClusterSchema>;

// Streams hold event subjects only: a stream that captured request subjects would answer requests with its PubAck.
export const CLUSTER_EVENTS_STREAM: StreamDef = {
  name: 'CLUSTER_EVENTS',
  subjects: ['clusters.v1.events.>'],
  // The API retains the last 1000 events per cluster; the stream keeps as many for replay.
  maxMsgsPerSubject: 1000,
  maxAgeMs: 30 * 24 * 3600_000,
};
export const CLUSTER_STATE_STREAM: StreamDef = {
  name: 'CLUSTER_STATE',
  subjects: ['clusters.v1.conditions.>', 'clusters.v1.lifecycle.>', 'clusters.v1.fleet.>'],
  // The latest state is what a new watcher needs first.
  maxMsgsPerSubject: 1,
};

export const clusterEvent = defineEvent({
  prefix: 'clusters.v1.events',
  stream: CLUSTER_EVENTS_STREAM.name,
  schema: clusterEventSchema,
  keys: ['tenantId', 'clusterId'] as const,
});

export const clusterConditions = defineEvent({
  prefix: 'clusters.v1.conditions',
  stream: CLUSTER_STATE_STREAM.name,
  schema: conditionsUpdateSchema,
  keys: ['tenantId', 'clusterId'] as const,
});

/**
 * `clusters.v1.lifecycle.<tenantId>.<id>`: a cluster was created, changed phase, or was deleted
 * (for services that track clusters).
 */
export const clusterLifecycle = defineEvent({
  prefix: 'clusters.v1.lifecycle',
  stream: CLUSTER_STATE_STREAM.name,
  schema: clusterSummarySchema,
  keys: ['tenantId', 'id'] as const,
});

export const fleetCluster = defineEvent({
  prefix: 'clusters.v1.fleet',
  stream: CLUSTER_STATE_STREAM.name,
  schema: fleetClusterSchema,
  keys: ['tenantId', 'projectId', 'id'] as const,
});

/** `clusters.v1.get`: a cluster of a tenant, for other services (NOT_FOUND otherwise). */
export const getCluster = defineRequest('clusters.v1.get', {
  request: z.object({ tenantId: z.string().min(1), id: z.string().min(1) }),
  reply: clusterSummarySchema,
});
