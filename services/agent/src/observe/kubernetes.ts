import http from 'node:http';
import https from 'node:https';
import {
  CoreV1Api,
  KubeConfig,
  Metrics,
  type V1Node,
  type V1Pod,
  type V1PodList,
  type V1Service,
} from '@kubernetes/client-node';
import type { ReportedCondition, ReportedNode, ReportedService } from '@fleetgraph/schema';
import type { Observation, ObservationSource } from './observation.js';
import { parseQuantity, quantityOf } from './quantity.js';
import { requestsByNode, type PodLike } from './requests.js';
import { reportService, type ServiceLike } from './services.js';

/** Labels that name a node's pool, by cloud, in the order they are looked for. */
export const POOL_LABELS = [
  'fleetgraph.dev/pool',
  'eks.amazonaws.com/nodegroup',
  'kubernetes.azure.com/agentpool',
  'agentpool',
  'cloud.google.com/gke-nodepool',
  'node.kubernetes.io/pool',
] as const;
const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];
const KNOWN_STATUSES = { True: 'TRUE', False: 'FALSE', Unknown: 'UNKNOWN' } as const;
/** Pods that count: not terminated (the scheduler no longer counts a finished pod's requests). */
export const RUNNING_PODS = 'status.phase!=Succeeded,status.phase!=Failed';

export interface KubernetesObservationsOptions {
  /** @default `loadFromDefault()`: the in-cluster service account, else KUBECONFIG or ~/.kube/config */
  kubeConfig?: KubeConfig;
  /**
   * Reads each node's root filesystem usage from its kubelet
   * (`/api/v1/nodes/<n>/proxy/stats/summary`). @default true
   */
  kubeletStats?: boolean;
  /** Kubelet summaries read at once. @default 8 */
  concurrency?: number;
  /** Pods per page when listing them. @default 500 */
  pageSize?: number;
}

/** A kubelet Summary API response, the part of it read here. */
interface KubeletSummary {
  node?: { fs?: { usedBytes?: number; capacityBytes?: number } };
}

/**
 * Observations of a real cluster through its Kubernetes API (@kubernetes/client-node): nodes
 * (conditions, capacity, allocatable, role and pool from labels), non-terminated pods (requests
 * summed per node as the scheduler does), LoadBalancer and NodePort services, metrics-server's
 * NodeMetrics (CPU and memory working set) and each kubelet's root filesystem usage.
 *
 * Needs read access (get, list) to nodes, pods, services, nodes/proxy and metrics.k8s.io nodes.
 */
export class KubernetesObservations implements ObservationSource {
  readonly kind = 'kubernetes' as const;
  readonly #config: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #metrics: Metrics;
  readonly #options: Required<Omit<KubernetesObservationsOptions, 'kubeConfig'>>;

  constructor(options: KubernetesObservationsOptions = {}) {
    let config = options.kubeConfig;
    if (!config) {
      config = new KubeConfig();
      config.loadFromDefault();
    }
    this.#config = config;
    this.#core = config.makeApiClient(CoreV1Api);
    this.#metrics = new Metrics(config);
    this.#options = {
      kubeletStats: options.kubeletStats ?? true,
      concurrency: options.concurrency ?? 8,
      pageSize: options.pageSize ?? 500,
    };
  }

  async observe(): Promise<Observation> {
    const problems: string[] = [];
    const failed = (what: string) => (error: unknown) => {
      problems.push(`${what}: ${describe(error)}`);
      return null;
    };
    const [nodeList, pods, serviceList, nodeMetrics] = await Promise.all([
      this.listNodes().catch(failed('nodes')),
      this.listPods().catch(failed('pods')),
      this.listServices().catch(failed('services')),
      // metrics.k8s.io has no watch: it is read at every observation.
      this.#metrics.getNodeMetrics().catch(failed('metrics.k8s.io')),
    ]);
    const nodes = nodeList ?? [];
    const disks =
      nodeList && this.#options.kubeletStats ? await this.#disks(nodes, problems) : new Map<string, number>();
    const usage = new Map((nodeMetrics?.items ?? []).map((m) => [m.metadata.name, m.usage]));

    let reported: ReportedNode[] | null = null;
    // Without pods a node's requests are unknown: report no nodes this time rather than wrong ones.
    if (nodeList && pods) {
      const requests = requestsByNode(pods as PodLike[]);
      reported = nodes.map((node) =>
        toReportedNode(
          node,
          requests.get(node.metadata?.name ?? ''),
          usage.get(node.metadata?.name ?? ''),
          disks.get(node.metadata?.name ?? ''),
        ),
      );
    }
    const addresses = nodes.flatMap(nodeAddress);
    const services: ReportedService[] | null = serviceList
      ? serviceList.flatMap((s: V1Service) => {
          const r = reportService(s as ServiceLike, addresses);
          return r ? [r] : [];
        })
      : null;
    return { nodes: reported, services, problems };
  }

  /** The nodes now: listed at every observation (`WatchingKubernetesObservations` keeps them from a watch). */
  protected async listNodes(): Promise<V1Node[]> {
    return (await this.#core.listNode()).items;
  }

  /** Every non-terminated pod now. */
  protected async listPods(): Promise<V1Pod[]> {
    return (await this.listPodPages()).items;
  }

  /** Every service now. */
  protected async listServices(): Promise<V1Service[]> {
    return (await this.#core.listServiceForAllNamespaces()).items;
  }

  /** Every non-terminated pod, page by page, with the list's resource version (what a watch starts from). */
  protected async listPodPages(): Promise<V1PodList> {
    const pods: V1Pod[] = [];
    let next: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.#core.listPodForAllNamespaces({
        fieldSelector: RUNNING_PODS,
        limit: this.#options.pageSize,
        _continue: next,
      });
      pods.push(...page.items);
      // Every page of one list is of the first page's resource version.
      resourceVersion ??= page.metadata?.resourceVersion;
      next = page.metadata?._continue || undefined;
    } while (next);
    return { apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion }, items: pods };
  }

  /** The CoreV1 API client of this configuration. */
  protected get core(): CoreV1Api {
    return this.#core;
  }

  /** The Kubernetes configuration in use. */
  protected get kubeConfig(): KubeConfig {
    return this.#config;
  }

  /** Used root filesystem bytes per node, from the kubelets (a node whose kubelet does not answer is left out). */
  async #disks(nodes: V1Node[], problems: string[]): Promise<Map<string, number>> {
    const used = new Map<string, number>();
    const names = nodes.map((n) => n.metadata?.name).filter((n): n is string => !!n);
    let failures = 0;
    let index = 0;
    const worker = async () => {
      while (index < names.length) {
        const name = names[index++]!;
        try {
          const summary = (await this.#get(
            `/api/v1/nodes/${encodeURIComponent(name)}/proxy/stats/summary`,
          )) as KubeletSummary;
          const bytes = summary.node?.fs?.usedBytes;
          if (typeof bytes === 'number') used.set(name, bytes);
        } catch {
          failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#options.concurrency, names.length) }, worker));
    if (failures > 0) problems.push(`kubelet stats/summary: ${failures} of ${names.length} nodes did not answer`);
    return used;
  }

  /**
   * A GET of a raw API path, JSON-decoded. The generated `connectGetNodeProxyWithPath` would
   * encode the slash of `stats/summary` as %2F, so the path is sent as written, with the
   * KubeConfig's credentials and TLS settings.
   */
  async #get(path: string, timeoutMs = 10_000): Promise<unknown> {
    const server = this.#config.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig names no cluster');
    const options: https.RequestOptions = {};
    await this.#config.applyToHTTPSOptions(options);
    const url = new URL(path, server.endsWith('/') ? server : `${server}/`);
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const request = transport.request(
        url,
        { ...options, method: 'GET', headers: { ...options.headers, accept: 'application/json' }, timeout: timeoutMs },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if ((response.statusCode ?? 500) >= 300)
              return reject(Object.assign(new Error(body.slice(0, 300)), { code: response.statusCode }));
            try {
              resolve(JSON.parse(body));
            } catch (error) {
              reject(error);
            }
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end();
    });
  }
}

/** An API failure in one line: its HTTP status, if any, and the first line of its message. */
export function describe(error: unknown): string {
  const e = error as { code?: number; message?: string };
  return (e.code ? `${e.code} ` : '') + (e.message ?? String(error)).split('\n')[0]!.slice(0, 300);
}

/** The address a person reaches a node port on: external IP first, else internal IP. */
function nodeAddress(node: V1Node): string[] {
  const addresses = node.status?.addresses ?? [];
  const pick = addresses.find((a) => a.type === 'ExternalIP') ?? addresses.find((a) => a.type === 'InternalIP');
  return pick ? [pick.address] : [];
}

function role(node: V1Node): ReportedNode['role'] {
  const labels = node.metadata?.labels ?? {};
  return CONTROL_PLANE_LABELS.some((l) => l in labels) ? 'CONTROL_PLANE' : 'WORKER';
}

function pool(node: V1Node): string {
  const labels = node.metadata?.labels ?? {};
  for (const label of POOL_LABELS) if (labels[label]) return labels[label];
  return role(node) === 'CONTROL_PLANE' ? 'control-plane' : 'default';
}

/** A Kubernetes node as reported: its conditions, resources, usage and the requests of its pods. */
export function toReportedNode(
  node: V1Node,
  requests: { cpuCores: number; memoryBytes: number; pods: number } | undefined,
  usage: { cpu: string; memory: string } | undefined,
  diskUsedBytes: number | undefined,
): ReportedNode {
  const labels = node.metadata?.labels ?? {};
  const capacity = node.status?.capacity;
  const allocatable = node.status?.allocatable;
  const disk = (list: Record<string, string> | undefined) =>
    list?.['ephemeral-storage'] ? parseQuantity(list['ephemeral-storage']) : null;
  const conditions: ReportedCondition[] = (node.status?.conditions ?? []).slice(0, 64).map((c) => ({
    type: c.type,
    status: KNOWN_STATUSES[c.status as keyof typeof KNOWN_STATUSES] ?? 'UNKNOWN',
    reason: c.reason?.slice(0, 256) ?? null,
    message: c.message?.slice(0, 2048) ?? null,
  }));
  return {
    name: node.metadata?.name ?? 'unnamed',
    role: role(node),
    pool: pool(node),
    zone: labels['topology.kubernetes.io/zone'] ?? labels['failure-domain.beta.kubernetes.io/zone'] ?? null,
    instanceType: labels['node.kubernetes.io/instance-type'] ?? labels['beta.kubernetes.io/instance-type'] ?? null,
    conditions,
    capacity: {
      cpuCores: quantityOf(capacity, 'cpu'),
      memoryBytes: quantityOf(capacity, 'memory'),
      diskBytes: disk(capacity),
    },
    allocatable: {
      cpuCores: quantityOf(allocatable, 'cpu'),
      memoryBytes: quantityOf(allocatable, 'memory'),
      diskBytes: disk(allocatable),
    },
    usage: usage
      ? {
          cpuCores: parseQuantity(usage.cpu),
          memoryBytes: parseQuantity(usage.memory),
          diskBytes: diskUsedBytes ?? null,
        }
      : null,
    requests: { cpuCores: requests?.cpuCores ?? 0, memoryBytes: requests?.memoryBytes ?? 0, diskBytes: null },
    pods: requests?.pods ?? 0,
  };
}
