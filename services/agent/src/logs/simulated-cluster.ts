import { MANIFEST_KINDS, PLATFORM_NAMESPACE, type ManifestResource } from '@fleetgraph/schema';
import type { SimulatedNode } from '../simulated.js';
import type { InstalledPack } from '../source.js';

type Of<K extends ManifestResource['kind']> = Extract<ManifestResource, { kind: K }>;

/** A pod of the simulated cluster, with what its logs need to know. */
export interface SimulatedPod extends Of<'Pod'> {
  /** When its containers started (ISO-8601): their logs begin then. */
  startedAt: string;
  /** What its containers log, for realistic lines. */
  logStyle: LogStyle;
}

export type LogStyle = 'klog' | 'etcd' | 'json' | 'coredns' | 'calico';

/**
 * Every resource of a simulated cluster, derived from its nodes and installed packs only, so that
 * logs and manifest agree.
 */
export interface SimulatedCluster {
  nodes: Of<'Node'>[];
  pods: SimulatedPod[];
  deployments: Of<'Deployment'>[];
  configMaps: Of<'ConfigMap'>[];
  crds: Of<'CustomResourceDefinition'>[];
  events: Of<'Event'>[];
}

export interface SimulatedClusterOptions {
  /** The kubelet version nodes report. @default 'v1.30.4' */
  kubernetesVersion?: string;
  /** "Now", for event times. */
  now: Date;
}

/** FNV-1a, for stable pseudo-random names and numbers. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
/** A Kubernetes-style random suffix, stable for its seed. */
function suffix(seed: string, length = 5): string {
  let h = hash(seed);
  let out = '';
  for (let i = 0; i < length; i++) {
    out += ALPHABET[h % ALPHABET.length];
    h = Math.floor(h / ALPHABET.length) || hash(`${seed}/${i}`);
  }
  return out;
}

/** CNI packs and the pods they run; anything else with "csi" in its name is a CSI driver; the rest are add-ons. */
const CNI = new Set(['calico', 'cilium', 'flannel', 'weave', 'antrea']);

const CRDS_OF_PACK: Record<string, { group: string; names: string[] }> = {
  calico: {
    group: 'crd.projectcalico.org',
    names: ['ippools', 'felixconfigurations', 'bgpconfigurations', 'networkpolicies'],
  },
  cilium: { group: 'cilium.io', names: ['ciliumnetworkpolicies', 'ciliumendpoints', 'ciliumnodes'] },
  prometheus: {
    group: 'monitoring.coreos.com',
    names: ['prometheuses', 'servicemonitors', 'podmonitors', 'alertmanagers'],
  },
};
const SNAPSHOT_CRDS = {
  group: 'snapshot.storage.k8s.io',
  names: ['volumesnapshots', 'volumesnapshotclasses', 'volumesnapshotcontents'],
};

/**
 * The workloads, configuration and events a cluster with these nodes and packs has: static
 * control-plane pods on control-plane nodes, kube-proxy and the CNI on every node, CoreDNS, the
 * CSI driver, add-ons in their own namespace, and the platform's agent in `fleetgraph-system`.
 */
export function simulateCluster(
  simulatedNodes: readonly SimulatedNode[],
  packs: readonly InstalledPack[],
  options: SimulatedClusterOptions,
): SimulatedCluster {
  const version = options.kubernetesVersion ?? 'v1.30.4';
  const now = options.now.toISOString();
  const nodes = [...simulatedNodes].sort((a, b) => a.name.localeCompare(b.name));
  const controlPlanes = nodes.filter((n) => n.role === 'CONTROL_PLANE');
  const workers = nodes.filter((n) => n.role === 'WORKER');
  const schedulable = workers.length > 0 ? workers : nodes;
  /* biome-ignore lint/complexity/useMathMinMax: ISO-8601 timestamps, compared as strings; Math.min would
     turn them into NaN */
  const oldest = nodes.reduce((t, n) => (n.runningSince < t ? n.runningSince : t), now);

  const pods: SimulatedPod[] = [];
  const deployments: Of<'Deployment'>[] = [];
  const configMaps: Of<'ConfigMap'>[] = [];
  const crds: Of<'CustomResourceDefinition'>[] = [];

  const restarts = (name: string) => (hash(`restarts/${name}`) % 17 === 0 ? 1 + (hash(name) % 4) : 0);
  const pod = (
    namespace: string,
    name: string,
    node: SimulatedNode,
    containers: string[],
    controlledBy: string | null,
    logStyle: LogStyle,
  ) =>
    pods.push({
      kind: 'Pod',
      namespace,
      name,
      node: node.name,
      phase: 'Running',
      restarts: restarts(name),
      containers,
      controlledBy,
      startedAt: node.runningSince,
      logStyle,
    });
  const daemonSet = (namespace: string, name: string, containers: string[], logStyle: LogStyle) => {
    for (const node of nodes)
      pod(namespace, `${name}-${suffix(`${name}/${node.name}`)}`, node, containers, `DaemonSet/${name}`, logStyle);
  };
  const deployment = (
    namespace: string,
    name: string,
    replicas: number,
    containers: string[],
    images: string[],
    logStyle: LogStyle,
  ) => {
    const ready = Math.min(replicas, schedulable.length);
    deployments.push({ kind: 'Deployment', namespace, name, replicas, readyReplicas: ready, images });
    const replicaSet = suffix(`rs/${namespace}/${name}`, 10);
    for (let i = 0; i < ready; i++) {
      const node = schedulable[i % schedulable.length]!;
      pod(
        namespace,
        `${name}-${replicaSet}-${suffix(`${name}/${i}`)}`,
        node,
        containers,
        `ReplicaSet/${name}-${replicaSet}`,
        logStyle,
      );
    }
  };

  // kube-system: the control plane, kube-proxy, CoreDNS, then the CNI and CSI packs.
  for (const node of controlPlanes) {
    pod('kube-system', `etcd-${node.name}`, node, ['etcd'], `Node/${node.name}`, 'etcd');
    for (const component of ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'])
      pod('kube-system', `${component}-${node.name}`, node, [component], `Node/${node.name}`, 'klog');
  }
  daemonSet('kube-system', 'kube-proxy', ['kube-proxy'], 'klog');
  deployment('kube-system', 'coredns', 2, ['coredns'], ['registry.k8s.io/coredns/coredns:v1.11.1'], 'coredns');
  configMaps.push(
    { kind: 'ConfigMap', namespace: 'kube-system', name: 'coredns', keys: ['Corefile'] },
    { kind: 'ConfigMap', namespace: 'kube-system', name: 'kube-proxy', keys: ['config.conf', 'kubeconfig.conf'] },
    { kind: 'ConfigMap', namespace: 'kube-system', name: 'kubeadm-config', keys: ['ClusterConfiguration'] },
    { kind: 'ConfigMap', namespace: 'kube-system', name: 'kubelet-config', keys: ['kubelet'] },
  );
  const namespaces = new Set(['kube-system', PLATFORM_NAMESPACE, 'default']);
  const packList = [...packs].sort((a, b) => a.name.localeCompare(b.name));
  for (const pack of packList) {
    const image = (component: string) => `registry.fleetgraph.dev/packs/${pack.name}/${component}:${pack.version}`;
    if (CNI.has(pack.name)) {
      daemonSet('kube-system', `${pack.name}-node`, [pack.name === 'calico' ? 'calico-node' : pack.name], 'calico');
      deployment(
        'kube-system',
        `${pack.name}-kube-controllers`,
        1,
        [`${pack.name}-kube-controllers`],
        [image('kube-controllers')],
        'klog',
      );
      configMaps.push({
        kind: 'ConfigMap',
        namespace: 'kube-system',
        name: `${pack.name}-config`,
        keys: ['cni_network_config', 'veth_mtu'],
      });
    } else if (pack.name.includes('csi')) {
      daemonSet('kube-system', `${pack.name}-node`, ['node-driver-registrar', 'csi-driver'], 'klog');
      deployment(
        'kube-system',
        `${pack.name}-controller`,
        2,
        ['csi-provisioner', 'csi-attacher', 'csi-snapshotter'],
        [image('controller')],
        'klog',
      );
      for (const name of SNAPSHOT_CRDS.names) crds.push(crd(name, SNAPSHOT_CRDS.group, ['v1']));
    } else {
      namespaces.add(pack.name);
      deployment(pack.name, pack.name, 1, [pack.name], [image(pack.name)], 'json');
      configMaps.push({ kind: 'ConfigMap', namespace: pack.name, name: `${pack.name}-values`, keys: ['values.yaml'] });
    }
    const packCrds = CRDS_OF_PACK[pack.name];
    for (const name of packCrds?.names ?? []) crds.push(crd(name, packCrds!.group, ['v1']));
  }

  // The platform's own namespace: the agent, and a node agent on every node.
  deployment(PLATFORM_NAMESPACE, 'fleetgraph-agent', 1, ['agent'], ['ghcr.io/fleetgraph/agent:0.1.0'], 'json');
  daemonSet(PLATFORM_NAMESPACE, 'fleetgraph-node-agent', ['node-agent'], 'json');
  configMaps.push({ kind: 'ConfigMap', namespace: PLATFORM_NAMESPACE, name: 'fleetgraph-agent', keys: ['agent.yaml'] });
  crds.push(crd('clusterpacks', 'fleetgraph.dev', ['v1alpha1', 'v1']));
  for (const namespace of [...namespaces].sort())
    configMaps.push({ kind: 'ConfigMap', namespace, name: 'kube-root-ca.crt', keys: ['ca.crt'] });

  const events: Of<'Event'>[] = [];
  for (const node of nodes) {
    events.push({
      kind: 'Event',
      namespace: 'default',
      type: 'Normal',
      reason: 'NodeReady',
      message: `Node ${node.name} status is now: NodeReady`,
      object: `Node/${node.name}`,
      count: 1,
      lastTimestamp: node.runningSince,
    });
  }
  for (const d of deployments) {
    events.push({
      kind: 'Event',
      namespace: d.namespace,
      type: 'Normal',
      reason: 'ScalingReplicaSet',
      message: `Scaled up replica set ${d.name} to ${d.replicas}`,
      object: `Deployment/${d.name}`,
      count: 1,
      lastTimestamp: oldest,
    });
  }
  for (const p of pods.filter((x) => x.restarts > 0)) {
    events.push({
      kind: 'Event',
      namespace: p.namespace,
      type: 'Warning',
      reason: 'BackOff',
      message: `Back-off restarting failed container ${p.containers[0]} in pod ${p.name}`,
      object: `Pod/${p.name}`,
      count: p.restarts,
      lastTimestamp: now,
    });
  }

  return {
    nodes: nodes.map((n) => ({
      kind: 'Node',
      name: n.name,
      role: n.role,
      pool: n.pool,
      zone: n.zone,
      instanceType: n.instanceType,
      ready: true,
      kubeletVersion: version,
      internalIp: n.privateIp,
      capacity: { cpu: n.vcpus, memoryMiB: n.memoryMiB },
      createdAt: n.runningSince,
    })),
    pods,
    deployments,
    configMaps,
    crds,
    events,
  };
}

function crd(plural: string, group: string, versions: string[]): Of<'CustomResourceDefinition'> {
  return {
    kind: 'CustomResourceDefinition',
    name: `${plural}.${group}`,
    group,
    scope: plural.startsWith('cluster') || plural.endsWith('configurations') ? 'Cluster' : 'Namespaced',
    versions,
  };
}

/** The cluster's resources in `MANIFEST_KINDS` order, as the manifest lists them (pods without their log details). */
export function* manifestResources(cluster: SimulatedCluster): Generator<ManifestResource> {
  const byKind: Record<(typeof MANIFEST_KINDS)[number], readonly ManifestResource[]> = {
    CustomResourceDefinition: cluster.crds,
    Deployment: cluster.deployments,
    Pod: cluster.pods.map(({ startedAt: _s, logStyle: _l, ...pod }) => pod),
    ConfigMap: cluster.configMaps,
    Event: cluster.events,
    Node: cluster.nodes,
  };
  for (const kind of MANIFEST_KINDS) yield* byKind[kind];
}
