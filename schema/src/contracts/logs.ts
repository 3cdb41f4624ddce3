import { defineEvent, defineRequest, defineTopic, type StreamDef } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { nodeRoles } from './clusters.js';

/*
 * Cluster log bundles (services/logs, the agent's logs part).
 *
 * 1. The logs service asks the cluster's agent to collect: request/reply `collectLogs`
 *    (`agent.v1.<clusterId>.collect-logs`). The agent answers at once that it accepted.
 * 2. The agent then streams the bundle on core NATS subjects of that collection (tokens
 *    `{ streamId }`): ordered messages with sequence numbers on `logStreamData` (pieces of log
 *    files, then the manifest's resources, then an end marker), never more than the window the
 *    logs service granted on `logStreamControl` (credit-based flow control), so that neither side
 *    ever holds more than `window` messages of `chunkBytes`.
 * 3. The logs service publishes every status change of a bundle on `logBundleChanged`
 *    (`logs.v1.bundles.<tenantId>.<bundleId>`, JetStream), shaped like the GraphQL `LogBundle`.
 */

export const logBundleStatuses = ['REQUESTED', 'COLLECTING', 'READY', 'FAILED'] as const;
export type LogBundleStatus = (typeof logBundleStatuses)[number];

/** The most lines of each node log (agent, system, cloud-init) a bundle holds: the last ones. */
export const NODE_LOG_LINES_MAX = 10_000;

/** The platform's own namespace, whose pods' logs of the last hour make the `namespaceLogs` part. */
export const PLATFORM_NAMESPACE = 'fleetgraph-system';

/** Which parts of a cluster's logs to collect (contract.graphql `RequestClusterLogsInput`). */
export const logPartsSchema = z.object({
  /** Logs of the Kubernetes components (kube-system). */
  kubeSystem: z.boolean(),
  /** Logs of the platform namespace's pods, of the last hour. */
  namespaceLogs: z.boolean(),
  /** Agent, system and cloud-init logs of every node, the last lines. */
  nodeLogs: z.boolean(),
});
export type LogParts = z.infer<typeof logPartsSchema>;

/**
 * The top folder of each part in the archive; every file the agent sends lies under the folder of a
 * requested part: `kube-system/<pod>/<container>.log`, `fleetgraph-system/<pod>/<container>.log`,
 * `nodes/<node>/{agent,system,cloud-init}.log`.
 */
export const LOG_PART_FOLDERS = {
  kubeSystem: 'kube-system',
  namespaceLogs: PLATFORM_NAMESPACE,
  nodeLogs: 'nodes',
} as const satisfies Record<keyof LogParts, string>;

/** The node logs every node contributes, as file names under `nodes/<node>/`. */
export const NODE_LOG_FILES = ['agent.log', 'system.log', 'cloud-init.log'] as const;

/** A bundle as it travels (the GraphQL `LogBundle` plus its tenant and project). */
export const logBundleSchema = z.object({
  id: z.string(),
  tenantId: z.string(),
  projectId: z.string(),
  clusterId: z.string(),
  status: z.enum(logBundleStatuses),
  /** Why it FAILED, or what it is doing. */
  message: z.string().nullable(),
  fileName: z.string().nullable(),
  sizeBytes: z.number().nullable(),
  /** When READY: a signed, time-limited link (query `logBundle` again for a fresh one once it expired). */
  downloadUrl: z.string().nullable(),
  requestedAt: z.string(),
  readyAt: z.string().nullable(),
});
export type LogBundleMessage = z.infer<typeof logBundleSchema>;

// Only event subjects: a stream that captured request subjects would answer requests with its PubAck.
export const LOG_BUNDLES_STREAM: StreamDef = {
  name: 'LOG_BUNDLES',
  subjects: ['logs.v1.bundles.>'],
  // A bundle changes status three times; the latest is what a new watcher gets first.
  maxMsgsPerSubject: 5,
  maxAgeMs: 7 * 24 * 3600_000,
};

/** `logs.v1.bundles.<tenantId>.<bundleId>`: a log bundle changed status (the `logBundle` subscription). */
export const logBundleChanged = defineEvent({
  prefix: 'logs.v1.bundles',
  stream: LOG_BUNDLES_STREAM.name,
  schema: logBundleSchema,
  keys: ['tenantId', 'id'] as const,
});

const token = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'a plain id: letters, digits, "-" and "_"');

/**
 * `agent.v1.<clusterId>.collect-logs`: the cluster's agent starts collecting the selected parts
 * and answers at once; it then streams the bundle on `logStreamData` with the stream's id (see
 * the top of this file). Errors: CONFLICT when the agent is already running as many collections
 * as it will; NO_RESPONDERS (no agent connected) and TIMEOUT come from NATS.
 */
export const collectLogs = defineRequest('agent.v1.{clusterId}.collect-logs', {
  request: z.object({
    clusterId: token,
    tenantId: token,
    bundleId: token,
    parts: logPartsSchema,
    /** Node logs: the last this many lines of each. */
    nodeLogLines: z.number().int().min(1).max(NODE_LOG_LINES_MAX),
    /** Namespace logs: lines since this time (ISO-8601), one hour before the request. */
    namespaceSince: z.iso.datetime(),
    stream: z.object({
      /** Names the collection's subjects (the `streamId` of `logStreamData` and `logStreamControl`). */
      id: token,
      /** Messages the agent may send beyond the last one the logs service consumed. */
      window: z.number().int().min(1).max(256),
      /** Largest `data` of a file message, in UTF-16 code units (about bytes for log text). */
      chunkBytes: z
        .number()
        .int()
        .min(1024)
        .max(256 * 1024),
    }),
  }),
  reply: z.object({
    accepted: z.literal(true),
    /** Nodes the agent sees, for progress messages. */
    nodes: z.number().int().min(0),
  }),
});
export type CollectLogsRequest = z.infer<typeof collectLogs.request>;

/**
 * A file path inside a part's folder: plain segments (letters, digits, `.`, `_`, `-`), none of
 * them `.` or `..`, at most 255 characters.
 */
export const archivePathSchema = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'relative path of plain segments')
  .refine((p) => p.split('/').every((s) => s !== '.' && s !== '..'), 'no "." or ".." segments');

const isoTime = z.iso.datetime();

/** What the manifest says about each kind of resource: enough to read a bundle without the cluster. */
export const manifestResourceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('CustomResourceDefinition'),
    name: z.string(),
    group: z.string(),
    scope: z.enum(['Namespaced', 'Cluster']),
    versions: z.array(z.string()),
  }),
  z.object({
    kind: z.literal('Deployment'),
    namespace: z.string(),
    name: z.string(),
    replicas: z.number().int(),
    readyReplicas: z.number().int(),
    images: z.array(z.string()),
  }),
  z.object({
    kind: z.literal('Pod'),
    namespace: z.string(),
    name: z.string(),
    node: z.string(),
    phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']),
    restarts: z.number().int(),
    containers: z.array(z.string()),
    /** The owner, e.g. `DaemonSet/kube-proxy`, `Deployment/coredns`, `Node/<name>` for static pods. */
    controlledBy: z.string().nullable(),
  }),
  z.object({
    kind: z.literal('ConfigMap'),
    namespace: z.string(),
    name: z.string(),
    /** Key names only: values can hold what does not belong in a support bundle. */
    keys: z.array(z.string()),
  }),
  z.object({
    kind: z.literal('Event'),
    namespace: z.string(),
    type: z.enum(['Normal', 'Warning']),
    reason: z.string(),
    message: z.string(),
    /** e.g. `Pod/coredns-5d78c9869d-abcde`, `Node/<name>`. */
    object: z.string(),
    count: z.number().int(),
    lastTimestamp: isoTime,
  }),
  z.object({
    kind: z.literal('Node'),
    name: z.string(),
    role: z.enum(nodeRoles),
    pool: z.string(),
    zone: z.string(),
    instanceType: z.string(),
    ready: z.boolean(),
    kubeletVersion: z.string(),
    internalIp: z.string().nullable(),
    capacity: z.object({ cpu: z.number(), memoryMiB: z.number() }),
    createdAt: isoTime,
  }),
]);
export type ManifestResource = z.infer<typeof manifestResourceSchema>;
export type ManifestKind = ManifestResource['kind'];

/** The order in which the agent sends the resources, and in which Manifest.yaml lists them. */
export const MANIFEST_KINDS = [
  'CustomResourceDefinition',
  'Deployment',
  'Pod',
  'ConfigMap',
  'Event',
  'Node',
] as const satisfies readonly ManifestKind[];

const seq = z.number().int().min(1);

/**
 * A message on a collection's `data` subject, with `seq` 1, 2, 3, ... without gaps: every file in
 * turn (its pieces in order, the last one with `last: true`), then the resources in
 * `MANIFEST_KINDS` order, then `end`; or `error` at any point, which ends the collection.
 */
export const logStreamMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('file'), seq, path: archivePathSchema, data: z.string(), last: z.boolean() }),
  z.object({ type: z.literal('resource'), seq, resource: manifestResourceSchema }),
  z.object({ type: z.literal('end'), seq, files: z.number().int().min(0), resources: z.number().int().min(0) }),
  z.object({ type: z.literal('error'), seq, message: z.string().max(2048) }),
]);
export type LogStreamMessage = z.infer<typeof logStreamMessageSchema>;

/** A message on a collection's `control` subject, from the logs service to the agent. */
export const logStreamControlSchema = z.discriminatedUnion('type', [
  /** The agent may send every message up to this sequence number. */
  z.object({ type: z.literal('credit'), upTo: seq }),
  /** Stop: the logs service gave up on this collection (too large, timed out, stopping). */
  z.object({ type: z.literal('cancel'), reason: z.string().max(2048) }),
]);
export type LogStreamControl = z.infer<typeof logStreamControlSchema>;

/**
 * `agent.v1.<clusterId>.logs.<streamId>.data` (core NATS): the agent's messages of one collection,
 * numbered, within the credit granted. Under the cluster's own subjects, the only ones its agent
 * may publish on (NATS permissions). The ids are not in the payload: send with
 * `{ tokens: { clusterId, streamId } }`.
 */
export const logStreamData = defineTopic('agent.v1.{clusterId}.logs.{streamId}.data', logStreamMessageSchema);

/**
 * `agent.v1.<clusterId>.logs.<streamId>.control` (core NATS): the logs service's credit and
 * cancellation of one collection.
 */
export const logStreamControl = defineTopic('agent.v1.{clusterId}.logs.{streamId}.control', logStreamControlSchema);
