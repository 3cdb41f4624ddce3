import type { Bus } from '@fleetgraph/kit';
import { clusterNodes } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import type { ClusterView } from '../ingest/records.js';
import { serveNodes } from './nodes.nats.js';

/** The handler `serveNodes` registers, called as the bus would with a validated request. */
function served(view: (id: string) => ClusterView | null) {
  let handler: ((request: { clusterId: string }) => Promise<unknown>) | undefined;
  const bus = {
    serve: (def: unknown, h: typeof handler) => {
      expect(def).toBe(clusterNodes);
      handler = h;
      return { unsubscribe() {} };
    },
  } as unknown as Bus;
  serveNodes(bus, { view });
  return handler!;
}

const condition = (type: string, status: 'TRUE' | 'FALSE' | 'UNKNOWN') => ({
  type,
  status,
  reason: null,
  message: null,
});

describe('health.v1.nodes', () => {
  it('should answer each reported node with whether its Ready condition is TRUE', async () => {
    const answer = served(
      () =>
        ({
          nodesObservedAt: Date.parse('2026-12-03T10:00:00.000Z'),
          nodes: [
            { name: 'workers-a', conditions: [condition('Ready', 'TRUE'), condition('MemoryPressure', 'FALSE')] },
            { name: 'workers-b', conditions: [condition('Ready', 'FALSE')] },
            { name: 'workers-c', conditions: [condition('Ready', 'UNKNOWN')] },
            { name: 'workers-d', conditions: [] },
          ],
        }) as unknown as ClusterView,
    );
    expect(await answer({ clusterId: 'cls_1' })).toEqual({
      observedAt: '2026-12-03T10:00:00.000Z',
      nodes: [
        { name: 'workers-a', ready: true },
        { name: 'workers-b', ready: false },
        { name: 'workers-c', ready: false },
        { name: 'workers-d', ready: false },
      ],
    });
  });

  it('should answer no nodes for a cluster that never reported', async () => {
    expect(await served(() => null)({ clusterId: 'cls_2' })).toEqual({ observedAt: null, nodes: [] });
  });
});
