import { describe, expect, it } from 'vitest';
import { SimulatedSource, type SimulatedNode } from '../simulated.js';
import { dailyLoad, SimulatedObservations, simulatedObservations } from './simulated-observations.js';

const HOUR = 3600_000;
const node = (
  name: string,
  role: SimulatedNode['role'] = 'WORKER',
  extra: Partial<SimulatedNode> = {},
): SimulatedNode => ({
  name,
  role,
  pool: role === 'WORKER' ? 'workers' : 'control-plane',
  zone: 'local-1a',
  instanceType: 'm5.xlarge',
  vcpus: 4,
  memoryMiB: 16_384,
  privateIp: `10.0.0.${name.length}`,
  runningSince: '2025-01-01T00:00:00.000Z',
  ...extra,
});
const cluster = (nodes: SimulatedNode[], speed = 1000) => new SimulatedSource({ speed, nodes: () => nodes });
/** 2025-03-04 at the given UTC hour. */
const at = (hour: number) => Date.UTC(2025, 2, 4) + hour * HOUR;

describe('SimulatedObservations', () => {
  it('should report every machine as a node with its role, pool, resources and all-good conditions', async () => {
    const observations = new SimulatedObservations(cluster([node('cp-1', 'CONTROL_PLANE'), node('w-1'), node('w-2')]), {
      clusterId: 'c1',
      now: () => at(10),
      randomFaults: false,
    });
    const { nodes, services, problems } = await observations.observe();
    expect(nodes!.map((n) => [n.name, n.role, n.pool])).toEqual([
      ['cp-1', 'CONTROL_PLANE', 'control-plane'],
      ['w-1', 'WORKER', 'workers'],
      ['w-2', 'WORKER', 'workers'],
    ]);
    for (const n of nodes!) {
      expect(n.capacity).toEqual({ cpuCores: 4, memoryBytes: 16 * 2 ** 30, diskBytes: 100 * 2 ** 30 });
      expect(n.allocatable.cpuCores).toBeLessThan(4);
      expect(n.conditions.map((c) => [c.type, c.status])).toEqual([
        ['Ready', 'TRUE'],
        ['MemoryPressure', 'FALSE'],
        ['DiskPressure', 'FALSE'],
        ['PIDPressure', 'FALSE'],
        ['NetworkUnavailable', 'FALSE'],
      ]);
      expect(n.requests.cpuCores).toBeGreaterThan(0);
      expect(n.requests.cpuCores).toBeLessThanOrEqual(n.allocatable.cpuCores);
      expect(n.usage!.cpuCores).toBeLessThan(n.capacity.cpuCores);
    }
    expect(services).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('should load the workers more in the afternoon than at night', async () => {
    let now = at(4);
    const observations = new SimulatedObservations(cluster([node('w-1')]), {
      clusterId: 'c1',
      now: () => now,
      randomFaults: false,
    });
    const night = (await observations.observe()).nodes![0]!.usage!;
    now = at(16);
    const afternoon = (await observations.observe()).nodes![0]!.usage!;
    expect(dailyLoad(at(4))).toBeCloseTo(0, 9);
    expect(dailyLoad(at(16))).toBeCloseTo(1, 9);
    expect(afternoon.cpuCores).toBeGreaterThan(night.cpuCores + 1);
    expect(afternoon.memoryBytes).toBeGreaterThan(night.memoryBytes);
  });

  it('should expose a LoadBalancer service once prometheus is installed', async () => {
    const source = cluster(
      [node('cp-1', 'CONTROL_PLANE', { privateIp: '10.0.0.10' }), node('w-1', 'WORKER', { privateIp: '10.0.0.11' })],
      1e6,
    );
    const observations = new SimulatedObservations(source, { clusterId: 'c1', randomFaults: false });
    expect((await observations.observe()).services).toEqual([]);
    const before = (await observations.observe()).nodes![1]!.requests.cpuCores;
    await source.applyPacks([{ type: 'ADDON', name: 'prometheus', version: '2.53.0' }]);
    const after = await observations.observe();
    expect(after.services).toEqual([
      { namespace: 'monitoring', name: 'prometheus-server', type: 'LOAD_BALANCER', urls: ['http://10.0.0.10:9090/'] },
    ]);
    // Its pods land on the first worker and count in its requests.
    expect(after.nodes![1]!.requests.cpuCores).toBeGreaterThan(before);
  });

  it('should play faults on command and clear them on reset', async () => {
    const observations = new SimulatedObservations(cluster([node('w-1'), node('w-2')]), {
      clusterId: 'c1',
      randomFaults: false,
    });
    expect(observations.simulate({ memoryPressure: ['w-2'], cpuLoad: 0.99 })).toMatchObject({
      memoryPressure: ['w-2'],
      cpuLoad: 0.99,
      silent: false,
    });
    const { nodes } = await observations.observe();
    const [w1, w2] = nodes!;
    expect(w2!.conditions.find((c) => c.type === 'MemoryPressure')).toMatchObject({
      status: 'TRUE',
      reason: 'KubeletHasInsufficientMemory',
    });
    expect(w2!.usage!.memoryBytes / w2!.capacity.memoryBytes).toBeGreaterThan(0.95);
    expect(w1!.conditions.find((c) => c.type === 'MemoryPressure')!.status).toBe('FALSE');
    expect(w1!.usage!.cpuCores).toBeCloseTo(0.99 * 4, 2);

    observations.simulate({ notReady: ['w-1'], silent: true });
    expect(observations.silent).toBe(true);
    const lost = (await observations.observe()).nodes![0]!;
    expect(lost.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'UNKNOWN',
      message: 'Kubelet stopped posting node status.',
    });
    expect(lost.usage).toBeNull();

    expect(observations.simulate({}, true)).toEqual({
      memoryPressure: [],
      diskPressure: [],
      pidPressure: [],
      notReady: [],
      cpuLoad: null,
      memoryLoad: null,
      silent: false,
      randomFaults: false,
    });
  });

  it('should report a node that just started as not ready yet', async () => {
    const now = Date.now();
    const observations = new SimulatedObservations(
      cluster([node('w-new', 'WORKER', { runningSince: new Date(now - 5_000).toISOString() })], 1),
      { clusterId: 'c1', now: () => now, randomFaults: false },
    );
    const joining = (await observations.observe()).nodes![0]!;
    expect(joining.conditions[0]).toMatchObject({ type: 'Ready', status: 'FALSE', reason: 'KubeletNotReady' });
  });

  it('should now and then put a worker under memory pressure by itself', async () => {
    let now = Date.UTC(2025, 0, 1);
    const observations = new SimulatedObservations(cluster([node('cp-1', 'CONTROL_PLANE'), node('w-1'), node('w-2')]), {
      clusterId: 'c-random',
      now: () => now,
    });
    let pressuredMinutes = 0;
    // Sixty days, sampled every five minutes.
    for (let minute = 0; minute < 60 * 24 * 60; minute += 5) {
      now = Date.UTC(2025, 0, 1) + minute * 60_000;
      const { nodes } = await observations.observe();
      if (nodes!.some((n) => n.conditions.find((c) => c.type === 'MemoryPressure')!.status === 'TRUE'))
        pressuredMinutes += 5;
      // Only workers, never the control plane.
      expect(nodes![0]!.conditions.find((c) => c.type === 'MemoryPressure')!.status).toBe('FALSE');
    }
    // About one episode of 10 to 25 minutes every four days.
    expect(pressuredMinutes).toBeGreaterThan(60);
    expect(pressuredMinutes).toBeLessThan(600);
  });

  it('should give every part of an agent the same simulated cluster', () => {
    const source = cluster([node('w-1')]);
    expect(simulatedObservations(source, 'c1')).toBe(simulatedObservations(source, 'c1'));
    expect(simulatedObservations(cluster([]), 'c1')).not.toBe(simulatedObservations(source, 'c1'));
  });
});
