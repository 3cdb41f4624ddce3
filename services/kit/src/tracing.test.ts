import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, type Bus } from './bus/bus.js';
import { createOutbox } from './bus/outbox.js';
import { defineEvent, defineRequest, defineTopic, type StreamDef } from './bus/subjects.js';
import { createLogger, logContext, requestIdOf, withRequestScope } from './log.js';
import { requestIds } from './server/health.js';
import { observeRequests } from './server/observe.js';
import { createSqliteStore } from './store/sqlite.js';
import type { Store } from './store/store.js';
import { startNatsServer, type NatsServer } from './testing/nats-server.js';
import { inSpan, SpanKind, startTracing, tracedFetch, type Tracing } from './tracing.js';

const log = createLogger('tracing-test', 'silent');
const STREAM: StreamDef = { name: 'TRACED', subjects: ['traced.v1.noted.>'] };
const noted = defineEvent({
  prefix: 'traced.v1.noted',
  stream: STREAM.name,
  schema: z.object({ tenantId: z.string(), thingId: z.string() }),
  keys: ['tenantId', 'thingId'] as const,
});
const echo = defineRequest('traced.v1.echo', {
  request: z.object({ n: z.number() }),
  reply: z.object({ n: z.number() }),
});
const pinged = defineTopic('traced.v1.{probeId}.ping', z.object({ probeId: z.string() }));

async function eventually<T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('traces through the kit (an in-memory exporter, a real nats-server)', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let nats: NatsServer;
  let store: Store;
  let bus: Bus;
  const spans = () => exporter.getFinishedSpans();
  const named = (name: string) => spans().filter((s) => s.name === name);

  beforeAll(async () => {
    tracing = await startTracing('tracing-test', { exporter });
    nats = await startNatsServer();
    store = createSqliteStore({ file: ':memory:' });
    bus = await createBus({ url: nats.url, name: 'tracing-test', log, credentials: await nats.credentials('tracing') });
    await bus.ensureStreams([STREAM]);
  });

  afterAll(async () => {
    await bus?.close();
    await store?.close();
    await nats?.stop();
    await tracing?.shutdown();
  });

  it('should continue a request in its handler, over NATS headers', async () => {
    const served = bus.serve(echo, async ({ n }) => ({ n }));
    try {
      await inSpan('caller', {}, () => bus.request(echo, { n: 1 }));
      const caller = named('caller')[0]!;
      const request = await eventually(() => named('request traced.v1.echo')[0], 'the request span');
      const handler = await eventually(() => named('process traced.v1.echo')[0], 'the handler span');
      expect(request.kind).toBe(SpanKind.CLIENT);
      expect(handler.kind).toBe(SpanKind.SERVER);
      expect(request.spanContext().traceId).toBe(caller.spanContext().traceId);
      expect(parentOf(request)).toBe(caller.spanContext().spanId);
      expect(handler.spanContext().traceId).toBe(caller.spanContext().traceId);
      expect(parentOf(handler)).toBe(request.spanContext().spanId);
      expect(handler.attributes['messaging.destination.name']).toBe('traced.v1.echo');
    } finally {
      served.unsubscribe();
    }
  });

  it('should carry an outbox entry trace to its publish, and the publish to its consumers', async () => {
    const outbox = await createOutbox({ store, bus, log, events: [noted] });
    const consumed: string[] = [];
    const consumption = await bus.consume(noted, {
      durable: 'traced',
      handle: async () => void consumed.push('durable'),
    });
    const following = bus.follow(noted, { handle: () => void consumed.push('follower') });
    const watched: number[] = [];
    const watch = await bus.watch(STREAM.name, 'traced.v1.noted.>', { onMessage: (m) => void watched.push(m.seq) });
    try {
      // The write happens inside a request's span; the relay publishes later, outside it.
      await inSpan('mutation', {}, () =>
        store.commit([outbox.add(noted, { tenantId: 't1', thingId: 'a' }, { key: 'a' })]),
      );
      const mutation = named('mutation')[0]!;
      outbox.start();
      const publish = await eventually(() => named('publish traced.v1.noted')[0], 'the publish span');
      expect(publish.kind).toBe(SpanKind.PRODUCER);
      expect(publish.spanContext().traceId).toBe(mutation.spanContext().traceId);
      expect(parentOf(publish)).toBe(mutation.spanContext().spanId);
      expect(publish.attributes['messaging.destination.name']).toBe('traced.v1.noted.t1.a');

      // Durable consumer, follower and watch: each handling a child of the publish.
      const processed = await eventually(() => {
        const found = named('process traced.v1.noted').concat(named('process TRACED'));
        return found.length >= 3 ? found : undefined;
      }, 'three handlings');
      for (const span of processed) {
        expect(span.kind).toBe(SpanKind.CONSUMER);
        expect(span.spanContext().traceId).toBe(mutation.spanContext().traceId);
        expect(parentOf(span)).toBe(publish.spanContext().spanId);
      }
      expect(consumed.sort()).toEqual(['durable', 'follower']);
      expect(watched).toHaveLength(1);
    } finally {
      await outbox.stop();
      await consumption.stop();
      await following.stop();
      await watch.stop();
    }
  });

  it('should continue a core NATS message in its listener', async () => {
    let listenedIn: string | undefined;
    const listening = bus.listen(pinged, {
      handle: () => {
        listenedIn = 'handled';
      },
    });
    try {
      await bus.flush();
      inSpan('reporter', {}, () => bus.send(pinged, { probeId: 'p1' }));
      const reporter = named('reporter')[0]!;
      const handled = await eventually(() => named('process traced.v1.{probeId}.ping')[0], 'the listener span');
      const sent = named('send traced.v1.{probeId}.ping')[0]!;
      expect(listenedIn).toBe('handled');
      expect(parentOf(sent)).toBe(reporter.spanContext().spanId);
      expect(parentOf(handled)).toBe(sent.spanContext().spanId);
    } finally {
      listening.unsubscribe();
    }
  });

  it('should trace HTTP in and out, and log one access line with the trace ids', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const accessLog = pino({ level: 'debug' }, sink);
    const app = express();
    app.use(requestIds());
    app.use(observeRequests(accessLog));
    app.post('/graphql', (_req, res) => {
      log.info('inside');
      res.json({ data: {} });
    });
    app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const send = tracedFetch('test');
      const response = await inSpan('client', {}, () =>
        send(`${url}/graphql?token=secret`, { method: 'POST', headers: { 'x-request-id': 'req-1' } }),
      );
      expect(response.headers.get('x-request-id')).toBe('req-1');
      await fetch(`${url}/healthz`);
      const client = named('client')[0]!;
      const outgoing = await eventually(() => named('POST test')[0], 'the client span');
      const incoming = await eventually(() => named('POST /graphql')[0], 'the server span');
      expect(outgoing.kind).toBe(SpanKind.CLIENT);
      expect(parentOf(outgoing)).toBe(client.spanContext().spanId);
      expect(incoming.kind).toBe(SpanKind.SERVER);
      expect(parentOf(incoming)).toBe(outgoing.spanContext().spanId);
      expect(incoming.attributes['http.response.status_code']).toBe(200);
      expect(named('GET /healthz')).toHaveLength(0);

      const access = await eventually(() => (lines.length >= 2 ? lines : undefined), 'two access lines');
      const [graphql, health] = access;
      expect(graphql).toMatchObject({
        level: 30,
        msg: 'http request',
        method: 'POST',
        path: '/graphql',
        status: 200,
        requestId: 'req-1',
        traceId: incoming.spanContext().traceId,
        spanId: incoming.spanContext().spanId,
      });
      expect(typeof graphql!.durationMs).toBe('number');
      expect(JSON.stringify(access)).not.toContain('secret');
      expect(health).toMatchObject({ level: 20, path: '/healthz', status: 200 });
      expect(requestIdOf(String(health!.requestId))).toBe(health!.requestId);
    } finally {
      server.close();
    }
  });

  it('should stamp log lines inside a span with its trace and span ids', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const logger = pino({ mixin: logContext }, sink);
    const ids = withRequestScope('req-2', () =>
      inSpan('work', {}, (span) => {
        logger.info('inside');
        return span.spanContext();
      }),
    );
    logger.info('outside');
    expect(lines[0]).toMatchObject({ msg: 'inside', requestId: 'req-2', traceId: ids.traceId, spanId: ids.spanId });
    expect(lines[1]).not.toHaveProperty('traceId');
    expect(lines[1]).not.toHaveProperty('spanId');
  });
});
