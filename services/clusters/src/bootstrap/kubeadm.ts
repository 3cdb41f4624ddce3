/**
 * kubeadm configuration for a cluster's nodes, in the kubeadm API version its Kubernetes version
 * reads: `kubeadm.k8s.io/v1beta3` for Kubernetes 1.22 to 1.30, `kubeadm.k8s.io/v1beta4` from
 * 1.31 on (where `extraArgs` became a list of name/value pairs and the timeouts moved into
 * `timeouts`). Pure: the CA files are written beside it by the user data, so kubeadm uses the
 * cluster's own CAs rather than making new ones. Checked in tests against strict schemas of the
 * kubeadm API types (kubeadm-api.ts).
 */
import { stringify } from 'yaml';

export type KubeadmApiVersion = 'kubeadm.k8s.io/v1beta3' | 'kubeadm.k8s.io/v1beta4';

export class UnsupportedKubernetesVersionError extends Error {
  constructor(version: string) {
    super(`Kubernetes ${version} is not supported: kubeadm configuration is written for 1.22 and later`);
    this.name = 'UnsupportedKubernetesVersionError';
  }
}

/** The kubeadm API version a Kubernetes version reads. @throws UnsupportedKubernetesVersionError */
export function kubeadmApiVersion(kubernetesVersion: string): KubeadmApiVersion {
  const match = /^v?(\d+)\.(\d+)(?:\.\d+)?/.exec(kubernetesVersion);
  const [major, minor] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
  if (major !== 1 || minor < 22) throw new UnsupportedKubernetesVersionError(kubernetesVersion);
  return minor >= 31 ? 'kubeadm.k8s.io/v1beta4' : 'kubeadm.k8s.io/v1beta3';
}

/** What a node's kubeadm configuration is made from. */
export interface KubeadmNode {
  kubernetesVersion: string;
  clusterName: string;
  /**
   * `host:port` of the API server every node joins through; null for the first control-plane
   * node without a load balancer in front (kubeadm then advertises its own address).
   */
  controlPlaneEndpoint: string | null;
  /** The node's name in the cluster (its machine name). */
  nodeName: string;
  /** Labels the kubelet registers the node with. */
  labels: Record<string, string>;
  /** The bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`) and, for the first node, how long it lives. */
  bootstrapToken: { token: string; ttlSeconds: number };
  /** `sha256:<hex>` of the cluster CA's public key. */
  caCertHash: string;
  podSubnet: string;
  serviceSubnet: string;
}

export const DEFAULT_NETWORKING = { podSubnet: '192.168.0.0/16', serviceSubnet: '10.96.0.0/12' } as const;

const CRI_SOCKET = 'unix:///run/containerd/containerd.sock';

/** `extraArgs` as each API version spells them. */
function args(apiVersion: KubeadmApiVersion, values: Record<string, string>) {
  const entries = Object.entries(values).sort(([a], [b]) => a.localeCompare(b));
  return apiVersion === 'kubeadm.k8s.io/v1beta4'
    ? entries.map(([name, value]) => ({ name, value }))
    : Object.fromEntries(entries);
}

function nodeRegistration(apiVersion: KubeadmApiVersion, node: KubeadmNode, controlPlane: boolean) {
  const labels = Object.entries(node.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return {
    name: node.nodeName,
    criSocket: CRI_SOCKET,
    ...(controlPlane ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } : {}),
    kubeletExtraArgs: args(apiVersion, labels ? { 'node-labels': labels } : {}),
  };
}

/**
 * The first control-plane node: InitConfiguration (with the bootstrap token workers join with)
 * and ClusterConfiguration, as one multi-document YAML.
 */
export function initConfiguration(node: KubeadmNode): string {
  const apiVersion = kubeadmApiVersion(node.kubernetesVersion);
  const v4 = apiVersion === 'kubeadm.k8s.io/v1beta4';
  const init = {
    apiVersion,
    kind: 'InitConfiguration',
    bootstrapTokens: [
      {
        token: node.bootstrapToken.token,
        ttl: `${node.bootstrapToken.ttlSeconds}s`,
        usages: ['signing', 'authentication'],
        groups: ['system:bootstrappers:kubeadm:default-node-token'],
        description: 'created by Fleetgraph for joining nodes',
      },
    ],
    nodeRegistration: nodeRegistration(apiVersion, node, true),
    ...(v4 ? { timeouts: { controlPlaneComponentHealthCheck: '4m0s' } } : {}),
  };
  const cluster = {
    apiVersion,
    kind: 'ClusterConfiguration',
    clusterName: node.clusterName,
    kubernetesVersion: `v${node.kubernetesVersion.replace(/^v/, '')}`,
    ...(node.controlPlaneEndpoint ? { controlPlaneEndpoint: node.controlPlaneEndpoint } : {}),
    certificatesDir: '/etc/kubernetes/pki',
    networking: { podSubnet: node.podSubnet, serviceSubnet: node.serviceSubnet, dnsDomain: 'cluster.local' },
    apiServer: {
      extraArgs: args(apiVersion, { profiling: 'false' }),
      ...(v4 ? {} : { timeoutForControlPlane: '4m0s' }),
    },
    controllerManager: { extraArgs: args(apiVersion, { profiling: 'false' }) },
    scheduler: { extraArgs: args(apiVersion, { profiling: 'false' }) },
  };
  return `${stringify(init)}---\n${stringify(cluster)}`;
}

/**
 * A further node: JoinConfiguration through the bootstrap token and the CA's hash; control-plane
 * nodes also run a control plane.
 */
export function joinConfiguration(node: KubeadmNode, controlPlane: boolean): string {
  if (!node.controlPlaneEndpoint) throw new TypeError('a joining node needs the control plane endpoint');
  const apiVersion = kubeadmApiVersion(node.kubernetesVersion);
  const v4 = apiVersion === 'kubeadm.k8s.io/v1beta4';
  const join = {
    apiVersion,
    kind: 'JoinConfiguration',
    nodeRegistration: nodeRegistration(apiVersion, node, controlPlane),
    discovery: {
      bootstrapToken: {
        apiServerEndpoint: node.controlPlaneEndpoint,
        token: node.bootstrapToken.token,
        caCertHashes: [node.caCertHash],
      },
      ...(v4 ? {} : { timeout: '5m0s' }),
    },
    ...(controlPlane ? { controlPlane: {} } : {}),
    ...(v4 ? { timeouts: { discovery: '5m0s' } } : {}),
  };
  return stringify(join);
}
