import { manifestResourceSchema, MANIFEST_KINDS, PLATFORM_NAMESPACE } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { SimulatedSource, type SimulatedNode } from '../simulated.js';
import { SimulatedLogSource } from './simulated-logs.js';
import { chunkLines, cut } from './stream-sender.js';

const now = new Date('2026-05-23T12:00:00.000Z');
const node = (name: string, role: SimulatedNode['role']): SimulatedNode => ({
  name,
  role,
  pool: role === 'WORKER' ? 'workers' : 'control-plane',
  zone: 'local-1a',
  instanceType: 'm5.large',
  vcpus: 2,
  memoryMiB: 8192,
  privateIp: '10.0.0.1',
  runningSince: '2026-05-23T08:00:00.000Z',
});

async function all<T>(items: Iterable<T> | AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('SimulatedLogSource', () => {
  const simulated = new SimulatedSource({
    speed: 1e9,
    nodes: () => [node('cp-0', 'CONTROL_PLANE'), node('w-0', 'WORKER'), node('w-1', 'WORKER')],
  });
  const source = new SimulatedLogSource(simulated, { now: () => now });
  const selection = {
    parts: { kubeSystem: true, namespaceLogs: true, nodeLogs: true },
    tailLines: 10_000,
    namespaceSince: new Date(now.getTime() - 3600_000),
  };

  it('should describe exactly the pods and nodes whose logs it holds, in manifest order', async () => {
    await simulated.applyPacks([
      { type: 'CNI', name: 'calico', version: '3.28.0' },
      { type: 'ADDON', name: 'prometheus', version: '2.53.0' },
    ]);
    const snapshot = source.open(selection);
    const files = (await all(snapshot.files())).map((f) => f.path);
    const resources = await all(snapshot.resources());
    for (const r of resources) expect(manifestResourceSchema.safeParse(r).success).toBe(true);
    const kinds = resources.map((r) => MANIFEST_KINDS.indexOf(r.kind));
    expect(kinds).toEqual([...kinds].sort((a, b) => a - b));
    const podLogs = resources.flatMap((r) =>
      r.kind === 'Pod' && (r.namespace === 'kube-system' || r.namespace === PLATFORM_NAMESPACE)
        ? r.containers.map((c) => `${r.namespace}/${r.name}/${c}.log`)
        : [],
    );
    const nodeLogs = ['cp-0', 'w-0', 'w-1'].flatMap((n) => [
      `nodes/${n}/agent.log`,
      `nodes/${n}/system.log`,
      `nodes/${n}/cloud-init.log`,
    ]);
    expect(files.sort()).toEqual([...podLogs, ...nodeLogs].sort());
    expect(snapshot.nodes).toBe(3);
    // The installed packs show: their CRDs, a CNI pod on every node, the add-on in its namespace.
    expect(resources.filter((r) => r.kind === 'CustomResourceDefinition').map((r) => r.name)).toEqual(
      expect.arrayContaining(['ippools.crd.projectcalico.org', 'servicemonitors.monitoring.coreos.com']),
    );
    expect(files.filter((f) => /^kube-system\/calico-node-[a-z0-9]+\/calico-node\.log$/.test(f))).toHaveLength(3);
    expect(resources.some((r) => r.kind === 'Deployment' && r.namespace === 'prometheus')).toBe(true);
  });

  it('should keep the last lines of each node log, and the last hour of namespace logs', async () => {
    const files = await all(source.open(selection).files());
    const lines = async (path: string) => all(files.find((f) => f.path === path)!.lines());
    const system = await lines('nodes/w-0/system.log');
    expect([system.length, system[0]!.endsWith(' seq=5001'), system.at(-1)!.endsWith(' seq=15000')]).toEqual([
      10_000,
      true,
      true,
    ]);
    const agent = await lines(files.find((f) => f.path.startsWith(`${PLATFORM_NAMESPACE}/fleetgraph-agent-`))!.path);
    expect(agent.length).toBeGreaterThan(1_000);
    expect(agent.length).toBeLessThan(3_000);
    expect(agent.every((l) => Date.parse(l.split(' ')[0]!) >= now.getTime() - 3600_000)).toBe(true);
    expect(Date.parse(agent.at(-1)!.split(' ')[0]!)).toBe(now.getTime());
  });

  it('should collect only the parts selected', async () => {
    const files = await all(
      source.open({ ...selection, parts: { kubeSystem: false, namespaceLogs: false, nodeLogs: true } }).files(),
    );
    expect(new Set(files.map((f) => f.path.split('/')[0]))).toEqual(new Set(['nodes']));
  });
});

describe('chunkLines', () => {
  it('should join lines into chunks that end at line ends where they can', async () => {
    expect(await all(chunkLines(['aaa', 'bbb', 'ccc'], 8))).toEqual(['aaa\nbbb\n', 'ccc\n']);
    expect(await all(chunkLines(['x'.repeat(10)], 4))).toEqual(['xxxx', 'xxxx', 'xx\n']);
    expect(await all(chunkLines([], 4))).toEqual([]);
  });

  it('should never split a surrogate pair', () => {
    expect(cut('ab😀cd', 3)).toBe(2);
    expect(cut('abcdef', 3)).toBe(3);
  });
});
