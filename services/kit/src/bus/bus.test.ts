import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../log.js';
import { startNatsServer, type NatsServer } from '../testing/nats-server.js';
import { rawNats } from '../testing/raw-nats.js';
import { createBus, type Bus, type Delivery } from './bus.js';
import { BusError, PayloadSchemaError, PayloadTooLargeError } from './errors.js';
import { defineEvent, defineRequest, defineTopic, type StreamDef } from './subjects.js';

const log = createLogger('bus-test', 'silent');

const add = defineRequest('test.v1.add', {
  request: z.object({ a: z.number(), b: z.number() }),
  reply: z.object({ sum: z.number() }),
});
const fail = defineRequest('test.v1.fail', {
  request: z.object({ code: z.enum(['NOT_FOUND', 'CRASH']) }),
  reply: z.object({}),
});

/** As an agent's request for its credentials: a token in the subject, answered in the requester's own inbox. */
const renew = defineRequest('test.v1.{probeId}.renew', {
  request: z.object({ probeId: z.string() }),
  reply: z.object({ for: z.string() }),
  replyPrefix: '_INBOX_{probeId}',
});

const STREAM: StreamDef = { name: 'TEST', subjects: ['test.v1.things.>'] };
const thingChanged = defineEvent({
  prefix: 'test.v1.things',
  stream: STREAM.name,
  schema: z.object({ tenantId: z.string(), thingId: z.string(), n: z.number() }),
  keys: ['tenantId', 'thingId'] as const,
});

const pinged = defineTopic('test.v1.{probeId}.ping', z.object({ probeId: z.string(), n: z.number() }));

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

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
  const renewed: string[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    server = await createBus({ url: nats.url, name: 'server', log, credentials: await nats.credentials('server') });
    client = await createBus({ url: nats.url, name: 'client', log, credentials: await nats.credentials('client') });
    await server.ensureStreams([STREAM]);
    server.serve(add, async ({ a, b }) => ({ sum: a + b }));
    server.serve(renew, async ({ probeId }) => {
      renewed.push(probeId);
      return { for: probeId };
    });
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
    await expect(client.request(fail, { code: 'NOT_FOUND' })).rejects.toMatchObject({
      name: 'BusError',
      code: 'NOT_FOUND',
      message: 'no such thing',
    });
  });

  it('should hide an unexpected handler failure behind INTERNAL', async () => {
    await expect(client.request(fail, { code: 'CRASH' })).rejects.toMatchObject({
      code: 'INTERNAL',
      message: 'internal error',
    });
  });

  it('should refuse a malformed request with BAD_REQUEST and keep serving', async () => {
    const reply = await rawNats(client).connection.request(add.subject, new TextEncoder().encode('{"a":"x"}'));
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    const notJson = await rawNats(client).connection.request(add.subject, new TextEncoder().encode('not json'));
    expect(JSON.parse(new TextDecoder().decode(notJson.data))).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    await expect(client.request(add, { a: 1, b: 1 })).resolves.toEqual({ sum: 2 });
  });

  it("should refuse a request whose fields name another subject's tokens, without running its handler", async () => {
    const raw = rawNats(client).connection;
    const reply = await raw.request('test.v1.p1.renew', new TextEncoder().encode('{"probeId":"p2"}'));
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', message: "the request's fields name test.v1.p2.renew, not test.v1.p1.renew" },
    });
    expect(renewed).toEqual([]);
  });

  it("should answer only in an inbox, and in the requester's own where the definition says whose", async () => {
    const raw = rawNats(client).connection;
    const heard: string[] = [];
    for (const subject of ['test.v1.things.t1.x', '_INBOX.stolen', '_INBOX_p1.mine'])
      raw.subscribe(subject, { callback: (_e, m) => heard.push(m.subject) });
    await raw.flush();
    const body = (probeId: string) => new TextEncoder().encode(JSON.stringify({ probeId }));
    // A reply subject that is no inbox (a stream's subject, a JetStream API call): dropped unanswered.
    raw.publish('test.v1.p1.renew', body('p1'), { reply: 'test.v1.things.t1.x' });
    raw.publish(add.subject, new TextEncoder().encode('{"a":1,"b":2}'), { reply: 'test.v1.things.t1.x' });
    // An inbox, but not the requester's own.
    raw.publish('test.v1.p1.renew', body('p1'), { reply: '_INBOX.stolen' });
    // Its own.
    raw.publish('test.v1.p1.renew', body('p1'), { reply: '_INBOX_p1.mine' });
    await eventually(() => heard.length > 0, 'the answer in the inbox');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard).toEqual(['_INBOX_p1.mine']);
    expect(renewed).toEqual(['p1']);
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
    const consumption = await server.consume(thingChanged, {
      durable: 'durable-a',
      filter: thingChanged.filter('t1'),
      handle: c.handle,
    });
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
    const consumption = await server.consume(thingChanged, {
      durable: 'durable-dl',
      filter: thingChanged.filter('t4'),
      handle: c.handle,
    });
    await rawNats(client).jetstream.publish('test.v1.things.t4.bad', new TextEncoder().encode('{"tenantId":"t4"}'));
    await client.publish(thingChanged, { tenantId: 't4', thingId: 'good', n: 7 });
    await c.all;
    await consumption.stop();
    expect(c.received.map((d) => d.payload)).toEqual([{ tenantId: 't4', thingId: 'good', n: 7 }]);
    expect(server.deadLetters).toBe(before + 1);
    const jsm = await rawNats(client).manager();
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
  it('should send validated core messages to listeners of their subjects, and drop malformed ones unseen', async () => {
    const received: [string, number][] = [];
    const dropped: string[] = [];
    const listening = server.listen(pinged, {
      tokens: { probeId: 'p1' },
      handle: (p, subject) => received.push([subject, p.n]),
      malformed: (error) => dropped.push(error),
    });
    await server.flush();
    client.send(pinged, { probeId: 'p1', n: 1 });
    client.send(pinged, { probeId: 'p2', n: 2 });
    rawNats(client).connection.publish(
      pinged.subjectOf({ probeId: 'p1' }),
      new TextEncoder().encode('{"probeId":"p1"}'),
    );
    rawNats(client).connection.publish(pinged.subjectOf({ probeId: 'p1' }), new TextEncoder().encode('not json'));
    client.send(pinged, { probeId: 'p1', n: 3 });
    await eventually(() => received.length === 2 && dropped.length === 2, 'the messages');
    listening.unsubscribe();
    expect(received).toEqual([
      ['test.v1.p1.ping', 1],
      ['test.v1.p1.ping', 3],
    ]);
    expect(listening.malformed).toBe(2);
    expect(dropped).toEqual([
      expect.stringMatching(/^body does not match schema: n:/),
      expect.stringMatching(/^body is not JSON/),
    ]);
  });

  it('should refuse to send what does not match the schema, or is longer than allowed', () => {
    expect(() => client.send(pinged, { probeId: 'p1' } as never)).toThrow(PayloadSchemaError);
    expect(() => client.send(pinged, { probeId: 'p.1', n: 1 })).toThrow(TypeError);
    expect(() => client.send(pinged, { probeId: 'p1', n: 1 }, { maxBytes: 8 })).toThrow(PayloadTooLargeError);
    expect(() => server.listen(pinged, { tokens: { clusterId: 'x' }, handle: () => {} })).toThrow(TypeError);
  });

  it('should store an event sent without acknowledgement, and read it back by subject and sequence', async () => {
    client.send(thingChanged, { tenantId: 't6', thingId: 'a', n: 1 });
    client.send(thingChanged, { tenantId: 't6', thingId: 'a', n: 2 });
    await client.flush();
    await eventually(
      async () =>
        (await server.lastMessage(STREAM.name, thingChanged.subject({ tenantId: 't6', thingId: 'a', n: 0 })))?.data
          .length !== undefined,
      'the stored event',
    );
    const last = await server.lastMessage(STREAM.name, thingChanged.filter('t6', 'a'));
    expect(JSON.parse(new TextDecoder().decode(last!.data))).toEqual({ tenantId: 't6', thingId: 'a', n: 2 });
    expect(await server.lastMessage(STREAM.name, thingChanged.filter('t6', 'none'))).toBeUndefined();
    const state = await server.streamState(STREAM.name, { subjects: thingChanged.filter('t6') });
    expect(state.subjects).toEqual({ 'test.v1.things.t6.a': 2 });
    expect(state.lastSeq).toBe(last!.seq);

    const seen: number[] = [];
    const watch = await server.watch(STREAM.name, thingChanged.filter('t6', 'a'), {
      startSeq: last!.seq,
      onMessage: (m) => seen.push(JSON.parse(new TextDecoder().decode(m.data)).n),
    });
    await client.publish(thingChanged, { tenantId: 't6', thingId: 'a', n: 3 });
    await eventually(() => seen.length === 2, 'the watched events');
    await watch.stop();
    await expect(watch.ended).resolves.toBeUndefined();
    expect(seen).toEqual([2, 3]);
  });

  it('should follow a stream from its first event, dead-letter a malformed one once, and say when it caught up', async () => {
    await client.publish(thingChanged, { tenantId: 't7', thingId: 'a', n: 1 });
    await rawNats(client).jetstream.publish('test.v1.things.t7.bad', new TextEncoder().encode('[]'));
    const payloads: number[] = [];
    const first = server.follow(thingChanged, {
      filter: thingChanged.filter('t7'),
      handle: ({ payload }) => void payloads.push(payload.n),
    });
    await first.caughtUp;
    const second = server.follow(thingChanged, { filter: thingChanged.filter('t7'), handle: () => {} });
    await second.caughtUp;
    await client.publish(thingChanged, { tenantId: 't7', thingId: 'b', n: 2 });
    await eventually(() => payloads.length === 2, 'the live event');
    await Promise.all([first.stop(), second.stop()]);
    expect(payloads).toEqual([1, 2]);
    expect([first.malformed, second.malformed]).toEqual([1, 1]);
    const state = await client.streamState('DEADLETTER', { subjects: 'deadletter.test.v1.things.t7.>' });
    expect(state.subjects).toEqual({ 'deadletter.test.v1.things.t7.bad': 1 });
  });

  it('should be ready only while JetStream answers for every stream it ensured and every consumer it reads', async () => {
    const probe = await createBus({ url: nats.url, name: 'probe', log, credentials: await nats.credentials('probe') });
    try {
      await probe.ensureStreams([STREAM]);
      const consumption = await probe.consume(thingChanged, {
        durable: 'ready-probe',
        filter: thingChanged.filter('t9'),
        handle: async () => {},
      });
      await expect(probe.jetStreamReady()).resolves.toBeUndefined();
      await consumption.stop();
      // Its consumer gone (as when the stream lost its leader): not ready, and it says which.
      await (await probe.manager()).consumers.delete(STREAM.name, 'ready-probe');
      await expect(probe.jetStreamReady()).rejects.toThrow(/consumer not found/i);
    } finally {
      await probe.close();
    }
  });
});

describe('bus connection status against a nats-server that goes away', () => {
  it('should tell listeners when the connection is lost and when it is back', async () => {
    let nats = await startNatsServer();
    const bus = await createBus({ url: nats.url, name: 'status', log, credentials: await nats.credentials('status') });
    const statuses: string[] = [];
    const connectedAtEach: boolean[] = [];
    const stop = bus.onStatus((status) => {
      statuses.push(status);
      connectedAtEach.push(bus.connected);
    });
    try {
      await nats.stop();
      await eventually(() => statuses.length === 1, 'the disconnect');
      nats = await startNatsServer({ port: nats.port, security: nats.security });
      await eventually(() => statuses.length === 2, 'the reconnect', 10_000);
      stop();
      expect(statuses).toEqual(['disconnect', 'reconnect']);
      expect(connectedAtEach).toEqual([false, true]);
      expect(bus.closed).toBe(false);
    } finally {
      await bus.close();
      await nats.stop();
    }
    expect(bus.closed).toBe(true);
  });
});
