import { quantityOf } from './quantity.js';

/** The parts of a pod (Kubernetes `V1Pod`) that its requests depend on. */
export interface PodLike {
  spec?: {
    nodeName?: string;
    containers?: readonly ContainerLike[];
    initContainers?: readonly ContainerLike[];
    /** RuntimeClass overhead (`spec.overhead`), added once per pod. */
    overhead?: Record<string, string | number>;
    /**
     * Pod-level resources (`spec.resources`, PodLevelResources): when it requests a resource, that
     * is the pod's request of it.
     */
    resources?: { requests?: Record<string, string | number> };
  };
  status?: { phase?: string };
}

export interface ContainerLike {
  resources?: { requests?: Record<string, string | number> };
  /** `Always` on an init container makes it a sidecar (restartable init container) that runs beside the others. */
  restartPolicy?: string;
}

export interface Requests {
  cpuCores: number;
  memoryBytes: number;
}

const RESOURCES = [
  ['cpuCores', 'cpu'],
  ['memoryBytes', 'memory'],
] as const;

const requestsOf = (container: ContainerLike): Requests => ({
  cpuCores: quantityOf(container.resources?.requests, 'cpu'),
  memoryBytes: quantityOf(container.resources?.requests, 'memory'),
});

const add = (a: Requests, b: Requests): Requests => ({
  cpuCores: a.cpuCores + b.cpuCores,
  memoryBytes: a.memoryBytes + b.memoryBytes,
});
const max = (a: Requests, b: Requests): Requests => ({
  cpuCores: Math.max(a.cpuCores, b.cpuCores),
  memoryBytes: Math.max(a.memoryBytes, b.memoryBytes),
});
const ZERO: Requests = { cpuCores: 0, memoryBytes: 0 };

/**
 * A pod's effective CPU and memory requests, as the scheduler counts them
 * (k8s.io/component-helpers `resource.PodRequests`):
 *
 * - the sum of the app containers' requests;
 * - init containers run one at a time before them, so the pod needs at least the largest one:
 *   per resource, `max(sum(containers), max(initContainers))`;
 * - sidecars (init containers with `restartPolicy: Always`) keep running: each adds to the
 *   sum, and to every init container started after it;
 * - pod-level requests, when set for a resource, replace the containers' for it;
 * - then the RuntimeClass overhead is added.
 */
export function podRequests(pod: PodLike): Requests {
  const spec = pod.spec ?? {};
  let sum = (spec.containers ?? []).map(requestsOf).reduce(add, ZERO);
  let sidecars = ZERO;
  let init = ZERO;
  for (const container of spec.initContainers ?? []) {
    let needed = requestsOf(container);
    if (container.restartPolicy === 'Always') {
      sum = add(sum, needed);
      sidecars = add(sidecars, needed);
      needed = sidecars;
    } else {
      needed = add(needed, sidecars);
    }
    init = max(init, needed);
  }
  let effective = max(sum, init);
  const podLevel = spec.resources?.requests;
  if (podLevel) {
    for (const [key, resource] of RESOURCES) {
      if (podLevel[resource] !== undefined) effective = { ...effective, [key]: quantityOf(podLevel, resource) };
    }
  }
  return add(effective, {
    cpuCores: quantityOf(spec.overhead, 'cpu'),
    memoryBytes: quantityOf(spec.overhead, 'memory'),
  });
}

/** Whether a pod still holds its node's resources: every phase but Succeeded and Failed. */
export const isNonTerminated = (pod: PodLike): boolean =>
  pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';

/** Requests and count of the non-terminated pods of each node, by node name (unscheduled pods count nowhere). */
export function requestsByNode(pods: Iterable<PodLike>): Map<string, Requests & { pods: number }> {
  const byNode = new Map<string, Requests & { pods: number }>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (!node || !isNonTerminated(pod)) continue;
    const current = byNode.get(node) ?? { cpuCores: 0, memoryBytes: 0, pods: 0 };
    const requests = podRequests(pod);
    byNode.set(node, {
      cpuCores: current.cpuCores + requests.cpuCores,
      memoryBytes: current.memoryBytes + requests.memoryBytes,
      pods: current.pods + 1,
    });
  }
  return byNode;
}
