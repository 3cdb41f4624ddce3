import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, createSqliteStore } from '@fleetgraph/kit';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { createSealer } from '../bootstrap/sealed.js';
import { createAddressPolicy } from './address-policy.js';
import { WebhookDispatcher, type DispatcherOptions } from './dispatcher.js';
import type { SendResult } from './sender.js';
import { WebhookRepository, type WebhookDoc } from './webhook.repo.js';

const log = createLogger('webhooks-test', 'silent');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const running: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

async function openRepo(): Promise<WebhookRepository> {
  return WebhookRepository.open(createSqliteStore({ file: ':memory:' }), createSealer('k'.repeat(32)));
}

/** A receiver on a loopback port that verifies every signature and answers with `status(body)`. */
async function receiver(secret: () => string, status: (event: { n: number; clusterId: string | null }) => number) {
  const received: { id: string; n: number; clusterId: string | null; ok: boolean }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const { data } = new Webhook(secret()).verify(body, req.headers as Record<string, string>) as {
        data: { n: number; clusterId: string | null };
      };
      const code = status(data);
      received.push({ id: String(req.headers['webhook-id']), n: data.n, clusterId: data.clusterId, ok: code < 300 });
      res.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  running.push({ stop: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

function dispatcher(repo: WebhookRepository, options: Partial<DispatcherOptions> = {}): WebhookDispatcher {
  const d = new WebhookDispatcher({
    repo,
    policy: createAddressPolicy(['127.0.0.0/8']),
    log,
    retry: { baseMs: 30, capMs: 60, giveUpAfterMs: 60_000 },
    pollMs: 10,
    leaseMs: 5_000,
    ...options,
  });
  running.push(d);
  return d;
}

/** Queues the n-th event of a cluster, at the time its number says. */
async function enqueue(repo: WebhookRepository, webhook: WebhookDoc, clusterId: string, n: number) {
  const time = new Date(Date.UTC(2026, 0, 1, 0, 0, n));
  return repo.enqueue(
    webhook,
    {
      clusterId,
      source: `TEST_STREAM:${clusterId}:${n}`,
      event: 'CLUSTER_PHASE',
      order: `${time.toISOString()}|TEST_STREAM|${n}`,
      payload: JSON.stringify({ type: 'CLUSTER_PHASE', timestamp: time.toISOString(), data: { clusterId, n } }),
      dueAt: new Date(),
    },
    new Date(),
  );
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const newWebhook = (repo: WebhookRepository, url: string) =>
  repo.create({ tenantId: 't1', projectId: 'p1', url, events: ['CLUSTER_PHASE'], description: null }, new Date());

describe('the webhook dispatcher', () => {
  it("should send a cluster's deliveries in order, the later ones waiting while the first is retried under its id", async () => {
    const repo = await openRepo();
    let secret = '';
    let failuresLeft = 3;
    // The first event of cluster a fails three times; cluster b's are not held up by it.
    const hook = await receiver(
      () => secret,
      ({ n, clusterId }) => (clusterId === 'a' && n === 1 && failuresLeft-- > 0 ? 503 : 200),
    );
    const created = await newWebhook(repo, hook.url);
    secret = created.secret;
    for (const n of [1, 2, 3]) await enqueue(repo, created.webhook, 'a', n);
    for (const n of [1, 2]) await enqueue(repo, created.webhook, 'b', n);
    dispatcher(repo).start();

    const all = async () => (await repo.listDeliveries(created.webhook.id, 100)).nodes;
    await until('every delivery', async () => (await all()).every((d) => d.status === 'SUCCEEDED'));
    const ofA = hook.received.filter((r) => r.clusterId === 'a');
    expect(ofA.map((r) => [r.n, r.ok])).toEqual([
      [1, false],
      [1, false],
      [1, false],
      [1, true],
      [2, true],
      [3, true],
    ]);
    // Every attempt at the first event carried the same webhook-id.
    expect(new Set(ofA.slice(0, 4).map((r) => r.id)).size).toBe(1);
    expect(hook.received.filter((r) => r.clusterId === 'b').map((r) => r.n)).toEqual([1, 2]);
    const first = (await all()).find((d) => d.id === ofA[0]!.id)!;
    expect(first).toMatchObject({ attempts: 4, responseStatus: 200, error: null, status: 'SUCCEEDED' });
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect((await repo.get(created.webhook.id))!.failingSince).toBeNull();
  });

  it('should queue an event once per webhook however often it is read', async () => {
    const repo = await openRepo();
    const { webhook } = await newWebhook(repo, 'http://127.0.0.1:9/');
    expect(await enqueue(repo, webhook, 'a', 1)).not.toBeNull();
    expect(await enqueue(repo, webhook, 'a', 1)).toBeNull();
    expect((await repo.listDeliveries(webhook.id, 10)).nodes).toHaveLength(1);
  });

  it('should send each delivery once with two replicas sharing the store, in order per cluster', async () => {
    const repo = await openRepo();
    let secret = '';
    const hook = await receiver(
      () => secret,
      () => 200,
    );
    const created = await newWebhook(repo, hook.url);
    secret = created.secret;
    for (const clusterId of ['a', 'b', 'c', 'd'])
      for (let n = 1; n <= 5; n++) await enqueue(repo, created.webhook, clusterId, n);
    dispatcher(repo, { concurrency: 2 }).start();
    dispatcher(repo, { concurrency: 2 }).start();
    await until('every delivery', async () => hook.received.length >= 20);
    await sleep(100);
    expect(hook.received).toHaveLength(20);
    expect(new Set(hook.received.map((r) => r.id)).size).toBe(20);
    for (const clusterId of ['a', 'b', 'c', 'd'])
      expect(hook.received.filter((r) => r.clusterId === clusterId).map((r) => r.n)).toEqual([1, 2, 3, 4, 5]);
  });

  it('should disable a webhook whose deliveries failed for the whole period, fail what is pending and say so', async () => {
    const repo = await openRepo();
    // Past the deliveries' due time (queued at the real time) from the start.
    let clock = Date.now() + 1_000;
    const now = () => new Date(clock);
    const { webhook } = await newWebhook(repo, 'http://127.0.0.1:9/hook');
    for (const n of [1, 2]) await enqueue(repo, webhook, 'a', n);
    await enqueue(repo, webhook, 'b', 1);
    const disabled: string[] = [];
    const d = dispatcher(repo, {
      now,
      retry: { baseMs: 100, capMs: 100, giveUpAfterMs: 60_000 },
      send: async (): Promise<SendResult> => ({ ok: false, status: 500, latencyMs: 3, error: 'HTTP 500: down' }),
      onDisabled: async (w, delivery) => void disabled.push(`${w.id}:${delivery.clusterId}`),
    });
    const settle = async () => {
      await d.sweep();
      await until('the sweep', async () => d.active.length === 0);
    };
    await settle();
    expect((await repo.get(webhook.id))!.enabled).toBe(true);
    clock += 30_000;
    await settle();
    expect((await repo.get(webhook.id))!.enabled).toBe(true);
    clock += 31_000;
    await settle();

    const after = (await repo.get(webhook.id))!;
    expect(after.enabled).toBe(false);
    expect(after.disabledReason).toMatch(/^every delivery failed for 0 h \(since .*\); the last: HTTP 500: down$/);
    expect(disabled).toHaveLength(1);
    const deliveries = (await repo.listDeliveries(webhook.id, 10)).nodes;
    expect(deliveries.map((x) => x.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);
    expect(await repo.subscribers('t1', 'p1', 'CLUSTER_PHASE', new Date(clock))).toEqual([]);
    // Enabled again, it takes events again, its failures forgotten.
    await repo.enable(webhook.id);
    expect((await repo.subscribers('t1', 'p1', 'CLUSTER_PHASE', new Date(clock))).map((w) => w.id)).toEqual([
      webhook.id,
    ]);
  });

  it('should sign with the previous secret too for a while after a rotation', async () => {
    const repo = await openRepo();
    const { webhook, secret: first } = await newWebhook(repo, 'http://127.0.0.1:9/');
    const rotated = (await repo.rotateSecret(webhook.id, new Date(), 1_000))!;
    expect(rotated.secret).not.toBe(first);
    expect(repo.signingSecrets(rotated.webhook, new Date())).toEqual([rotated.secret, first]);
    expect(repo.signingSecrets(rotated.webhook, new Date(Date.now() + 2_000))).toEqual([rotated.secret]);
  });
});
