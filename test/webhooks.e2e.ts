import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startPlatform, startProcess, type Platform } from './src/index.js';

const root = fileURLToPath(new URL('../', import.meta.url));

const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { code message } } }`;
const CREATE_CLUSTER = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code message } } }`;
const CREATE_WEBHOOK = `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id projectId url events enabled } secret userErrors { code message field } } }`;
const DELIVERIES = `query($p: ID!) { webhooks(projectId: $p) { id enabled deliveries(first: 100) { nodes { id event status attempts responseStatus latencyMs lastAttemptAt nextAttemptAt error payload clusterId createdAt } pageInfo { hasNextPage } } } }`;
const TEST_WEBHOOK = `mutation($id: ID!) { testWebhook(id: $id) { webhook { id deliveries(first: 1) { nodes { id event status attempts responseStatus latencyMs error } } } userErrors { code message } } }`;

interface Received {
  id: string;
  verified: boolean;
  answered: number;
  body: { type: string; timestamp: string; data: Record<string, any> } | null;
  raw: string;
  headers: Record<string, string>;
}

interface Delivery {
  id: string;
  event: string;
  status: string;
  attempts: number;
  responseStatus: number | null;
  latencyMs: number | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  error: string | null;
  payload: string;
  clusterId: string | null;
  createdAt: string;
}

/**
 * A receiver on a loopback port, as an integrator writes one: each request's signature is checked
 * with standardwebhooks' `Webhook.verify` against the secrets it knows; it answers `answer()`
 * (a verified request) or 400.
 */
async function startReceiver(answer: () => number) {
  const received: Received[] = [];
  const receiver = { secrets: [] as string[], received, url: '', server: undefined as Server | undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      let body: Received['body'] = null;
      for (const secret of receiver.secrets) {
        try {
          body = new Webhook(secret).verify(raw, req.headers as Record<string, string>) as Received['body'];
          break;
        } catch {
          // not signed with this one
        }
      }
      const answered = body ? answer() : 400;
      const headers = Object.fromEntries(
        ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(req.headers[h])]),
      );
      received.push({ id: headers['webhook-id']!, verified: body !== null, answered, body, raw, headers });
      res.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.server = server;
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/fleetgraph`;
  return receiver;
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('outbound webhooks through the gateway', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const servers: Server[] = [];
  const env = {
    // Receivers listen on loopback, which only the operator's allow-list opens.
    WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
    WEBHOOK_BACKOFF_BASE_MS: '100',
    WEBHOOK_BACKOFF_CAP_MS: '400',
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_ORDER_WINDOW_MS: '200',
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_LEASE_MS: '3000',
    RECONCILE_PROGRESS_MS: '100',
    RECONCILE_POLL_MS: '50',
  };

  beforeAll(async () => {
    platform = await startPlatform({ localCloud: { speed: 400 }, env });
  });

  afterAll(async () => {
    for (const server of servers) server.close();
    await platform?.stop();
  });

  /** A project with an admin, and a webhook of it for `events` pointed at a new receiver. */
  async function setUp(events: string[], answer: () => number = () => 200) {
    const project = seed.project();
    const admin = await platform.token(seed.user(tenant, { [project]: 'admin' }));
    const receiver = await startReceiver(answer);
    servers.push(receiver.server!);
    const created = await platform.graphql(
      CREATE_WEBHOOK,
      { input: { projectId: project, url: receiver.url, events, description: 'e2e receiver' } },
      admin,
    );
    expect(created.errors).toBeUndefined();
    expect(created.data!.createWebhook.userErrors).toEqual([]);
    const { webhook, secret } = created.data!.createWebhook;
    expect(secret).toMatch(/^whsec_/);
    receiver.secrets.push(secret);
    const deliveries = async (): Promise<Delivery[]> => {
      const r = await platform.graphql(DELIVERIES, { p: project }, admin);
      expect(r.errors).toBeUndefined();
      return r.data!.webhooks.find((w: { id: string }) => w.id === webhook.id)?.deliveries.nodes ?? [];
    };
    return { project, admin, receiver, webhook, secret, deliveries };
  }

  it('should refuse URLs that are not http(s), hold credentials or reach private addresses, and non-admins', async () => {
    const project = seed.project();
    const admin = await platform.token(seed.user(tenant, { [project]: 'admin' }));
    const editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    const create = (url: string, token = admin, events = ['CLUSTER_PHASE']) =>
      platform.graphql(CREATE_WEBHOOK, { input: { projectId: project, url, events } }, token);
    // Refused before any connection is made: nothing is sent to these addresses.
    const refusals: [string, string, string][] = [
      ['ftp://127.0.0.1/hook', 'INVALID_URL', 'only http and https'],
      ['http://user:secret@127.0.0.1/hook', 'INVALID_URL', 'credentials'],
      ['http://10.0.0.1/hook', 'URL_NOT_ALLOWED', 'private range (10.0.0.0/8)'],
      ['http://169.254.169.254/latest/meta-data', 'URL_NOT_ALLOWED', 'link-local'],
      ['http://[::ffff:192.168.1.1]/hook', 'URL_NOT_ALLOWED', 'private range (192.168.0.0/16)'],
      ['http://[::1]:9/hook', 'URL_NOT_ALLOWED', 'loopback'],
    ];
    for (const [url, code, message] of refusals) {
      const r = await create(url);
      expect(r.errors, url).toBeUndefined();
      expect(r.data!.createWebhook.webhook, url).toBeNull();
      expect(r.data!.createWebhook.secret, url).toBeNull();
      expect(r.data!.createWebhook.userErrors, url).toEqual([
        { code, message: expect.stringContaining(message), field: ['input', 'url'] },
      ]);
    }
    const test = await create('http://127.0.0.1:9/hook', admin, ['TEST']);
    expect(test.data!.createWebhook.userErrors[0].code).toBe('INVALID_EVENTS');
    const forbidden = await create('http://127.0.0.1:9/hook', editor);
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const list = await platform.graphql(DELIVERIES, { p: project }, editor);
    expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await platform.graphql(DELIVERIES, { p: project }, admin)).data!.webhooks).toEqual([]);
  });

  it("should deliver a cluster's signed events in order, retried through the receiver's outage, and log each delivery", async () => {
    let requests = 0;
    // The receiver is down for its first five requests.
    const { project, admin, receiver, deliveries } = await setUp(
      ['CLUSTER_PHASE', 'CLUSTER_CONDITION', 'HEALTH_CHANGED'],
      () => (++requests <= 5 ? 503 : 200),
    );
    const profile = await platform.graphql(CREATE_PROFILE, { input: seed.profileInput(project) }, admin);
    const created = await platform.graphql(
      CREATE_CLUSTER,
      {
        input: {
          projectId: project,
          name: 'hooked',
          profileId: profile.data!.createClusterProfile.profile.id,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: 1, instanceType: 't3.medium' },
          ],
        },
      },
      admin,
    );
    expect(created.data!.createCluster.userErrors).toEqual([]);
    const clusterId: string = created.data!.createCluster.cluster.id;

    const accepted = () => receiver.received.filter((r) => r.answered === 200);
    await until('the RUNNING phase delivered', async () =>
      accepted().some((r) => r.body?.type === 'CLUSTER_PHASE' && r.body.data.phase === 'RUNNING'),
    );
    // The health service's events go into the same queue, in the order of the time they were stored.
    await until('a health change delivered', async () =>
      accepted().some((r) => r.body?.type === 'HEALTH_CHANGED' && r.body.data.health.status),
    );
    const log = await until('every delivery finished', async () => {
      const all = await deliveries();
      return all.length > 0 && all.every((d) => d.status !== 'PENDING') && all;
    });

    // Every request was signed; every delivery arrived once, under the id the log shows.
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    const ids = accepted().map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(log.map((d) => d.status)).toEqual(log.map(() => 'SUCCEEDED'));
    expect(log.filter((d) => !ids.includes(d.id))).toEqual([]);
    expect(new Set(log.map((d) => d.event))).toEqual(new Set(['CLUSTER_PHASE', 'CLUSTER_CONDITION', 'HEALTH_CHANGED']));
    // In the order the events happened, the phases in their order.
    const times = accepted().map((r) => r.body!.timestamp);
    expect(times).toEqual([...times].sort());
    const phases = accepted()
      .filter((r) => r.body!.type === 'CLUSTER_PHASE')
      .map((r) => r.body!.data.phase);
    expect(phases).toEqual(['PROVISIONING', 'RUNNING']);
    for (const r of accepted()) expect(r.body!.data).toMatchObject({ projectId: project, clusterId });
    // The outage: the first delivery was tried until the receiver came back, under one id.
    const first = log.find((d) => d.id === receiver.received[0]!.id)!;
    expect(receiver.received.slice(0, 6).map((r) => [r.id, r.answered])).toEqual([
      ...Array.from({ length: 5 }, () => [first.id, 503]),
      [first.id, 200],
    ]);
    expect(first).toMatchObject({ attempts: 6, responseStatus: 200, error: null, status: 'SUCCEEDED', clusterId });
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect(first.lastAttemptAt).not.toBeNull();
    expect(first.nextAttemptAt).toBeNull();
    expect(JSON.parse(first.payload)).toEqual(receiver.received[0]!.body);
    expect(log.filter((d) => d.id !== first.id).every((d) => d.attempts === 1 && d.responseStatus === 200)).toBe(true);
  });

  it('should send a signed test delivery at once, and sign with both secrets for a while after a rotation', async () => {
    const { admin, receiver, webhook, secret } = await setUp(['HEALTH_CHANGED']);
    const tested = await platform.graphql(TEST_WEBHOOK, { id: webhook.id }, admin);
    expect(tested.errors).toBeUndefined();
    const [delivery] = tested.data!.testWebhook.webhook.deliveries.nodes;
    expect(delivery).toMatchObject({
      event: 'TEST',
      status: 'SUCCEEDED',
      attempts: 1,
      responseStatus: 200,
      error: null,
    });
    expect(receiver.received.map((r) => [r.id, r.verified, r.body?.type])).toEqual([[delivery.id, true, 'TEST']]);

    const rotated = await platform.graphql(
      `mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret userErrors { code } } }`,
      { id: webhook.id },
      admin,
    );
    const next: string = rotated.data!.rotateWebhookSecret.secret;
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(secret);
    await platform.graphql(TEST_WEBHOOK, { id: webhook.id }, admin);
    const last = receiver.received.at(-1)!;
    expect(last.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const s of [secret, next]) expect(new Webhook(s).verify(last.raw, last.headers)).toBeTruthy();

    const deleted = await platform.graphql(
      `mutation($id: ID!) { deleteWebhook(id: $id) { webhook { id } userErrors { code } } }`,
      { id: webhook.id },
      admin,
    );
    expect(deleted.data!.deleteWebhook).toEqual({ webhook: { id: webhook.id }, userErrors: [] });
    const again = await platform.graphql(TEST_WEBHOOK, { id: webhook.id }, admin);
    expect(again.data!.testWebhook.userErrors).toEqual([{ code: 'NOT_FOUND', message: 'no such webhook' }]);
  });

  it('should deliver what was queued before the clusters service was killed, once another one runs', async () => {
    let up = false;
    const { admin, receiver, webhook, deliveries } = await setUp(['LOG_BUNDLE_READY'], () => (up ? 200 : 503));
    // Queued and tried once, while the receiver is down.
    await platform.graphql(TEST_WEBHOOK, { id: webhook.id }, admin);
    const [queued] = await deliveries();
    expect(queued).toMatchObject({ status: 'PENDING', responseStatus: 503 });

    const clusters = platform.services.get('clusters')!;
    clusters.child.kill('SIGKILL');
    await new Promise((resolve) => clusters.child.once('exit', resolve));
    up = true;
    const port = new URL(clusters.url).port;
    const restarted = await startProcess('clusters', `${root}services/clusters/dist/main.js`, {
      ...(await platform.envFor('clusters')),
      NATS_ACCOUNT_SEED: platform.nats.security.accountSeed,
      PORT: port,
    });
    platform.services.set('clusters', restarted);

    const delivered = await until('the queued delivery', async () => {
      const [d] = await deliveries();
      return d?.status === 'SUCCEEDED' && d;
    });
    expect(delivered.id).toBe(queued!.id);
    expect(delivered.attempts).toBeGreaterThan(1);
    expect(receiver.received.map((r) => r.id)).toEqual(receiver.received.map(() => queued!.id));
    expect(receiver.received.at(-1)!.answered).toBe(200);
  });
});
