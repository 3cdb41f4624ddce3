import { createLogger, createOutbox, createSqliteStore, type Bus } from '@fleetgraph/kit';
import { clusterConditions, clusterEvent, fleetCluster, type ClusterEventMessage } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import { ClusterRepository, EVENTS_RETAINED } from './cluster.repo.js';

/** A repository over an in-memory store; its outbox is never started (no NATS here). */
async function openRepo(): Promise<ClusterRepository> {
  const store = createSqliteStore({ file: ':memory:' });
  const outbox = await createOutbox({
    store,
    bus: {} as Bus,
    log: createLogger('test', 'silent'),
    events: [clusterEvent, clusterConditions, fleetCluster],
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

describe('cluster status under a lease', () => {
  const T0 = new Date('2026-01-01T00:00:00.000Z');
  const at = (ms: number) => new Date(T0.getTime() + ms);
  const spec = (id: string) => ({
    id,
    tenantId: 't1',
    projectId: 'p1',
    name: id,
    profileId: 'prof-1',
    cloud: { type: 'LOCAL' as const, region: 'local-1', credentialRef: null },
    nodePools: [],
    generation: 1,
    deletionRequested: false,
    createdAt: T0.toISOString(),
  });
  /** A cluster due at T0, claimed by `owner` for a minute. */
  async function claimed(repo: ClusterRepository, id: string, owner = 'a') {
    await repo.create(spec(id), T0);
    const status = (await repo.getStatus(id))!;
    return (await repo.claim(status, owner, at(1), 60_000))!;
  }

  it("should renew the holder's lease only, and keep the renewal through the step's next write", async () => {
    const repo = await openRepo();
    const held = await claimed(repo, 'c1');
    await repo.renewLease('c1', { owner: 'b', until: at(600_000).getTime() });
    expect((await repo.getStatus('c1'))!.leaseUntil).toBe(held.leaseUntil);
    await repo.renewLease('c1', { owner: 'a', until: at(120_000).getTime() });
    expect((await repo.getStatus('c1'))!.leaseUntil).toBe(at(120_000).toISOString());

    // The step writes on top of the version it claimed: a conflict, taken for no wake.
    const saved = await repo.saveStatus({ ...held, phase: 'PROVISIONING' }, 'a', [], held);
    expect(saved).toMatchObject({ phase: 'PROVISIONING', leaseUntil: at(120_000).toISOString() });
    expect(saved.nextReconcileAt).toBe(held.nextReconcileAt);
    expect(await repo.getStatus('c1')).toMatchObject({ phase: 'PROVISIONING', leaseUntil: at(120_000).toISOString() });
  });

  it("should keep a user's wake made during a step, though it is later than the due time the step claimed", async () => {
    const repo = await openRepo();
    const held = await claimed(repo, 'c2');
    const failing = await repo.saveStatus({ ...held, failures: 4 }, 'a', [], held);
    // The user changes the cluster: due now (later than T0, when the step's claim was due), backoff reset.
    await repo.wake('c2', at(5_000));
    const saved = await repo.saveStatus({ ...failing, phase: 'PROVISIONING' }, 'a', [], failing);
    expect(saved).toMatchObject({ nextReconcileAt: at(5_000).toISOString(), failures: 0, phase: 'PROVISIONING' });
  });
});
