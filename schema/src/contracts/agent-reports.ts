import { defineRequest, defineTopic } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { conditionStatuses, nodeRoles } from './clusters.js';

/**
 * What a cluster's agent reports, and how the platform tells a simulated agent to misbehave.
 *
 * One message per interval, `agent.v1.<clusterId>.report`, carries the heartbeat, the nodes and
 * the services together (rather than three subjects):
 * - the health of a cluster is judged on one consistent snapshot (node conditions, usage and
 *   services observed at the same moment), evaluated once;
 * - it is one message per cluster per interval to receive, parse, validate and check the tenant
 *   of: 3,333/s for 100,000 clusters at 30 s, not three times that;
 * - every report is the whole current state, so a lost report is healed by the next one and a
 *   restarted consumer needs nothing replayed: at-most-once core NATS is enough, and no stream
 *   has to store 10 MB/s of reports.
 *
 * Most intervals change nothing but numbers. A full report (`nodes`, `services`) goes out when
 * anything else changed since the last one (a node, a condition, a capacity, a service), again
 * at the next interval (a lost message must not hide a change), and every few intervals
 * regardless; in between, a compact report carries each node's usage, requests and pods only
 * (`usage`, `nodes` null): a tenth of the bytes to send, parse and validate.
 */

/** The condition types every node reports (Kubernetes node conditions). Others (node-problem-detector's) may follow. */
export const nodeConditionTypes = [
  'Ready',
  'MemoryPressure',
  'DiskPressure',
  'PIDPressure',
  'NetworkUnavailable',
] as const;
export const serviceTypes = ['LOAD_BALANCER', 'NODE_PORT'] as const;
export const observationSources = ['simulated', 'kubernetes'] as const;

const id = z.string().min(1).max(128);
const name = z.string().min(1).max(253);
const amount = z.number().finite().nonnegative();

/** A node condition; `status` as the GraphQL ConditionStatus (Kubernetes' True/False/Unknown upper-cased). */
export const reportedConditionSchema = z.object({
  type: z.string().min(1).max(128),
  status: z.enum(conditionStatuses),
  reason: z.string().max(256).nullable(),
  message: z.string().max(2048).nullable(),
});
export type ReportedCondition = z.infer<typeof reportedConditionSchema>;

/** Resources of a node: what it has (capacity, allocatable) or what is used or requested of it. */
export const resourcesSchema = z.object({
  cpuCores: amount,
  memoryBytes: amount,
  /** Node root filesystem (ephemeral storage); null when not known. */
  diskBytes: amount.nullable(),
});
export type Resources = z.infer<typeof resourcesSchema>;

export const reportedNodeSchema = z.object({
  name,
  role: z.enum(nodeRoles),
  /** Node pool (from the cloud's or Fleetgraph's pool label). */
  pool: z.string().min(1).max(128),
  zone: z.string().max(128).nullable(),
  instanceType: z.string().max(128).nullable(),
  conditions: z.array(reportedConditionSchema).max(64),
  capacity: resourcesSchema,
  allocatable: resourcesSchema,
  /**
   * Used now: CPU cores, memory working set (as metrics.k8s.io reports them) and root
   * filesystem bytes. Null when metrics are not available (no metrics-server, node just joined).
   */
  usage: resourcesSchema.nullable(),
  /**
   * Sum of the requests of the node's non-terminated pods, as the scheduler counts them
   * (per pod: max(sum of containers, largest init container) + overhead). diskBytes null.
   */
  requests: resourcesSchema,
  /** Non-terminated pods on the node. */
  pods: z.number().int().nonnegative(),
});
export type ReportedNode = z.infer<typeof reportedNodeSchema>;

/** A LoadBalancer or NodePort service, with the URLs a person can open (empty while a load balancer is pending). */
export const reportedServiceSchema = z.object({
  namespace: z.string().min(1).max(63),
  name: z.string().min(1).max(63),
  type: z.enum(serviceTypes),
  urls: z.array(z.string().url().max(2048)).max(64),
});
export type ReportedService = z.infer<typeof reportedServiceSchema>;

/** The largest cluster a report describes; larger ones exceed NATS's default 1 MB payload anyway. */
export const MAX_REPORTED_NODES = 2_000;

/** A node's numbers in a compact report: what changes every interval. */
export const reportedUsageSchema = z.object({
  name,
  /** Used CPU cores, memory working set and root filesystem bytes; null when not measured. */
  cpuCores: amount.nullable(),
  memoryBytes: amount.nullable(),
  diskBytes: amount.nullable(),
  cpuRequests: amount,
  memoryRequests: amount,
  pods: z.number().int().nonnegative(),
});
export type ReportedUsage = z.infer<typeof reportedUsageSchema>;

export const agentReportSchema = z.object({
  schemaVersion: z.literal(1),
  clusterId: id,
  /** The cluster's tenant, as the agent was installed with it: checked against the cluster's owner on arrival. */
  tenantId: id,
  source: z.enum(observationSources),
  /** Increments with every report of one agent run; `agentStartedAt` tells runs apart. */
  seq: z.number().int().nonnegative(),
  agentStartedAt: z.string().datetime(),
  /** When the agent sent it (its clock; the platform times heartbeats by its own). */
  sentAt: z.string().datetime(),
  /** How often the agent reports: a heartbeat is late after a few intervals. */
  intervalMs: z.number().int().min(100).max(3_600_000),
  /**
   * The nodes; null in a compact report, or when they could not be observed this time (the report
   * is still a heartbeat).
   */
  nodes: z.array(reportedNodeSchema).max(MAX_REPORTED_NODES).nullable(),
  /** LoadBalancer and NodePort services; null when they could not be observed, or in a compact report. */
  services: z.array(reportedServiceSchema).max(1_000).nullable(),
  /**
   * A compact report (with `nodes` null): the numbers of the nodes of the last full report, in
   * its order, nothing else having changed. Absent or null in a full report.
   */
  usage: z.array(reportedUsageSchema).max(MAX_REPORTED_NODES).nullable().optional(),
  /** What the agent could not observe, e.g. "metrics.k8s.io: 503 Service Unavailable". */
  problems: z.array(z.string().max(1024)).max(32),
});
export type AgentReport = z.infer<typeof agentReportSchema>;

/** `agent.v1.<clusterId>.report`: the agent's heartbeat with its nodes and services, every interval (core NATS). */
export const agentReport = defineTopic('agent.v1.{clusterId}.report', agentReportSchema);

/**
 * Faults a simulated agent plays, for tests and demonstrations. Every field is optional: a request
 * changes only what it names.
 */
export const simulatedFaultsSchema = z.object({
  /** Nodes (by name) reporting MemoryPressure. */
  memoryPressure: z.array(name).max(100).optional(),
  /** Nodes reporting DiskPressure (and a nearly full disk). */
  diskPressure: z.array(name).max(100).optional(),
  /** Nodes reporting PIDPressure. */
  pidPressure: z.array(name).max(100).optional(),
  /** Nodes whose Ready condition is False (kubelet stopped posting status). */
  notReady: z.array(name).max(100).optional(),
  /** Forces the CPU usage of every worker node to this share (0..1); null returns to the daily curve. */
  cpuLoad: z.number().min(0).max(1).nullable().optional(),
  /** Forces the memory usage of every worker node to this share (0..1); null returns to the daily curve. */
  memoryLoad: z.number().min(0).max(1).nullable().optional(),
  /** Stops sending reports, as a dead agent would (the agent keeps answering commands). */
  silent: z.boolean().optional(),
  /** Whether occasional memory pressure happens on its own. */
  randomFaults: z.boolean().optional(),
});
export type SimulatedFaults = z.infer<typeof simulatedFaultsSchema>;

/**
 * `agent.v1.<clusterId>.simulate`: changes the faults a simulated agent plays (served only by
 * simulated agents, each for its own cluster). `reset` clears every fault first. Answers with
 * the faults now in force.
 */
export const simulateAgent = defineRequest('agent.v1.{clusterId}.simulate', {
  request: z.object({ clusterId: id, tenantId: id, reset: z.boolean().optional(), faults: simulatedFaultsSchema }),
  reply: z.object({ faults: simulatedFaultsSchema.required() }),
});
