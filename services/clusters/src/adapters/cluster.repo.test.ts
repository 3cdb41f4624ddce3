import { createSqliteStore } from '@fleetgraph/kit';
import { describe, expect, it } from 'vitest';
import { ClusterRepository, EVENTS_RETAINED } from './cluster.repo.js';

describe('cluster events in the store', () => {
  it('should keep the last 1000 events and page them in order without gaps', async () => {
    const repo = await ClusterRepository.open(createSqliteStore({ file: ':memory:' }));
    const total = EVENTS_RETAINED + 150;
    for (let i = 0; i < total; i++) {
      await repo.appendEvent({ tenantId: 't1', clusterId: 'c1', time: new Date().toISOString(), severity: 'NORMAL', reason: 'Step', message: `event ${i}`, object: null });
      if (i % 100 === 99) await repo.trimEvents('c1');
    }
    await repo.trimEvents('c1');
    await repo.appendEvent({ tenantId: 't1', clusterId: 'other', time: new Date().toISOString(), severity: 'NORMAL', reason: 'Step', message: 'other cluster', object: null });

    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await repo.listEvents('c1', { first: 77, after });
      seen.push(...page.nodes.map((e) => e.message));
      if (!page.hasNextPage) break;
      after = page.endCursor;
    }
    expect(seen).toEqual(Array.from({ length: EVENTS_RETAINED }, (_, i) => `event ${i + 150}`));
  });

  it('should resume after a cursor with the events that follow it only', async () => {
    const repo = await ClusterRepository.open(createSqliteStore({ file: ':memory:' }));
    const cursors: string[] = [];
    for (let i = 0; i < 5; i++) cursors.push((await repo.appendEvent({ tenantId: 't1', clusterId: 'c1', time: '', severity: 'NORMAL', reason: 'r', message: `${i}`, object: null })).cursor);
    expect([...cursors].sort()).toEqual(cursors);
    const page = await repo.listEvents('c1', { first: 10, after: cursors[2] });
    expect(page.nodes.map((e) => e.message)).toEqual(['3', '4']);
  });
});
