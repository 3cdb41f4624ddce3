import { createLogger, createOutbox, createSqliteStore, type Bus } from '@fleetgraph/kit';
import { clusterConditions, clusterEvent, type ClusterEventMessage } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { ClusterRepository, EVENTS_RETAINED } from './cluster.repo.js';

/** A repository over an in-memory store; its outbox is never started (no NATS here). */
async function openRepo(): Promise<ClusterRepository> {
  const store = createSqliteStore({ file: ':memory:' });
  const outbox = await createOutbox({
    store,
    bus: {} as Bus,
    log: createLogger('test', 'silent'),
    events: [clusterEvent, clusterConditions],
  });
  return ClusterRepository.open(store, outbox);
}

/** Stores an event as the outbox does once the stream numbered it. */
async function append(repo: ClusterRepository, event: ClusterEventMessage, seq: number): Promise<string> {
  await repo.appendEvents([{ payload: event, seq, msgId: `m${seq}` }]);
  return String(seq);
}

const event = (clusterId: string, message: string) => ({
  tenantId: 't1',
  clusterId,
  time: new Date().toISOString(),
  severity: 'NORMAL' as const,
  reason: 'Step',
  message,
  object: null,
});

describe('cluster events in the store', () => {
  it('should keep the last 1000 events and page them in order without gaps', async () => {
    const repo = await openRepo();
    const total = EVENTS_RETAINED + 150;
    // Stream sequences are shared by every cluster: another cluster's events interleave.
    let seq = 0;
    for (let i = 0; i < total; i++) {
      await append(repo, event('c1', `event ${i}`), ++seq);
      if (i % 10 === 0) await append(repo, event('other', `other ${i}`), ++seq);
    }

    const seen: string[] = [];
    let after: number | null = null;
    for (;;) {
      const page = await repo.listEvents('c1', { first: 77, after });
      seen.push(...page.nodes.map((e) => e.message));
      if (!page.hasNextPage) break;
      after = Number(page.endCursor);
    }
    expect(seen).toEqual(Array.from({ length: EVENTS_RETAINED }, (_, i) => `event ${i + 150}`));
  });

  it('should resume after a cursor with the events that follow it only, and ignore a repeated sequence', async () => {
    const repo = await openRepo();
    const cursors: string[] = [];
    for (let i = 0; i < 5; i++) cursors.push(await append(repo, event('c1', `${i}`), 8 + i));
    await append(repo, event('c1', 'repeat'), 9);
    expect(cursors).toEqual(['8', '9', '10', '11', '12']);
    const page = await repo.listEvents('c1', { first: 10, after: 10 });
    expect(page.nodes.map((e) => e.message)).toEqual(['3', '4']);
    expect((await repo.listEvents('c1', { first: 10 })).nodes).toHaveLength(5);
  });

  it('should store a batch of events together, and the new ones of a batch that repeats some', async () => {
    const repo = await openRepo();
    const batch = (seqs: number[]) =>
      repo.appendEvents(
        seqs.map((seq) => ({ payload: event(seq % 2 ? 'c1' : 'c2', `${seq}`), seq, msgId: `m${seq}` })),
      );
    await batch([1, 2, 3, 4]);
    // A relay that published 3 and 4 again, with 5 and 6 after them.
    await batch([3, 4, 5, 6]);
    expect((await repo.listEvents('c1', { first: 10 })).nodes.map((e) => e.message)).toEqual(['1', '3', '5']);
    expect((await repo.listEvents('c2', { first: 10 })).nodes.map((e) => e.message)).toEqual(['2', '4', '6']);
  });
});
