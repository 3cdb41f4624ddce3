import type { ReportedCondition, ReportedNode, ReportedService, SimulatedFaults } from '@fleetgraph/schema';
import type { SimulatedNode, SimulatedSource } from '../simulated.js';
import type { Observation, ObservationSource } from './observation.js';
import { podRequests, type ContainerLike, type PodLike } from './requests.js';
import { reportService, type ServiceLike } from './services.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** The faults in force, every field set. */
export type FaultState = Required<{ [K in keyof SimulatedFaults]-?: Exclude<SimulatedFaults[K], undefined> }>;

const NO_FAULTS: FaultState = {
  memoryPressure: [],
  diskPressure: [],
  pidPressure: [],
  notReady: [],
  cpuLoad: null,
  memoryLoad: null,
  silent: false,
  randomFaults: true,
};

export interface SimulatedObservationsOptions {
  /** The cluster, which seeds everything that varies between clusters. */
  clusterId: string;
  /** @default Date.now */
  now?: () => number;
  /** Whether occasional memory pressure happens on its own. @default true */
  randomFaults?: boolean;
}

/** A stable hash of a string to [0, 1). */
function unit(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return ((h >>> 0) % 1_000_003) / 1_000_003;
}

const clamp = (x: number, lo = 0, hi = 1) => Math.min(hi, Math.max(lo, x));

/** How busy a cluster is at this time of day (UTC), 0 at 04:00 and 1 at 16:00. */
export function dailyLoad(time: number): number {
  const hour = (time % DAY) / HOUR;
  return 0.5 - 0.5 * Math.cos((2 * Math.PI * (hour - 4)) / 24);
}

/** CPU and memory the kubelet and system reserve on a node (GKE's published formulas), then the eviction threshold. */
function reserved(cores: number, memoryBytes: number): { cpuCores: number; memoryBytes: number } {
  const cpuSteps: [number, number][] = [
    [1, 0.06],
    [1, 0.01],
    [2, 0.005],
    [Infinity, 0.0025],
  ];
  const memSteps: [number, number][] = [
    [4 * GiB, 0.25],
    [4 * GiB, 0.2],
    [8 * GiB, 0.1],
    [112 * GiB, 0.06],
    [Infinity, 0.02],
  ];
  const tiered = (amount: number, steps: [number, number][]) => {
    let left = amount;
    let total = 0;
    for (const [size, share] of steps) {
      const part = Math.min(left, size);
      total += part * share;
      left -= part;
      if (left <= 0) break;
    }
    return total;
  };
  return { cpuCores: tiered(cores, cpuSteps), memoryBytes: tiered(memoryBytes, memSteps) + 100 * MiB };
}

const container = (cpu: string, memory: string, restartPolicy?: string): ContainerLike => ({
  resources: { requests: { cpu, memory } },
  ...(restartPolicy ? { restartPolicy } : {}),
});

/** What an add-on pack runs: its pods (placed on the first worker) and its exposed services. */
interface AddOn {
  pods: PodLike['spec'][];
  /** Pods on every node (DaemonSets). */
  daemons?: PodLike['spec'][];
  services: {
    namespace: string;
    name: string;
    type: 'LoadBalancer' | 'NodePort';
    ports: { name: string; port: number; nodePort: number }[];
  }[];
}

/** Add-ons the simulation knows, by pack name: what they run and expose once installed. */
export const SIMULATED_ADDONS: Record<string, AddOn> = {
  prometheus: {
    pods: [
      { initContainers: [container('100m', '64Mi')], containers: [container('500m', '1Gi'), container('50m', '64Mi')] },
    ],
    daemons: [{ containers: [container('50m', '32Mi')] }],
    services: [
      {
        namespace: 'monitoring',
        name: 'prometheus-server',
        type: 'LoadBalancer',
        ports: [{ name: 'http', port: 9090, nodePort: 31090 }],
      },
    ],
  },
  grafana: {
    pods: [{ initContainers: [container('50m', '64Mi')], containers: [container('250m', '256Mi')] }],
    services: [
      {
        namespace: 'monitoring',
        name: 'grafana',
        type: 'LoadBalancer',
        ports: [{ name: 'http', port: 80, nodePort: 31080 }],
      },
    ],
  },
  'ingress-nginx': {
    pods: [{ containers: [container('100m', '90Mi')] }],
    services: [
      {
        namespace: 'ingress-nginx',
        name: 'ingress-nginx-controller',
        type: 'LoadBalancer',
        ports: [
          { name: 'http', port: 80, nodePort: 30080 },
          { name: 'https', port: 443, nodePort: 30443 },
        ],
      },
    ],
  },
  'kubernetes-dashboard': {
    pods: [{ containers: [container('100m', '200Mi')] }],
    services: [
      {
        namespace: 'kubernetes-dashboard',
        name: 'kubernetes-dashboard',
        type: 'NodePort',
        ports: [{ name: 'https', port: 443, nodePort: 32443 }],
      },
    ],
  },
  'argo-cd': {
    pods: [{ containers: [container('250m', '512Mi')] }, { containers: [container('100m', '128Mi')] }],
    services: [
      {
        namespace: 'argocd',
        name: 'argocd-server',
        type: 'LoadBalancer',
        ports: [{ name: 'https', port: 443, nodePort: 30843 }],
      },
    ],
  },
};
SIMULATED_ADDONS.argocd = SIMULATED_ADDONS['argo-cd']!;
SIMULATED_ADDONS['nginx-ingress'] = SIMULATED_ADDONS['ingress-nginx']!;

const CONTROL_PLANE_PODS: PodLike['spec'][] = [
  { containers: [container('250m', '256Mi')] }, // kube-apiserver
  { containers: [container('100m', '100Mi')] }, // etcd
  { containers: [container('200m', '64Mi')] }, // kube-controller-manager
  { containers: [container('100m', '32Mi')] }, // kube-scheduler
  { containers: [container('100m', '70Mi')] }, // coredns
  { containers: [container('100m', '70Mi')] }, // coredns
];
const EVERY_NODE_PODS: PodLike['spec'][] = [
  { containers: [container('100m', '64Mi')] }, // kube-proxy
  {
    initContainers: [container('10m', '16Mi'), container('10m', '16Mi')],
    containers: [container('250m', '128Mi')],
  }, // CNI agent
];

/**
 * The observations of a simulated cluster, derived from its `SimulatedSource` (the local
 * cloud's machines as nodes, the installed packs as add-ons), so that they agree with what the
 * cluster is:
 *
 * - CPU and memory follow the time of day (busiest at 16:00 UTC), with a little noise per node;
 * - pods (system, add-on and workload pods) are generated per node and their requests summed
 *   as the scheduler does;
 * - add-ons expose services once installed (prometheus: a LoadBalancer on 9090) with the
 *   nodes' addresses as load balancer ingress, as k3s's ServiceLB does;
 * - a node that just started is NotReady for a while, as a joining node is, and reported at once
 *   when it turns Ready (as a real agent's node watch would);
 * - now and then a worker comes under memory pressure for 10 to 25 minutes;
 * - and faults can be set on command (`simulate`, or the `agent.v1.<clusterId>.simulate` request).
 */
/** How long a simulated node that just started is NotReady (its kubelet joining), at speed 1. */
const JOIN_MS = 30_000;

export class SimulatedObservations implements ObservationSource {
  readonly kind = 'simulated' as const;
  readonly #now: () => number;
  #faults: FaultState;

  constructor(
    readonly source: SimulatedSource,
    readonly options: SimulatedObservationsOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#faults = { ...NO_FAULTS, randomFaults: options.randomFaults ?? true };
  }

  /** Nodes whose turning Ready is announced already (a report at once, as a node's change is). */
  readonly #readyAnnounced = new Set<string>();

  #announceReady(name: string, inMs: number): void {
    if (this.#readyAnnounced.has(name)) return;
    this.#readyAnnounced.add(name);
    setTimeout(() => {
      this.#readyAnnounced.delete(name);
      this.source.changed();
    }, inMs + 10).unref();
  }

  /** The faults in force. */
  get faults(): FaultState {
    return structuredClone(this.#faults);
  }

  get silent(): boolean {
    return this.#faults.silent;
  }

  onChange(listener: () => void): () => void {
    return this.source.onChange(listener);
  }

  /** Changes the faults named (after clearing every one, with `reset`); returns the faults in force. */
  simulate(faults: SimulatedFaults, reset = false): FaultState {
    const base = reset ? { ...NO_FAULTS, randomFaults: this.options.randomFaults ?? true } : this.#faults;
    const next = { ...base };
    for (const [key, value] of Object.entries(faults))
      if (value !== undefined) (next as Record<string, unknown>)[key] = value;
    this.#faults = next;
    return this.faults;
  }

  async observe(): Promise<Observation> {
    const now = this.#now();
    const nodes = this.source.nodes();
    const installed = new Set(this.source.installedPacks().map((p) => p.name));
    const addOns = [...installed].flatMap((name) => (SIMULATED_ADDONS[name] ? [SIMULATED_ADDONS[name]] : []));
    const workers = nodes.filter((n) => n.role === 'WORKER');
    const firstWorker = workers[0] ?? nodes[0];
    const episode = this.#faults.randomFaults ? this.#memoryEpisode(now, workers) : null;
    const reported = nodes.map((node) => this.#node(node, now, addOns, node === firstWorker, episode === node.name));
    const addresses = nodes.flatMap((n) => (n.privateIp ? [n.privateIp] : []));
    const services: ReportedService[] = [];
    for (const addOn of addOns) {
      for (const s of addOn.services) {
        const service: ServiceLike = {
          metadata: { namespace: s.namespace, name: s.name },
          spec: { type: s.type, ports: s.ports },
          // ServiceLB style: the nodes' addresses are the load balancer's ingress.
          status: { loadBalancer: { ingress: addresses.slice(0, 1).map((ip) => ({ ip })) } },
        };
        const report = reportService(service, addresses);
        if (report) services.push(report);
      }
    }
    return { nodes: reported, services, problems: [] };
  }

  /** The worker under memory pressure now on its own, if any: on about one day in four, for 10 to 25 minutes. */
  #memoryEpisode(now: number, workers: SimulatedNode[]): string | null {
    if (workers.length === 0) return null;
    const day = Math.floor(now / DAY);
    // An episode starting late on the previous day may still be running.
    for (const d of [day, day - 1]) {
      const seed = `${this.options.clusterId}:${d}`;
      if (unit(`${seed}:happens`) >= 0.25) continue;
      const start = d * DAY + unit(`${seed}:start`) * DAY;
      const end = start + (10 + unit(`${seed}:length`) * 15) * 60_000;
      if (now >= start && now < end) return workers[Math.floor(unit(`${seed}:node`) * workers.length)]!.name;
    }
    return null;
  }

  #node(
    node: SimulatedNode,
    now: number,
    addOns: AddOn[],
    hostsAddOns: boolean,
    randomPressure: boolean,
  ): ReportedNode {
    const faults = this.#faults;
    const cores = node.vcpus;
    const memory = node.memoryMiB * MiB;
    const disk = 100 * GiB;
    const reserve = reserved(cores, memory);
    const allocatable = {
      cpuCores: Math.max(0, cores - reserve.cpuCores),
      memoryBytes: Math.max(0, memory - reserve.memoryBytes),
      diskBytes: disk * 0.9,
    };
    const worker = node.role === 'WORKER';

    const pods: PodLike['spec'][] = [...EVERY_NODE_PODS, ...addOns.flatMap((a) => a.daemons ?? [])];
    if (!worker) pods.push(...CONTROL_PLANE_PODS);
    if (hostsAddOns) pods.push(...addOns.flatMap((a) => a.pods));
    if (worker) {
      // Workloads fill 30 to 60% of what is allocatable, in pods of 250m / 512Mi.
      const share = 0.3 + 0.3 * unit(`${this.options.clusterId}:${node.name}:workload`);
      const count = Math.floor((allocatable.cpuCores * share) / 0.25);
      for (let i = 0; i < count; i++) pods.push({ containers: [container('250m', '512Mi')] });
    }
    const requests = pods.reduce(
      (sum, spec) => {
        const r = podRequests({ spec });
        return { cpuCores: sum.cpuCores + r.cpuCores, memoryBytes: sum.memoryBytes + r.memoryBytes };
      },
      { cpuCores: 0, memoryBytes: 0 },
    );

    const seed = unit(`${this.options.clusterId}:${node.name}`);
    const load = dailyLoad(now);
    const wobble = 0.04 * Math.sin(now / 600_000 + seed * 2 * Math.PI);
    let cpuShare = worker ? 0.12 + 0.45 * load + wobble : 0.1 + 0.1 * load + wobble / 2;
    let memoryShare = worker ? 0.35 + 0.2 * load + wobble / 2 : 0.45 + wobble / 4;
    let diskShare = 0.3 + 0.15 * seed;
    if (worker && faults.cpuLoad !== null) cpuShare = faults.cpuLoad;
    if (worker && faults.memoryLoad !== null) memoryShare = faults.memoryLoad;

    const memoryPressure = faults.memoryPressure.includes(node.name) || randomPressure;
    const diskPressure = faults.diskPressure.includes(node.name);
    const pidPressure = faults.pidPressure.includes(node.name);
    if (memoryPressure) memoryShare = Math.max(memoryShare, 0.97);
    if (diskPressure) diskShare = Math.max(diskShare, 0.96);

    // A machine that has just started runs its kubelet for a while before it is Ready: 30 s at speed 1.
    const readyAt = Date.parse(node.runningSince) + JOIN_MS / this.source.speed;
    const joining = now < readyAt;
    if (joining) this.#announceReady(node.name, readyAt - now);
    const lost = faults.notReady.includes(node.name);
    const condition = (
      type: string,
      bad: boolean,
      good: [string, string],
      failing: [string, string],
    ): ReportedCondition => {
      const [reason, message] = bad ? failing : good;
      const status =
        type === 'Ready' ? (bad ? (lost ? 'UNKNOWN' : 'FALSE') : 'TRUE') : bad ? (lost ? 'UNKNOWN' : 'TRUE') : 'FALSE';
      return { type, status, reason, message };
    };
    const conditions: ReportedCondition[] = [
      condition(
        'Ready',
        lost || joining,
        ['KubeletReady', 'kubelet is posting ready status'],
        lost
          ? ['NodeStatusUnknown', 'Kubelet stopped posting node status.']
          : [
              'KubeletNotReady',
              'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady ' +
                'message:cni plugin not initialized',
            ],
      ),
      condition(
        'MemoryPressure',
        memoryPressure || lost,
        ['KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
        lost
          ? ['NodeStatusUnknown', 'Kubelet stopped posting node status.']
          : ['KubeletHasInsufficientMemory', 'kubelet has insufficient memory available'],
      ),
      condition(
        'DiskPressure',
        diskPressure || lost,
        ['KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
        lost
          ? ['NodeStatusUnknown', 'Kubelet stopped posting node status.']
          : ['KubeletHasDiskPressure', 'kubelet has disk pressure'],
      ),
      condition(
        'PIDPressure',
        pidPressure || lost,
        ['KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
        lost
          ? ['NodeStatusUnknown', 'Kubelet stopped posting node status.']
          : ['KubeletHasInsufficientPID', 'kubelet has insufficient PID available'],
      ),
      {
        type: 'NetworkUnavailable',
        status: 'FALSE',
        reason: 'RouteCreated',
        message: 'CNI plugin configured the node network',
      },
    ];

    return {
      name: node.name,
      role: node.role,
      pool: node.pool || (worker ? 'workers' : 'control-plane'),
      zone: node.zone,
      instanceType: node.instanceType,
      conditions,
      capacity: { cpuCores: cores, memoryBytes: memory, diskBytes: disk },
      allocatable,
      // A lost node (or one still joining) has no metrics, as metrics-server would have none.
      usage:
        lost || joining
          ? null
          : {
              cpuCores: round(clamp(cpuShare) * cores, 3),
              memoryBytes: Math.round(clamp(memoryShare) * memory),
              diskBytes: Math.round(clamp(diskShare) * disk),
            },
      requests: { cpuCores: round(requests.cpuCores, 3), memoryBytes: requests.memoryBytes, diskBytes: null },
      pods: pods.length,
    };
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

const bySource = new WeakMap<SimulatedSource, SimulatedObservations>();

/**
 * The observations of a simulated cluster: one per source, so that every part of its agent
 * (and a test holding the source) sees and controls the same simulated cluster.
 */
export function simulatedObservations(source: SimulatedSource, clusterId: string): SimulatedObservations {
  let observations = bySource.get(source);
  if (!observations) {
    observations = new SimulatedObservations(source, { clusterId });
    bySource.set(source, observations);
  }
  return observations;
}
