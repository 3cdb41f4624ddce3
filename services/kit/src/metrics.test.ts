import type { AddressInfo } from 'node:net';
import express from 'express';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, type Bus } from './bus/bus.js';
import { BusError } from './bus/errors.js';
import { defineEvent, defineRequest, defineTopic, type StreamDef } from './bus/subjects.js';
import { claimLease, leaseFields } from './lease.js';
import { createLogger } from './log.js';
import { capLabel, createMetricsRegistry, metricsHandler, processRegistry } from './metrics.js';
import { meterRequests } from './server/http-metrics.js';
import { VersionConflictError } from './store/store.js';
import { startNatsServer, type NatsServer } from './testing/nats-server.js';

const log = createLogger('metrics-test', 'silent');

/** The samples of a metric of the process's registry whose labels include `labels`. */
async function samples(name: string, labels: Record<string, string> = {}): Promise<MetricValue<string>[]> {
  const metric = processRegistry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = (await metric.get()) as MetricObjectWithValues<MetricValue<string>>;
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
}

/** A histogram's count of observations with these labels. */
async function count(name: string, labels: Record<string, string>): Promise<number> {
  const found = (await samples(name, labels)).find(
    (v) => (v as { metricName?: string }).metricName === `${name}_count`,
  );
  return found?.value ?? 0;
}

const add = defineRequest('metrics.v1.{tenantId}.add', {
  request: z.object({ tenantId: z.string(), a: z.number(), b: z.number() }),
  reply: z.object({ sum: z.number() }),
});
const STREAM: StreamDef = { name: 'METRICS_TEST', subjects: ['metrics.v1.things.>'] };
const thingChanged = defineEvent({
  prefix: 'metrics.v1.things',
  stream: STREAM.name,
  schema: z.object({ tenantId: z.string(), thingId: z.string(), fail: z.boolean() }),
  keys: ['tenantId', 'thingId'] as const,
});
const pinged = defineTopic('metrics.v1.{probeId}.ping', z.object({ probeId: z.string() }));

describe('metrics', () => {
  let nats: NatsServer;
  let server: Bus;
  let client: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    server = await createBus({ url: nats.url, name: 'server', log, credentials: await nats.credentials('server') });
    client = await createBus({ url: nats.url, name: 'client', log, credentials: await nats.credentials('client') });
    await server.ensureStreams([STREAM]);
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
    await nats?.stop();
  });

  it('should serve the process defaults, every request measured, and each instance registry at /metrics', async () => {
    const instance = createMetricsRegistry();
    instance.gauge('fleetgraph_test_widgets', 'Widgets.', () => 7);
    const app = express();
    app.use(meterRequests());
    app.get('/metrics', metricsHandler(instance.registry));
    const listening = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listening.once('listening', resolve));
    try {
      const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
      await fetch(`${base}/logs/download/b_123/x.tar.gz`);
      await fetch(`${base}/wp-admin/${Math.random()}`);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
      expect(text).toMatch(/^fleetgraph_test_widgets 7$/m);
      expect(text).toContain('# TYPE fleetgraph_http_request_duration_seconds histogram');
      // Paths with ids or made up by scanners are bounded routes.
      expect(
        await count('fleetgraph_http_request_duration_seconds', { route: '/logs/download', status_code: '404' }),
      ).toBe(1);
      expect(await count('fleetgraph_http_request_duration_seconds', { route: 'other', status_code: '404' })).toBe(1);
      expect(text).not.toContain('b_123');
    } finally {
      await new Promise((resolve) => listening.close(resolve));
    }
  });

  it('should measure requests and handlers by subject template and outcome, never by a subject with ids', async () => {
    const subject = add.subject;
    server.serve(add, async ({ a, b }) => {
      if (a < 0) throw new BusError('NOT_FOUND', 'no such thing');
      if (a === 13) throw new Error('boom');
      return { sum: a + b };
    });
    await server.flush();
    await client.request(add, { tenantId: 't-1', a: 1, b: 2 });
    await expect(client.request(add, { tenantId: 't-2', a: -1, b: 2 })).rejects.toThrow(BusError);
    await expect(client.request(add, { tenantId: 't-3', a: 13, b: 2 })).rejects.toThrow(BusError);

    expect(await count('fleetgraph_nats_request_duration_seconds', { subject, outcome: 'ok' })).toBe(1);
    expect(await count('fleetgraph_nats_request_duration_seconds', { subject, outcome: 'NOT_FOUND' })).toBe(1);
    expect(await count('fleetgraph_nats_request_duration_seconds', { subject, outcome: 'INTERNAL' })).toBe(1);
    expect(await count('fleetgraph_nats_handler_duration_seconds', { kind: 'request', subject, outcome: 'ok' })).toBe(
      1,
    );
    expect(
      await count('fleetgraph_nats_handler_duration_seconds', { kind: 'request', subject, outcome: 'NOT_FOUND' }),
    ).toBe(1);
    expect(
      await count('fleetgraph_nats_handler_duration_seconds', { kind: 'request', subject, outcome: 'INTERNAL' }),
    ).toBe(1);
    const text = await processRegistry.metrics();
    expect(text).toContain('subject="metrics.v1.{tenantId}.add"');
    expect(text).not.toMatch(/metrics\.v1\.t-\d/);
  });

  it('should measure publishes, consumed events with their failures, and topics', async () => {
    let failures = 0;
    const handled = new Set<string>();
    const consumption = await server.consume(thingChanged, {
      durable: 'metrics-test',
      handle: async ({ payload }) => {
        if (payload.fail && failures++ === 0) throw new Error('once');
        handled.add(payload.thingId);
      },
    });
    const listening = server.listen(pinged, { handle: () => {} });
    try {
      await client.publish(thingChanged, { tenantId: 't', thingId: 'a', fail: false });
      await client.publish(thingChanged, { tenantId: 't', thingId: 'b', fail: true });
      client.send(pinged, { probeId: 'p-1' });
      await client.flush();
      const deadline = Date.now() + 10_000;
      while (handled.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(handled.size).toBe(2);
      const prefix = thingChanged.prefix;
      expect(await count('fleetgraph_nats_publish_duration_seconds', { subject: prefix, outcome: 'ok' })).toBe(2);
      expect(
        await count('fleetgraph_nats_handler_duration_seconds', { kind: 'event', subject: prefix, outcome: 'ok' }),
      ).toBe(2);
      expect(
        await count('fleetgraph_nats_handler_duration_seconds', { kind: 'event', subject: prefix, outcome: 'error' }),
      ).toBe(1);
      expect((await samples('fleetgraph_nats_messages_sent_total', { subject: pinged.template }))[0]?.value).toBe(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(
        await count('fleetgraph_nats_handler_duration_seconds', {
          kind: 'topic',
          subject: pinged.template,
          outcome: 'ok',
        }),
      ).toBe(1);
    } finally {
      listening.unsubscribe();
      await consumption.stop();
    }
  });

  it('should count a lease taken over from another owner, and not a lease renewed or free', async () => {
    type Doc = { id: string; version: number; owner: string | null; until: number | null };
    const docs = new Map<string, Doc>();
    const target = {
      name: 'metrics_test_things',
      get: async (id: string) => docs.get(id) ?? null,
      replace: async (doc: Doc) => {
        if (docs.get(doc.id)?.version !== doc.version)
          throw new VersionConflictError('metrics_test_things', doc.id, doc.version);
        const next = { ...doc, version: doc.version + 1 };
        docs.set(doc.id, next);
        return next;
      },
    };
    const fields = leaseFields<Doc>({ owner: 'owner', until: 'until', time: 'epoch-ms' });
    const takeovers = async () =>
      (await samples('fleetgraph_lease_takeovers_total', { work: 'metrics_test_things' }))[0]?.value ?? 0;
    docs.set('free', { id: 'free', version: 1, owner: null, until: null });
    docs.set('expired', { id: 'expired', version: 1, owner: 'dead', until: 1 });
    docs.set('held', { id: 'held', version: 1, owner: 'alive', until: Date.now() + 60_000 });
    const claim = (id: string) => claimLease(target, fields, id, { owner: 'me', leaseMs: 1_000 });
    expect(await claim('free')).not.toBeNull();
    expect(await claim('free')).not.toBeNull();
    expect(await claim('held')).toBeNull();
    expect(await takeovers()).toBe(0);
    expect(await claim('expired')).not.toBeNull();
    expect(await takeovers()).toBe(1);
  });

  it('should keep known label values and the first others, every later one as other', () => {
    const label = capLabel({ known: ['CreateCluster'], max: 2 });
    expect(['a', 'b', 'c', 'a', 'CreateCluster'].map(label)).toEqual(['a', 'b', 'other', 'a', 'CreateCluster']);
  });
});
