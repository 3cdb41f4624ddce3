import { describe, expect, it } from 'vitest';
import { claimLease, createLeaseRunner, leaseFields, releaseLease, type LeaseTarget } from './lease.js';
import { createLogger } from './log.js';
import { VersionConflictError } from './store/store.js';

interface Doc {
  id: string;
  version: number;
  holder: string | null;
  heldUntil: string | null;
  done?: boolean;
}

const fields = leaseFields<Doc>({ owner: 'holder', until: 'heldUntil', time: 'iso' });
const log = createLogger('lease-test', 'silent');

/** Documents in memory, with compare-and-set on `version`. */
function memoryTarget(docs: Doc[]): LeaseTarget<Doc> & { docs: Map<string, Doc>; conflicts: number } {
  const target = {
    docs: new Map(docs.map((d) => [d.id, d])),
    conflicts: 0,
    async get(id: string) {
      const doc = target.docs.get(id);
      return doc ? { ...doc } : null;
    },
    async replace(doc: Doc) {
      const stored = target.docs.get(doc.id);
      if (!stored || stored.version !== doc.version || target.conflicts-- > 0)
        throw new VersionConflictError('docs', doc.id, doc.version);
      const next = { ...doc, version: doc.version + 1 };
      target.docs.set(doc.id, next);
      return { ...next };
    },
  };
  return target;
}

const at = (iso: string) => Date.parse(iso);
const doc = (id: string, holder: string | null = null, heldUntil: string | null = null): Doc => ({
  id,
  version: 1,
  holder,
  heldUntil,
});

describe('leases', () => {
  it.each([
    {
      name: 'an ISO time, null when free',
      spec: { time: 'iso' as const },
      stored: '2026-01-01T00:01:00.000Z',
      free: null,
    },
    {
      name: 'epoch ms, 0 when free',
      spec: { time: 'epoch-ms' as const, free: 0 as const },
      stored: at('2026-01-01T00:01:00.000Z'),
      free: 0,
    },
  ])(
    "should read and write a lease stored as $name, under the document's own field names",
    ({ spec, stored, free }) => {
      const f = leaseFields<{ id: string; who: string | null; until: unknown }>({
        owner: 'who',
        until: 'until',
        ...spec,
      });
      const held = f.write({ id: 'a', who: null, until: free }, { owner: 'r1', until: at('2026-01-01T00:01:00.000Z') });
      expect(held).toEqual({ id: 'a', who: 'r1', until: stored });
      expect(f.read(held)).toEqual({ owner: 'r1', until: at('2026-01-01T00:01:00.000Z') });
      expect(f.write(held, null)).toEqual({ id: 'a', who: null, until: free });
    },
  );

  it.each([
    { name: 'a free document', given: doc('a'), claimed: true },
    { name: 'its own lease', given: doc('a', 'me', '2026-01-01T00:05:00.000Z'), claimed: true },
    {
      name: "another owner's expired lease (a takeover)",
      given: doc('a', 'other', '2026-01-01T00:00:00.000Z'),
      claimed: true,
    },
    { name: "another owner's unexpired lease", given: doc('a', 'other', '2026-01-01T00:00:01.000Z'), claimed: false },
  ])('should claim $name: $claimed', async ({ given, claimed }) => {
    const target = memoryTarget([given]);
    const now = () => at('2026-01-01T00:00:00.000Z');
    const result = await claimLease(target, fields, given, { owner: 'me', leaseMs: 60_000, now });
    expect(result === null).toBe(!claimed);
    if (claimed)
      expect(target.docs.get('a')).toMatchObject({ holder: 'me', heldUntil: '2026-01-01T00:01:00.000Z', version: 2 });
  });

  it('should give up on a conflict with one attempt, and read again and retry with more', async () => {
    const target = memoryTarget([doc('a')]);
    target.conflicts = 1;
    expect(await claimLease(target, fields, 'a', { owner: 'me', leaseMs: 1000 })).toBeNull();
    target.conflicts = 2;
    expect(await claimLease(target, fields, 'a', { owner: 'me', leaseMs: 1000, attempts: 3 })).toMatchObject({
      holder: 'me',
    });
  });

  it('should release only its own lease, and leave a document that changed meanwhile', async () => {
    const target = memoryTarget([
      doc('a', 'me', '2026-01-01T00:01:00.000Z'),
      doc('b', 'other', '2026-01-01T00:01:00.000Z'),
    ]);
    await releaseLease(target, fields, (await target.get('a'))!, 'me');
    await releaseLease(target, fields, (await target.get('b'))!, 'me');
    expect(target.docs.get('a')).toMatchObject({ holder: null, heldUntil: null });
    expect(target.docs.get('b')).toMatchObject({ holder: 'other' });
    await expect(
      releaseLease(target, fields, { ...doc('a', 'me', '2026-01-01T00:01:00.000Z'), version: 1 }, 'me'),
    ).resolves.toBeUndefined();
  });
});

describe('lease runner', () => {
  it('should run found work up to the concurrency, keep what a crashed run holds, and offer it again as held', async () => {
    const ran: string[] = [];
    const offeredHeld: string[][] = [];
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const runner = createLeaseRunner<Doc>({
      log,
      name: 'test',
      sweepMs: 60_000,
      concurrency: 2,
      findWork: async (_now, limit, held) => {
        offeredHeld.push(held.idle());
        return [doc('a'), doc('b'), doc('c')].slice(0, limit);
      },
      claim: async (item) => item,
      run: async (item) => {
        ran.push(item.id);
        if (item.id === 'a') throw new Error('crashed');
        await blocked;
      },
    });
    await runner.sweep();
    expect(ran).toEqual(['a', 'b']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(runner.active).toEqual(['b']);
    await runner.sweep();
    expect(offeredHeld.at(-1)).toEqual(['a']);
    release();
    await runner.stop();
    expect(runner.active).toEqual([]);
  });

  it('should await take-overs and housekeeping in a sweep, and run no claim for them', async () => {
    const events: string[] = [];
    const runner = createLeaseRunner<Doc>({
      log,
      name: 'test',
      sweepMs: 60_000,
      concurrency: 10,
      findWork: async () => [doc('x'), doc('y')],
      takeOver: async (item) => void events.push(`took over ${item.id}`),
      housekeeping: async () => void events.push('housekeeping'),
    });
    await runner.sweep();
    expect(events).toEqual(['took over x', 'took over y', 'housekeeping']);
    await runner.stop();
  });
});
