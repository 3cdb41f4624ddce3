import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../log.js';
import { startNatsServer, type NatsServer } from '../testing/nats-server.js';
import { createBus, type Bus, type Delivery } from './bus.js';
import { BusError } from './errors.js';
import { defineEvent, defineRequest, type StreamDef } from './subjects.js';

const log = createLogger('bus-test', 'silent');

const add = defineRequest('test.v1.add', {
  request: z.object({ a: z.number(), b: z.number() }),
  reply: z.object({ sum: z.number() }),
});
const fail = defineRequest('test.v1.fail', { request: z.object({ code: z.enum(['NOT_FOUND', 'CRASH']) }), reply: z.object({}) });

const STREAM: StreamDef = { name: 'TEST', subjects: ['test.v1.things.>'] };
const thingChanged = defineEvent({
  prefix: 'test.v1.things',
  stream: STREAM.name,
  schema: z.object({ tenantId: z.string(), thingId: z.string(), n: z.number() }),
  keys: ['tenantId', 'thingId'] as const,
});

/** Collects deliveries until `count` arrived. */
function collector<P>(count: number) {
  const received: Delivery<P>[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  return {
    received,
    all,
    handle: async (d: Delivery<P>) => {
      received.push(d);
      if (received.length >= count) done();
    },
  };
}

describe('bus against a real nats-server', () => {
  let nats: NatsServer;
  let server: Bus;
  let client: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    server = await createBus({ url: nats.url, name: 'server', log });
    client = await createBus({ url: nats.url, name: 'client', log });
    await server.ensureStreams([STREAM]);
    server.serve(add, async ({ a, b }) => ({ sum: a + b }));
    server.serve(fail, async ({ code }) => {
      if (code === 'NOT_FOUND') throw new BusError('NOT_FOUND', 'no such thing');
      throw new Error('boom with secrets');
    });
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await nats?.stop();
  });

  it('should answer a typed request', async () => {
    await expect(client.request(add, { a: 2, b: 3 })).resolves.toEqual({ sum: 5 });
  });

  it('should carry a handler error as code and message', async () => {
    await expect(client.request(fail, { code: 'NOT_FOUND' })).rejects.toMatchObject({ name: 'BusError', code: 'NOT_FOUND', message: 'no such thing' });
  });

  it('should hide an unexpected handler failure behind INTERNAL', async () => {
    await expect(client.request(fail, { code: 'CRASH' })).rejects.toMatchObject({ code: 'INTERNAL', message: 'internal error' });
  });

  it('should refuse a malformed request with BAD_REQUEST and keep serving', async () => {
    const reply = await client.connection.request(add.subject, new TextEncoder().encode('{"a":"x"}'));
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const notJson = await client.connection.request(add.subject, new TextEncoder().encode('not json'));
    expect(JSON.parse(new TextDecoder().decode(notJson.data))).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    await expect(client.request(add, { a: 1, b: 1 })).resolves.toEqual({ sum: 2 });
  });

  it('should validate a request before sending it', async () => {
    await expect(client.request(add, { a: 1 } as never)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('should report NO_RESPONDERS when nobody serves the subject', async () => {
    const nobody = defineRequest('test.v1.nobody', { request: z.object({}), reply: z.object({}) });
    await expect(client.request(nobody, {})).rejects.toMatchObject({ code: 'NO_RESPONDERS' });
  });

  it('should publish to JetStream and deliver to a durable consumer', async () => {
    const c = collector<z.infer<typeof thingChanged.schema>>(2);
    const consumption = await server.consume(thingChanged, { durable: 'durable-a', filter: thingChanged.filter('t1'), handle: c.handle });
    await client.publish(thingChanged, { tenantId: 't1', thingId: 'x', n: 1 });
    await client.publish(thingChanged, { tenantId: 't2', thingId: 'x', n: 2 });
    await client.publish(thingChanged, { tenantId: 't1', thingId: 'y', n: 3 });
    await c.all;
    await consumption.stop();
    expect(c.received.map((d) => [d.subject, d.payload.n])).toEqual([
      ['test.v1.things.t1.x', 1],
      ['test.v1.things.t1.y', 3],
    ]);
    expect(c.received[1]!.seq).toBeGreaterThan(c.received[0]!.seq);
  });

  it('should drop a republished message id as a duplicate', async () => {
    const first = await client.publish(thingChanged, { tenantId: 't3', thingId: 'd', n: 1 }, { msgId: 'same-id' });
    const again = await client.publish(thingChanged, { tenantId: 't3', thingId: 'd', n: 1 }, { msgId: 'same-id' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ seq: first.seq, duplicate: true });
  });

  it('should dead-letter a malformed event and go on consuming', async () => {
    const c = collector<z.infer<typeof thingChanged.schema>>(1);
    const before = server.deadLetters;
    const consumption = await server.consume(thingChanged, { durable: 'durable-dl', filter: thingChanged.filter('t4'), handle: c.handle });
    await client.jetstream.publish('test.v1.things.t4.bad', new TextEncoder().encode('{"tenantId":"t4"}'));
    await client.publish(thingChanged, { tenantId: 't4', thingId: 'good', n: 7 });
    await c.all;
    await consumption.stop();
    expect(c.received.map((d) => d.payload)).toEqual([{ tenantId: 't4', thingId: 'good', n: 7 }]);
    expect(server.deadLetters).toBe(before + 1);
    const jsm = await client.connection.jetstreamManager();
    const dead = await jsm.streams.getMessage('DEADLETTER', { last_by_subj: 'deadletter.test.v1.things.t4.bad' });
    expect(new TextDecoder().decode(dead.data)).toBe('{"tenantId":"t4"}');
    expect(dead.header.get('fleetgraph-error')).toMatch(/does not match schema/);
  });

  it('should refuse subject tokens that would change the subject', () => {
    expect(() => thingChanged.subject({ tenantId: 't1.>', thingId: 'x', n: 1 })).toThrow(TypeError);
    expect(() => thingChanged.filter('*')).toThrow(TypeError);
  });

  it('should redeliver an event whose handler failed', async () => {
    let calls = 0;
    const c = collector<z.infer<typeof thingChanged.schema>>(1);
    const consumption = await server.consume(thingChanged, {
      durable: 'durable-retry',
      filter: thingChanged.filter('t5'),
      handle: async (d) => {
        if (++calls === 1) throw new Error('transient');
        await c.handle(d);
      },
    });
    await client.publish(thingChanged, { tenantId: 't5', thingId: 'r', n: 1 });
    await c.all;
    await consumption.stop();
    expect(calls).toBe(2);
  });
});
