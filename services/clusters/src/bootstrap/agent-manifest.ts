/**
 * The in-cluster manifest of a cluster's agent, generated per cluster and applied by the first
 * control-plane node's user data (with the bindings of the platform's users' groups, see
 * kubeconfig.ts): its namespace, service account, a read-only cluster role
 * (what the Kubernetes source of services/agent reads: nodes, pods, services, events,
 * deployments, config maps, CRDs, pod logs, node metrics, kubelet stats), a role that may
 * read and patch its own Secret only (renewed credentials), the Secret with its connection and
 * credentials, and the Deployment (tolerating the control-plane taint, so it runs before any
 * worker joins). Validated in tests against the Kubernetes API schemas (kubernetes-models).
 */
import { AGENT_SECRET_KEYS } from '@fleetgraph/schema';
import { stringify } from 'yaml';

export const AGENT_NAMESPACE = 'fleetgraph-system';
const NAME = 'fleetgraph-agent';

export interface AgentManifestInput {
  clusterId: string;
  tenantId: string;
  /** Where the agent reaches the platform's NATS (`nats://` or `tls://`). */
  natsUrl: string;
  /** The agent's NATS credentials file (user JWT and seed), when NATS has authentication. */
  natsCredentials: string | null;
  /** The agent's container image. */
  image: string;
}

export { AGENT_SECRET_KEYS };

/** The manifest's objects, in the order they are applied. */
export function agentObjects(input: AgentManifestInput): Record<string, unknown>[] {
  const labels = { 'app.kubernetes.io/name': NAME, 'app.kubernetes.io/part-of': 'fleetgraph' };
  const metadata = { name: NAME, namespace: AGENT_NAMESPACE, labels };
  const read = ['get', 'list', 'watch'];
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: AGENT_NAMESPACE, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata, automountServiceAccountToken: true },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: NAME, labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['nodes', 'pods', 'services', 'events', 'configmaps', 'namespaces'],
          verbs: read,
        },
        { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
        // Each node's filesystem usage, from its kubelet's /stats/summary.
        { apiGroups: [''], resources: ['nodes/proxy'], verbs: ['get'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: read },
        { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: read },
        { apiGroups: ['metrics.k8s.io'], resources: ['nodes', 'pods'], verbs: ['get', 'list'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: NAME, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: AGENT_NAMESPACE }],
    },
    // Its own Secret, and only it: the agent writes its renewed NATS credentials back there.
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata,
      rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [NAME], verbs: ['get', 'patch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: AGENT_NAMESPACE }],
    },
    // Users' kubeconfigs name their project role in O (bootstrap/kubeconfig.ts): admins administer
    // the cluster, editors edit workloads.
    ...(['admin', 'editor'] as const).map((role) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: `fleetgraph-${role}s`, labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: role === 'admin' ? 'cluster-admin' : 'edit',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `fleetgraph:${role}` }],
    })),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata,
      type: 'Opaque',
      stringData: {
        [AGENT_SECRET_KEYS.natsUrl]: input.natsUrl,
        [AGENT_SECRET_KEYS.clusterId]: input.clusterId,
        [AGENT_SECRET_KEYS.tenantId]: input.tenantId,
        ...(input.natsCredentials ? { [AGENT_SECRET_KEYS.natsCredentials]: input.natsCredentials } : {}),
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata,
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: { 'app.kubernetes.io/name': NAME } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: NAME,
            priorityClassName: 'system-cluster-critical',
            tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 10001,
              runAsGroup: 10001,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'agent',
                image: input.image,
                imagePullPolicy: 'IfNotPresent',
                args: ['node', 'services/agent/dist/main.js'],
                envFrom: [{ secretRef: { name: NAME } }],
                env: [{ name: 'AGENT_SOURCE', value: 'kubernetes' }],
                resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    },
  ];
}

/** The manifest as multi-document YAML, for `kubectl apply -f`. */
export function agentManifest(input: AgentManifestInput): string {
  return agentObjects(input)
    .map((object) => stringify(object, { lineWidth: 0 }))
    .join('---\n');
}
