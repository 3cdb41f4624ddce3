import { defineEvent, defineRequest, type StreamDef } from '@fleetgraph/kit/core';
import { z } from 'zod';

export const healthStatuses = ['HEALTHY', 'PROGRESSING', 'UNHEALTHY', 'UNKNOWN'] as const;
export const healthFactors = ['HEARTBEAT', 'NODE_CONDITION', 'METRICS'] as const;
export const usageScopes = ['WORKERS', 'ALL'] as const;

/** Why a cluster is not HEALTHY: the factor and, for a person, why. */
export const healthReasonSchema = z.object({
  factor: z.enum(healthFactors),
  message: z.string(),
  /** When the check started failing. */
  since: z.string().nullable(),
  /** Reported before heartbeats stopped: the last known state, not the current one. */
  stale: z.boolean(),
});
export type HealthReasonMessage = z.infer<typeof healthReasonSchema>;

/**
 * `health.v1.status.<tenantId>.<clusterId>`: a cluster's health after it changed, shaped like
 * the GraphQL ClusterHealth (plus tenant and cluster), so that the gateway serves the
 * `clusterHealth` subscription from it.
 */
export const clusterHealthSchema = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  status: z.enum(healthStatuses),
  lastHeartbeatAt: z.string().nullable(),
  reasons: z.array(healthReasonSchema),
  /** The node conditions and metrics behind this status were reported before heartbeats stopped. */
  stale: z.boolean(),
  /** When the status or its reasons last changed. */
  changedAt: z.string(),
});
export type ClusterHealthMessage = z.infer<typeof clusterHealthSchema>;

export const usageSampleSchema = z.object({ time: z.string(), cpuCores: z.number(), memoryBytes: z.number() });
export type UsageSampleMessage = z.infer<typeof usageSampleSchema>;

/**
 * `health.v1.metrics.<tenantId>.<clusterId>.<scope>`: a usage sample at each report, shaped like
 * the GraphQL ClusterUsage (its `series` holds this one sample), for the `clusterMetrics`
 * subscription. The scope is a subject token because the subscription has a scope argument.
 */
export const clusterUsageSchema = z.object({
  tenantId: z.string(),
  clusterId: z.string(),
  scope: z.enum(usageScopes),
  time: z.string(),
  coresTotal: z.number(),
  coresUsed: z.number(),
  cpuUsage: z.number(),
  memoryTotalBytes: z.number(),
  memoryUsedBytes: z.number(),
  memoryUsage: z.number(),
  cpuRequestsCores: z.number(),
  memoryRequestsBytes: z.number(),
  diskTotalBytes: z.number().nullable(),
  diskUsedBytes: z.number().nullable(),
  diskUsage: z.number().nullable(),
  nodes: z.number().int(),
  observedAt: z.string().nullable(),
  stale: z.boolean(),
  series: z.array(usageSampleSchema),
});
export type ClusterUsageMessage = z.infer<typeof clusterUsageSchema>;

/**
 * `health.v1.fleet.<tenantId>.<projectId>.<clusterId>`: a cluster's health and worker usage as a
 * fleet overview shows them (contract FleetHealth, plus the tenant), after a health change and at
 * most every `FLEET_HEALTH_EVERY_MS` with new usage. The stream keeps the last of each cluster: the
 * fleet's current health, which `Subscription.fleetHealth` replays first.
 */
export const fleetHealthSchema = z.object({
  tenantId: z.string(),
  projectId: z.string(),
  clusterId: z.string(),
  status: z.enum(healthStatuses),
  stale: z.boolean(),
  /** Share of the worker nodes' CPU and memory in use (0 to 1); null before the first report. */
  cpuUsage: z.number().nullable(),
  memoryUsage: z.number().nullable(),
  /** Worker nodes reported. */
  nodes: z.number().int(),
  observedAt: z.string().nullable(),
  changedAt: z.string(),
});
export type FleetHealthMessage = z.infer<typeof fleetHealthSchema>;

/** How often at most a cluster's fleet health is sent again for new usage alone. */
export const FLEET_HEALTH_EVERY_MS = 10_000;

/** Health changes: the last one per cluster is its current health (what a new watcher gets first). */
export const HEALTH_STATUS_STREAM: StreamDef = {
  name: 'HEALTH_STATUS',
  subjects: ['health.v1.status.>', 'health.v1.fleet.>'],
  maxMsgsPerSubject: 1,
};

/**
 * Usage samples: only the latest per cluster and scope is kept (the series lives in the health
 * service's store), and nothing older than an hour, so the stream stays as large as the fleet.
 */
export const HEALTH_METRICS_STREAM: StreamDef = {
  name: 'HEALTH_METRICS',
  subjects: ['health.v1.metrics.>'],
  maxMsgsPerSubject: 1,
  maxAgeMs: 3600_000,
  // Samples are published without a message id: no deduplication window to keep.
  duplicateWindowMs: 1_000,
};

export const clusterHealthChanged = defineEvent({
  prefix: 'health.v1.status',
  stream: HEALTH_STATUS_STREAM.name,
  schema: clusterHealthSchema,
  keys: ['tenantId', 'clusterId'] as const,
});

export const clusterUsageSampled = defineEvent({
  prefix: 'health.v1.metrics',
  stream: HEALTH_METRICS_STREAM.name,
  schema: clusterUsageSchema,
  keys: ['tenantId', 'clusterId', 'scope'] as const,
});

export const fleetHealth = defineEvent({
  prefix: 'health.v1.fleet',
  stream: HEALTH_STATUS_STREAM.name,
  schema: fleetHealthSchema,
  keys: ['tenantId', 'projectId', 'clusterId'] as const,
});

/**
 * `health.v1.nodes`: the Kubernetes nodes a cluster's agent last reported, each with whether it
 * is Ready. The orchestrator asks before it removes an outdated machine in a rolling
 * replacement, so that an old node goes only once its replacement serves. Every health replica
 * answers from memory (queue group `health`); a cluster that never reported has no nodes.
 */
export const clusterNodes = defineRequest('health.v1.nodes', {
  request: z.object({ clusterId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/) }),
  reply: z.object({
    /** When its nodes were last reported; null when never. */
    observedAt: z.string().nullable(),
    nodes: z.array(z.object({ name: z.string(), ready: z.boolean() })),
  }),
});
