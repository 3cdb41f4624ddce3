import { describe, expect, it } from 'vitest';
import { podRequests, requestsByNode, type ContainerLike, type PodLike } from './requests.js';

const Mi = 2 ** 20;
const c = (cpu?: string, memory?: string, restartPolicy?: string): ContainerLike => ({
  resources: { requests: { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) } },
  ...(restartPolicy ? { restartPolicy } : {}),
});
const pod = (spec: PodLike['spec'], phase = 'Running'): PodLike => ({
  spec: { nodeName: 'n1', ...spec },
  status: { phase },
});

describe('podRequests (as the scheduler counts them)', () => {
  it.each([
    {
      name: 'sums the app containers',
      spec: { containers: [c('100m', '64Mi'), c('250m', '128Mi')] },
      cpu: 0.35,
      memory: 192 * Mi,
    },
    { name: 'counts a container without requests as zero', spec: { containers: [c('100m'), {}] }, cpu: 0.1, memory: 0 },
    {
      name: 'takes the largest init container when it exceeds the sum',
      spec: { initContainers: [c('2', '32Mi'), c('500m', '1Gi')], containers: [c('100m', '64Mi'), c('200m', '64Mi')] },
      cpu: 2,
      memory: 1024 * Mi,
    },
    {
      name: 'keeps the sum when every init container is smaller',
      spec: { initContainers: [c('100m', '16Mi')], containers: [c('300m', '64Mi'), c('300m', '64Mi')] },
      cpu: 0.6,
      memory: 128 * Mi,
    },
    {
      name: 'compares per resource, not per container',
      spec: { initContainers: [c('1', '10Mi')], containers: [c('100m', '500Mi')] },
      cpu: 1,
      memory: 500 * Mi,
    },
    {
      name: 'adds sidecars to the sum and to the init containers that start after them',
      spec: {
        initContainers: [c('100m', '50Mi'), c('200m', '100Mi', 'Always'), c('1', '100Mi')],
        containers: [c('300m', '200Mi')],
      },
      // sum = 300m + sidecar 200m = 500m; third init container runs beside the sidecar: 1 + 200m = 1.2
      cpu: 1.2,
      memory: 300 * Mi,
    },
    {
      name: 'adds the RuntimeClass overhead once',
      spec: { containers: [c('100m', '64Mi'), c('100m', '64Mi')], overhead: { cpu: '250m', memory: '120Mi' } },
      cpu: 0.45,
      memory: 248 * Mi,
    },
    {
      name: 'uses pod-level requests for the resources they name, then adds overhead',
      spec: { containers: [c('100m', '64Mi')], resources: { requests: { cpu: '2' } }, overhead: { cpu: '100m' } },
      cpu: 2.1,
      memory: 64 * Mi,
    },
  ] as { name: string; spec: PodLike['spec']; cpu: number; memory: number }[])(
    'should $name',
    ({ spec, cpu, memory }) => {
      const requests = podRequests(pod(spec));
      expect(requests.cpuCores).toBeCloseTo(cpu, 9);
      expect(requests.memoryBytes).toBe(memory);
    },
  );

  it('should sum the non-terminated pods of each node and skip unscheduled ones', () => {
    const pods: PodLike[] = [
      pod({ containers: [c('500m', '1Gi')] }),
      pod({ containers: [c('1', '1Gi')] }, 'Pending'),
      pod({ containers: [c('4', '4Gi')] }, 'Succeeded'),
      pod({ containers: [c('4', '4Gi')] }, 'Failed'),
      {
        spec: { nodeName: 'n2', initContainers: [c('2', '256Mi')], containers: [c('100m', '64Mi')] },
        status: { phase: 'Running' },
      },
      { spec: { containers: [c('8', '8Gi')] }, status: { phase: 'Pending' } },
    ];
    const byNode = requestsByNode(pods);
    expect(Object.fromEntries(byNode)).toEqual({
      n1: { cpuCores: 1.5, memoryBytes: 2048 * Mi, pods: 2 },
      n2: { cpuCores: 2, memoryBytes: 256 * Mi, pods: 1 },
    });
  });
});
