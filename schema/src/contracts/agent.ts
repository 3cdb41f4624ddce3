import {
  type Confinement,
  confinedPermissions,
  defineRequest,
  listenSubject,
  type NatsPermissions,
  serveSubject,
} from '@fleetgraph/kit/core';
import { z } from 'zod';
import { agentReport, simulateAgent } from './agent-reports.js';
import { collectLogs, logStreamControl, logStreamData } from './logs.js';
import { packLayerSchema } from './profiles.js';

/**
 * Where a node's user data (services/clusters/src/bootstrap/user-data.ts) puts what others read:
 * the kubeadm configuration, the agent's manifest (on the first control-plane node only; its
 * Secret holds the agent's connection and credentials, under `AGENT_SECRET_KEYS`), the install
 * scripts. The local cloud boots its simulated agent from that manifest.
 */
export const BOOTSTRAP_PATHS = {
  kubeadmConfig: '/run/kubeadm/kubeadm.yaml',
  agentManifest: '/etc/fleetgraph/agent.yaml',
  installKubernetes: '/etc/fleetgraph/install-kubernetes.sh',
  installAgent: '/etc/fleetgraph/install-agent.sh',
} as const;

/** The keys of the agent's Secret, which the agent reads as environment variables (services/agent/src/env.ts). */
export const AGENT_SECRET_KEYS = {
  natsUrl: 'NATS_URL',
  clusterId: 'CLUSTER_ID',
  tenantId: 'TENANT_ID',
  natsCredentials: 'NATS_CREDENTIALS',
} as const;

/** Every subject of one cluster's agent: its reports, its commands, its log streams, its credentials. */
export const AGENT_SUBJECT_PREFIX = 'agent.v1';

/**
 * The subjects of a cluster's agent: those it publishes on (its reports, its requests for new
 * credentials, its log streams' data), those it listens on (the commands it serves, its log
 * streams' credit) and the inbox prefix the replies to its requests come to. The two sets do
 * not overlap (`confinedPermissions` says why).
 */
export function agentSubjects(clusterId: string): Confinement {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(clusterId)) throw new TypeError(`not a cluster id: ${JSON.stringify(clusterId)}`);
  const own = { clusterId };
  return {
    publish: [agentReport.subjectOf(own), serveSubject(renewAgentCredentials, own), listenSubject(logStreamData, own)],
    subscribe: [
      serveSubject(applyPacks, own),
      serveSubject(collectLogs, own),
      serveSubject(simulateAgent, own),
      listenSubject(logStreamControl, own),
    ],
    inboxPrefix: agentInboxPrefix(clusterId),
  };
}

/** The inbox prefix of a cluster's agent: the replies to its requests, and only those, come there. */
export const agentInboxPrefix = (clusterId: string) => `_INBOX_${clusterId}`;

/** The NATS permissions of a cluster's agent: its own subjects and inbox, nothing else. */
export function agentPermissions(clusterId: string): NatsPermissions {
  return confinedPermissions(agentSubjects(clusterId));
}

/**
 * `agent.v1.<clusterId>.credentials`: the agent asks for a new JWT for its key before its own
 * expires (served by the clusters service, which holds the account key). NOT_FOUND once the
 * cluster is deleted: its agent is refused once its JWT expires.
 */
export const renewAgentCredentials = defineRequest('agent.v1.{clusterId}.credentials', {
  request: z.object({
    clusterId: z.string().min(1).max(128),
    publicKey: z.string().regex(/^U[A-Z2-7]{55}$/, 'a NATS user public key'),
  }),
  reply: z.object({ jwt: z.string().min(1), expiresAt: z.string() }),
  // Only the agent of that cluster asks: the answer goes to its inbox and nowhere else.
  replyPrefix: agentInboxPrefix('{clusterId}'),
});

/**
 * `agent.v1.<clusterId>.apply-packs`: the cluster's agent installs (or upgrades to) the
 * profile's CNI, CSI and add-on packs and answers once each is installed, or with the ones
 * that failed. Served by the agent of that cluster only.
 */
export const applyPacks = defineRequest('agent.v1.{clusterId}.apply-packs', {
  request: z.object({
    clusterId: z.string().min(1),
    tenantId: z.string().min(1),
    generation: z.number().int(),
    packs: z.array(packLayerSchema),
  }),
  reply: z.object({
    installed: z.array(z.object({ name: z.string(), version: z.string() })),
    failed: z.array(z.object({ name: z.string(), version: z.string(), message: z.string() })),
  }),
});
