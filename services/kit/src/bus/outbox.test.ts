import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../log.js';
import { createSqliteStore } from '../store/sqlite.js';
import { write, type Store } from '../store/store.js';
import { startNatsServer, type NatsServer } from '../testing/nats-server.js';
import { rawNats } from '../testing/raw-nats.js';
import { createBus, type Bus } from './bus.js';
import { createOutbox, type Published } from './outbox.js';
import { defineEvent, type StreamDef } from './subjects.js';

const log = createLogger('outbox-test', 'silent');
const STREAM: StreamDef = { name: 'OUTBOXTEST', subjects: ['outboxtest.v1.>'] };
const noted = defineEvent({
  prefix: 'outboxtest.v1.noted',
  stream: STREAM.name,
  schema: z.object({ tenantId: z.string(), thingId: z.string(), n: z.number() }),
  keys: ['tenantId', 'thingId'] as const,
});

interface Thing {
  id: string;
  version: number;
  n: number;
}

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every message of the stream, in stream order: its thing, n and sequence. */
async function streamed(bus: Bus): Promise<{ thingId: string; n: number; seq: number }[]> {
  const m = await rawNats(bus).manager();
  const info = await m.streams.info(STREAM.name);
  const out: { thingId: string; n: number; seq: number }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const msg = await m.streams.getMessage(STREAM.name, { seq });
    const body = JSON.parse(new TextDecoder().decode(msg.data)) as { thingId: string; n: number };
    out.push({ thingId: body.thingId, n: body.n, seq });
  }
  return out;
}

describe('outbox against a real nats-server', () => {
  let nats: NatsServer;
  let natsDir: string;
  let store: Store;
  let bus: Bus;

  beforeAll(async () => {
    natsDir = await mkdtemp(join(tmpdir(), 'fleetgraph-outbox-'));
    nats = await startNatsServer({ storeDir: natsDir });
    store = createSqliteStore({ file: ':memory:' });
    bus = await createBus({
      url: nats.url,
      name: 'outbox-test',
      log,
      credentials: await nats.credentials('outbox-test'),
    });
    await bus.ensureStreams([STREAM]);
  });

  afterAll(async () => {
    await bus?.close();
    await store?.close();
    await nats?.stop();
    await rm(natsDir, { recursive: true, force: true });
  });

  it('should store state and event together, publish while NATS is away later, in order per key, once each', async () => {
    const things = await store.collection<Thing>({ name: 'things', indexes: [] });
    const outbox = await createOutbox({
      store,
      bus,
      log,
      events: [noted],
      pollMs: 100,
      backoff: { baseMs: 50, capMs: 300 },
    });
    const handled: Published<{ thingId: string; n: number }>[] = [];
    outbox.onPublished(noted, async (events) => void handled.push(...events));
    outbox.start();

    const change = async (thingId: string, n: number) => {
      const current = (await things.get(thingId)) ?? (await things.insert({ id: thingId, n: 0 }));
      await store.commit([
        write.replace(things, { ...current, n }),
        outbox.add(noted, { tenantId: 't1', thingId, n }, { key: thingId }),
      ]);
      outbox.kick();
    };
    await change('a', 1);
    await eventually(() => handled.length === 1);

    // NATS goes away: writers are not held up, and nothing is lost.
    const port = nats.port;
    await nats.stop();
    const started = Date.now();
    for (let n = 2; n <= 6; n++) {
      await change('a', n);
      await change('b', n);
    }
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await outbox.pending()).toBe(10);
    expect((await things.get('a'))?.n).toBe(6);

    nats = await startNatsServer({ storeDir: natsDir, port, security: nats.security });
    await eventually(async () => (await outbox.pending()) === 0);
    await outbox.stop();

    const messages = await streamed(bus);
    const of = (id: string) => messages.filter((m) => m.thingId === id).map((m) => m.n);
    expect(of('a')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(of('b')).toEqual([2, 3, 4, 5, 6]);
    // Handlers saw every event with its stream sequence, in order per key.
    expect(handled.filter((e) => e.payload.thingId === 'a').map((e) => e.payload.n)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const event of handled) expect(messages.find((m) => m.seq === event.seq)?.n).toBe(event.payload.n);
    expect(outbox.stats.failures).toBeGreaterThan(0);
  }, 60_000);

  it('should write neither the state nor the event when the state change conflicts', async () => {
    const things = await store.collection<Thing>({ name: 'things2', indexes: [] });
    const outbox = await createOutbox({ store, bus, log, events: [noted], collection: 'outbox2' });
    const thing = await things.insert({ id: 'c', n: 0 });
    await things.replace(thing);

    await expect(
      store.commit([
        write.replace(things, { ...thing, n: 1 }),
        outbox.add(noted, { tenantId: 't1', thingId: 'c', n: 1 }, { key: 'c' }),
      ]),
    ).rejects.toThrow();

    expect(await outbox.pending()).toBe(0);
  });

  it('should refuse an event that does not match its schema before anything is written', async () => {
    const outbox = await createOutbox({ store, bus, log, events: [noted], collection: 'outbox3' });
    expect(() => outbox.add(noted, { tenantId: 't1', thingId: 'x', n: 'one' } as never, { key: 'x' })).toThrow(
      TypeError,
    );
    expect(() => outbox.add(noted, { tenantId: 't.1', thingId: 'x', n: 1 }, { key: 'x' })).toThrow(TypeError);
  });

  it('should publish again an entry whose handler failed, as a duplicate the stream drops', async () => {
    const outbox = await createOutbox({
      store,
      bus,
      log,
      events: [noted],
      collection: 'outbox4',
      pollMs: 50,
      backoff: { baseMs: 20, capMs: 100 },
    });
    const seqs: number[] = [];
    let fail = true;
    outbox.onPublished(noted, async (events) => {
      seqs.push(...events.map((e) => e.seq));
      if (fail) {
        fail = false;
        throw new Error('store away');
      }
    });
    const before = (await streamed(bus)).length;
    await store.commit([outbox.add(noted, { tenantId: 't1', thingId: 'd', n: 1 }, { key: 'd' })]);
    outbox.start();
    await eventually(async () => (await outbox.pending()) === 0);
    await outbox.stop();

    expect(seqs).toHaveLength(2);
    expect(seqs[0]).toBe(seqs[1]);
    expect((await streamed(bus)).length).toBe(before + 1);
  });
  it("should hand a round's events of many keys to one handler call, and hold back only a key whose handler fails", async () => {
    const outbox = await createOutbox({
      store,
      bus,
      log,
      events: [noted],
      collection: 'outbox5',
      pollMs: 50,
      backoff: { baseMs: 20, capMs: 100 },
    });
    const calls: string[][] = [];
    const handled: { thingId: string; n: number }[] = [];
    outbox.onPublished(noted, async (events) => {
      calls.push(events.map((e) => e.payload.thingId));
      if (events.some((e) => e.payload.thingId === 'poison')) throw new Error('cannot store this one');
      handled.push(...events.map((e) => ({ thingId: e.payload.thingId, n: e.payload.n })));
    });
    const things = ['k1', 'k2', 'k3', 'k4'];
    await store.commit(
      things.flatMap((thingId) =>
        [1, 2].map((n) => outbox.add(noted, { tenantId: 't1', thingId, n }, { key: thingId })),
      ),
    );
    outbox.start();
    await eventually(async () => (await outbox.pending()) === 0);
    // One round, one call: every key's events, each key's in order.
    expect(calls).toEqual([['k1', 'k1', 'k2', 'k2', 'k3', 'k3', 'k4', 'k4']]);

    calls.length = 0;
    handled.length = 0;
    await store.commit([
      outbox.add(noted, { tenantId: 't1', thingId: 'poison', n: 1 }, { key: 'poison' }),
      outbox.add(noted, { tenantId: 't1', thingId: 'k5', n: 1 }, { key: 'k5' }),
    ]);
    outbox.kick();
    await eventually(() => handled.some((e) => e.thingId === 'k5'));
    await eventually(() => calls.length >= 6); // a few retries of the poisoned key
    await outbox.stop();
    // The good key went through once; the poisoned one is still waiting, retried alone.
    expect(handled).toEqual([{ thingId: 'k5', n: 1 }]);
    expect(await outbox.pending()).toBe(1);
    expect(calls.slice(0, 3)).toEqual([['poison', 'k5'], ['poison'], ['k5']]);
    expect(calls.slice(3).every((call) => call.length === 1 && call[0] === 'poison')).toBe(true);
  });
});
