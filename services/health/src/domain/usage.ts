import type { NodeRole } from '@fleetgraph/schema';
import type { ConditionFacts, NodeFacts, UsageFacts } from './health.js';

export const UsageScope = { WORKERS: 'WORKERS', ALL: 'ALL' } as const;
export type UsageScope = (typeof UsageScope)[keyof typeof UsageScope];

/**
 * A node as the health service keeps it: flat numbers rather than nested objects, and condition
 * objects shared between nodes that report the same one (see `internCondition`), so that a fleet
 * of a million nodes fits in memory.
 */
export interface NodeView extends NodeFacts {
  name: string;
  role: NodeRole;
  pool: string;
  zone: string | null;
  instanceType: string | null;
  conditions: ConditionFacts[];
  cpuCapacity: number;
  memoryCapacity: number;
  diskTotalBytes: number | null;
  cpuAllocatable: number;
  memoryAllocatable: number;
  /** Usage, when metrics were reported for the node. */
  cpuUsed: number | null;
  memoryUsed: number | null;
  diskUsedBytes: number | null;
  cpuRequests: number;
  memoryRequests: number;
  pods: number;
}

/** The usage of a set of nodes at one time. */
export interface UsageTotals {
  coresTotal: number;
  coresUsed: number;
  memoryTotalBytes: number;
  memoryUsedBytes: number;
  cpuRequestsCores: number;
  memoryRequestsBytes: number;
  diskTotalBytes: number | null;
  diskUsedBytes: number | null;
  /** Nodes in the scope. */
  nodes: number;
  /** Of them, the nodes that reported metrics. */
  measured: number;
}

export const share = (used: number, total: number) => (total > 0 ? used / total : 0);

/** The figures of a scope's usage, as both ClusterUsage (the API) and its messages show them. */
export function usageFigures(totals: UsageTotals) {
  return {
    coresTotal: totals.coresTotal,
    coresUsed: totals.coresUsed,
    cpuUsage: share(totals.coresUsed, totals.coresTotal),
    memoryTotalBytes: totals.memoryTotalBytes,
    memoryUsedBytes: totals.memoryUsedBytes,
    memoryUsage: share(totals.memoryUsedBytes, totals.memoryTotalBytes),
    cpuRequestsCores: totals.cpuRequestsCores,
    memoryRequestsBytes: totals.memoryRequestsBytes,
    diskTotalBytes: totals.diskTotalBytes,
    diskUsedBytes: totals.diskUsedBytes,
    diskUsage:
      totals.diskUsedBytes === null || !totals.diskTotalBytes ? null : totals.diskUsedBytes / totals.diskTotalBytes,
    nodes: totals.nodes,
  };
}

/** The usage totals of the nodes of a scope: worker nodes, or all of them. */
export function usageOf(nodes: readonly NodeView[], scope: UsageScope): UsageTotals {
  const totals: UsageTotals = {
    coresTotal: 0,
    coresUsed: 0,
    memoryTotalBytes: 0,
    memoryUsedBytes: 0,
    cpuRequestsCores: 0,
    memoryRequestsBytes: 0,
    diskTotalBytes: null,
    diskUsedBytes: null,
    nodes: 0,
    measured: 0,
  };
  for (const node of nodes) {
    if (scope === UsageScope.WORKERS && node.role !== 'WORKER') continue;
    totals.nodes++;
    totals.coresTotal += node.cpuCapacity;
    totals.memoryTotalBytes += node.memoryCapacity;
    totals.cpuRequestsCores += node.cpuRequests;
    totals.memoryRequestsBytes += node.memoryRequests;
    if (node.cpuUsed !== null && node.memoryUsed !== null) {
      totals.measured++;
      totals.coresUsed += node.cpuUsed;
      totals.memoryUsedBytes += node.memoryUsed;
    }
    if (node.diskUsedBytes !== null && node.diskTotalBytes !== null) {
      totals.diskUsedBytes = (totals.diskUsedBytes ?? 0) + node.diskUsedBytes;
      totals.diskTotalBytes = (totals.diskTotalBytes ?? 0) + node.diskTotalBytes;
    }
  }
  return totals;
}

/**
 * What the METRICS checks look at: the worker nodes, or every node of a cluster that has no
 * workers. Shares are of the nodes that reported metrics, so a node still joining does not
 * make a busy cluster look idle.
 */
export function usageFacts(nodes: readonly NodeView[]): UsageFacts {
  const hasWorkers = nodes.some((n) => n.role === 'WORKER');
  let coresTotal = 0;
  let coresUsed = 0;
  let memoryTotal = 0;
  let memoryUsed = 0;
  for (const node of nodes) {
    if (hasWorkers && node.role !== 'WORKER') continue;
    if (node.cpuUsed === null || node.memoryUsed === null) continue;
    coresTotal += node.cpuCapacity;
    coresUsed += node.cpuUsed;
    memoryTotal += node.memoryCapacity;
    memoryUsed += node.memoryUsed;
  }
  const measured = coresTotal > 0;
  return {
    label: hasWorkers ? 'worker nodes' : 'nodes',
    cpu: measured ? share(coresUsed, coresTotal) : null,
    memory: memoryTotal > 0 ? share(memoryUsed, memoryTotal) : null,
  };
}

/** One point of a usage series: time, then used cores and memory bytes of the workers, then of all nodes. */
export type SamplePoint = readonly [
  time: number,
  workerCores: number,
  workerMemory: number,
  allCores: number,
  allMemory: number,
];
export const SAMPLE_WIDTH = 5;

/** A usage sample for the series, from the totals of both scopes at one time. */
export const samplePoint = (time: number, workers: UsageTotals, all: UsageTotals): SamplePoint => [
  time,
  workers.coresUsed,
  workers.memoryUsedBytes,
  all.coresUsed,
  all.memoryUsedBytes,
];

export interface SeriesPoint {
  time: number;
  cpuCores: number;
  memoryBytes: number;
}

/**
 * The series of a scope over a window, from flat sample arrays (`SAMPLE_WIDTH` numbers per
 * sample, in time order within each array): samples from `from` on, each time once, at most
 * `maxPoints` (averaged into equal time slots when there are more).
 */
export function seriesOf(
  chunks: readonly (readonly number[])[],
  scope: UsageScope,
  from: number,
  to: number,
  maxPoints: number,
): SeriesPoint[] {
  const offset = scope === UsageScope.WORKERS ? 1 : 3;
  const byTime = new Map<number, SeriesPoint>();
  for (const chunk of chunks) {
    for (let i = 0; i + SAMPLE_WIDTH <= chunk.length; i += SAMPLE_WIDTH) {
      const time = chunk[i]!;
      if (time < from || time > to) continue;
      byTime.set(time, { time, cpuCores: chunk[i + offset]!, memoryBytes: chunk[i + offset + 1]! });
    }
  }
  const points = [...byTime.values()].sort((a, b) => a.time - b.time);
  if (points.length <= maxPoints) return points;
  const slot = (to - from) / maxPoints;
  const slots = new Map<number, { time: number; cpu: number; memory: number; n: number }>();
  for (const point of points) {
    const index = Math.min(maxPoints - 1, Math.floor((point.time - from) / slot));
    const s = slots.get(index) ?? { time: 0, cpu: 0, memory: 0, n: 0 };
    s.time += point.time;
    s.cpu += point.cpuCores;
    s.memory += point.memoryBytes;
    s.n++;
    slots.set(index, s);
  }
  return [...slots.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, s]) => ({ time: Math.round(s.time / s.n), cpuCores: s.cpu / s.n, memoryBytes: s.memory / s.n }));
}
