import { describe, expect, it } from 'vitest';
import { SAMPLE_WIDTH, seriesOf, usageFacts, usageOf, type NodeView } from './usage.js';

const GiB = 2 ** 30;
const node = (
  name: string,
  role: NodeView['role'],
  used: [number, number] | null,
  extra: Partial<NodeView> = {},
): NodeView => ({
  name,
  role,
  pool: role === 'WORKER' ? 'workers' : 'control-plane',
  zone: null,
  instanceType: null,
  conditions: [],
  cpuCapacity: 4,
  memoryCapacity: 16 * GiB,
  diskTotalBytes: 100 * GiB,
  cpuAllocatable: 3.9,
  memoryAllocatable: 15 * GiB,
  cpuUsed: used?.[0] ?? null,
  memoryUsed: used === null ? null : used[1] * GiB,
  diskUsedBytes: 30 * GiB,
  cpuRequests: 1,
  memoryRequests: 2 * GiB,
  pods: 10,
  ...extra,
});

describe('usage', () => {
  const nodes = [
    node('cp', 'CONTROL_PLANE', [0.5, 4]),
    node('w-1', 'WORKER', [2, 8]),
    node('w-2', 'WORKER', [3, 10]),
    node('w-3', 'WORKER', null),
  ];

  it('should total the worker nodes by default and every node on request', () => {
    expect(usageOf(nodes, 'WORKERS')).toEqual({
      coresTotal: 12,
      coresUsed: 5,
      memoryTotalBytes: 48 * GiB,
      memoryUsedBytes: 18 * GiB,
      cpuRequestsCores: 3,
      memoryRequestsBytes: 6 * GiB,
      diskTotalBytes: 300 * GiB,
      diskUsedBytes: 90 * GiB,
      nodes: 3,
      measured: 2,
    });
    expect(usageOf(nodes, 'ALL')).toMatchObject({ coresTotal: 16, coresUsed: 5.5, nodes: 4, measured: 3 });
  });

  it('should judge metrics on the measured workers, or on every node of a cluster without workers', () => {
    expect(usageFacts(nodes)).toEqual({ label: 'worker nodes', cpu: 5 / 8, memory: 18 / 32 });
    expect(usageFacts([node('cp', 'CONTROL_PLANE', [3.8, 15])])).toEqual({
      label: 'nodes',
      cpu: 0.95,
      memory: 15 / 16,
    });
    expect(usageFacts([node('w-new', 'WORKER', null)])).toEqual({ label: 'worker nodes', cpu: null, memory: null });
  });

  it('should build a series over the window from sample chunks, each time once, oldest first', () => {
    const stored = [100, 1, 10, 2, 20, 130, 1.5, 15, 2.5, 25];
    const open = [130, 1.5, 15, 2.5, 25, 160, 2, 20, 3, 30];
    expect(seriesOf([open, stored], 'WORKERS', 120, 200, 100)).toEqual([
      { time: 130, cpuCores: 1.5, memoryBytes: 15 },
      { time: 160, cpuCores: 2, memoryBytes: 20 },
    ]);
    expect(seriesOf([stored], 'ALL', 0, 200, 100).map((p) => p.cpuCores)).toEqual([2, 2.5]);
  });

  it('should average a long window into at most the points asked for', () => {
    const chunk: number[] = [];
    for (let t = 0; t < 1000; t++) chunk.push(t, t % 2, 0, 0, 0);
    expect(chunk.length / SAMPLE_WIDTH).toBe(1000);
    const series = seriesOf([chunk], 'WORKERS', 0, 1000, 10);
    expect(series).toHaveLength(10);
    for (const point of series) expect(point.cpuCores).toBeCloseTo(0.5, 9);
    expect(series[0]!.time).toBeLessThan(series[9]!.time);
  });
});
