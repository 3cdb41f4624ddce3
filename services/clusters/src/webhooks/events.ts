/**
 * What webhooks deliver: the platform's JetStream events, as webhook events with a body of the
 * Standard Webhooks shape `{ type, timestamp, data }`. Pure: no I/O.
 */
import type {
  ClusterEventMessage,
  ClusterHealthMessage,
  ClusterSummary,
  ConditionsUpdateMessage,
  LogBundleMessage,
} from '@fleetgraph/schema';

/** contract.graphql's WebhookEventType, plus TEST (the deliveries of testWebhook). */
export const webhookEventTypes = [
  'CLUSTER_PHASE',
  'CLUSTER_CONDITION',
  'CLUSTER_WARNING_EVENT',
  'HEALTH_CHANGED',
  'LOG_BUNDLE_READY',
  'TEST',
] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** The types a webhook can subscribe to (TEST deliveries are sent by testWebhook only). */
export const subscribableEventTypes = webhookEventTypes.filter((t) => t !== 'TEST');

/** An event to deliver to the webhooks of its project that subscribe to its type. */
export interface WebhookEvent {
  type: WebhookEventType;
  tenantId: string;
  /** Null when the event does not say (the cluster's project is looked up). */
  projectId: string | null;
  /** Null for test deliveries only. */
  clusterId: string | null;
  /** When JetStream stored it: the order of a cluster's deliveries. */
  time: Date;
  /** Where it came from (`<stream>:<sequence>:<time>`): a delivery is queued once per webhook and source. */
  source: string;
  /** Sorts a cluster's deliveries: the stored time, then the stream and its sequence. */
  order: string;
  /** The body's `data`, without the project (added once known). */
  data: Record<string, unknown>;
}

/** Where an event was read: its stream, sequence and stored time. */
export interface EventOrigin {
  stream: string;
  seq: number;
  time: Date;
}

const sourceOf = (origin: EventOrigin) => `${origin.stream}:${origin.seq}:${origin.time.getTime()}`;

const base = (origin: EventOrigin) => ({
  time: origin.time,
  source: sourceOf(origin),
  order: `${origin.time.toISOString()}|${origin.stream}|${String(origin.seq).padStart(16, '0')}`,
});

/** A phase change (`clusters.v1.lifecycle`). */
export function phaseEvent(cluster: ClusterSummary, origin: EventOrigin): WebhookEvent {
  return {
    ...base(origin),
    type: 'CLUSTER_PHASE',
    tenantId: cluster.tenantId,
    projectId: cluster.projectId,
    clusterId: cluster.id,
    data: { clusterId: cluster.id, name: cluster.name, phase: cluster.phase },
  };
}

/** A change of conditions (`clusters.v1.conditions`). */
export function conditionsEvent(update: ConditionsUpdateMessage, origin: EventOrigin): WebhookEvent {
  return {
    ...base(origin),
    type: 'CLUSTER_CONDITION',
    tenantId: update.tenantId,
    projectId: null,
    clusterId: update.clusterId,
    data: { clusterId: update.clusterId, phase: update.phase, conditions: update.conditions },
  };
}

/** A cluster event of severity WARNING (`clusters.v1.events`); null for any other. */
export function warningEvent(event: ClusterEventMessage, origin: EventOrigin): WebhookEvent | null {
  if (event.severity !== 'WARNING') return null;
  return {
    ...base(origin),
    type: 'CLUSTER_WARNING_EVENT',
    tenantId: event.tenantId,
    projectId: null,
    clusterId: event.clusterId,
    data: {
      clusterId: event.clusterId,
      // The cursor of Cluster.events and the clusterEvents subscription: the stream sequence.
      event: {
        cursor: String(origin.seq),
        time: event.time,
        severity: event.severity,
        reason: event.reason,
        message: event.message,
        object: event.object,
      },
    },
  };
}

/** A health change (`health.v1.status`). */
export function healthEvent(health: ClusterHealthMessage, origin: EventOrigin): WebhookEvent {
  const { tenantId, clusterId, ...rest } = health;
  return {
    ...base(origin),
    type: 'HEALTH_CHANGED',
    tenantId,
    projectId: null,
    clusterId,
    data: { clusterId, health: rest },
  };
}

/**
 * A log bundle that became READY (`logs.v1.bundles`); null for any other status. Without its
 * download link: that is a bearer link, which a delivery would send to an endpoint (maybe over
 * plain http) and keep in its log for a week; receivers ask `logBundle(id)` for a fresh one.
 */
export function logBundleEvent(bundle: LogBundleMessage, origin: EventOrigin): WebhookEvent | null {
  if (bundle.status !== 'READY') return null;
  const { tenantId, projectId, downloadUrl: _link, ...rest } = bundle;
  return {
    ...base(origin),
    type: 'LOG_BUNDLE_READY',
    tenantId,
    projectId,
    clusterId: bundle.clusterId,
    data: { clusterId: bundle.clusterId, logBundle: rest },
  };
}

/** The body of a delivery: `{ type, timestamp, data }`, `data` led by the project. */
export function deliveryBody(event: WebhookEvent, projectId: string): string {
  return JSON.stringify({
    type: event.type,
    timestamp: event.time.toISOString(),
    data: { projectId, ...event.data },
  });
}
