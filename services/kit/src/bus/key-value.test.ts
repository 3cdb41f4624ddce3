import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../log.js';
import { startNatsServer, type NatsServer } from '../testing/nats-server.js';
import { rawNats } from '../testing/raw-nats.js';
import { createBus, type Bus } from './bus.js';
import { defineKeyValue, KeyValueConflictError } from './key-value.js';

const log = createLogger('key-value-test', 'silent');
const COUNTERS = defineKeyValue({
  bucket: 'TEST_COUNTERS',
  schema: z.object({ n: z.number() }),
  ttlMs: 60_000,
  storage: 'memory',
});

describe('key-value buckets against a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await createBus({ url: nats.url, name: 'kv', log, credentials: await nats.credentials('kv') });
  });

  afterAll(async () => {
    await bus?.close();
    await nats?.stop();
  });

  it('should create a key once, and update it only from its last revision', async () => {
    const counters = bus.keyValue(COUNTERS);
    expect(await counters.get('a')).toBeUndefined();
    const first = await counters.create('a', { n: 1 });
    await expect(counters.create('a', { n: 2 })).rejects.toBeInstanceOf(KeyValueConflictError);
    const second = await counters.update('a', { n: 2 }, first);
    await expect(counters.update('a', { n: 3 }, first)).rejects.toBeInstanceOf(KeyValueConflictError);
    expect(await counters.get('a')).toEqual({ value: { n: 2 }, revision: second });
    // The bucket as the server keeps it: its values' lifetime and storage.
    const status = await (await rawNats(bus).jetstream.views.kv(COUNTERS.bucket)).status();
    expect([status.ttl, status.history, status.backingStore]).toEqual([60_000, 1, 'memory']);
  });

  it('should give a value that does not match the schema as undefined, with the revision to replace it', async () => {
    const counters = bus.keyValue(COUNTERS);
    const revision = await (await rawNats(bus).jetstream.views.kv(COUNTERS.bucket)).put('b', '"not an object"');
    expect(await counters.get('b')).toEqual({ value: undefined, revision });
    expect(await counters.update('b', { n: 1 }, revision)).toBeGreaterThan(revision);
  });
});
