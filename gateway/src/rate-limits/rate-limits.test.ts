import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { RunningGateway } from '../gateway.js';
import { ids, startWidgetsPlatform, type WidgetsPlatform } from '../subscriptions/widgets.fixture.js';

/**
 * Rate limits through two real gateway replicas on one nats-server (their buckets shared through its
 * key-value store), with a clock that stands still, so that no token comes back during a test.
 */
const PER_MINUTE = 60; // a burst of 6, then a token a second
const ANONYMOUS_PER_MINUTE = 10; // a burst of 1, then a token every 6 s
const EVENTS = 'subscription ($id: ID!) { widgetEvents(widgetId: $id) { n } }';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: read field by field
  json: any;
}

/** POSTs to a gateway from `localAddress` (any 127.x.y.z reaches the gateway on 127.0.0.1). */
function post(
  gateway: RunningGateway,
  options: { token?: string; localAddress?: string; path?: string; accept?: string; body?: unknown } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(options.path ?? '/graphql', gateway.url);
    const req = httpRequest(url, {
      method: 'POST',
      localAddress: options.localAddress ?? '127.0.0.1',
      headers: {
        'content-type': 'application/json',
        accept: options.accept ?? 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
    });
    req.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, json: JSON.parse(text || 'null') }),
      );
    });
    req.once('error', reject);
    req.end(JSON.stringify(options.body ?? { query: '{ __typename }' }));
  });
}

/** Opens a graphql-ws connection from `localAddress` and says how the gateway answered its connection_init. */
function connectionAttempt(
  gateway: RunningGateway,
  token: string | undefined,
  localAddress: string,
): Promise<{ acknowledged: true } | { code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(gateway.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { localAddress });
    socket.once('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }),
      ),
    );
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type !== 'connection_ack') return;
      socket.close(1000);
      resolve({ acknowledged: true });
    });
    socket.once('close', (code, reason) => resolve({ code, reason: String(reason) }));
    socket.once('error', reject);
  });
}

const rateLimited = (seconds: number) => ({
  errors: [
    {
      message: `Too many requests: retry after ${seconds} s`,
      extensions: { code: 'RATE_LIMITED', retryAfter: seconds },
    },
  ],
});

describe('rate limits shared by gateway replicas', () => {
  let platform: WidgetsPlatform;
  let a: RunningGateway;
  let b: RunningGateway;
  const tenant = ids.tenant();
  const project = ids.project();
  const clock = Date.now();
  const caller = (sub: string) => platform.token({ sub, tenantId: tenant, projects: { [project]: 'viewer' } });

  beforeAll(async () => {
    platform = await startWidgetsPlatform(
      {},
      // Replicas share what they counted when the test says so (sync), not on a timer.
      {
        rateLimit: {
          perMinute: PER_MINUTE,
          anonymousPerMinute: ANONYMOUS_PER_MINUTE,
          syncIntervalMs: 600_000,
          now: () => clock,
        },
      },
    );
    a = platform.gateway;
    b = (await platform.startGateway()).gateway;
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('should refuse a caller over its limit on every replica with 429, Retry-After and RATE_LIMITED', async () => {
    const token = await caller('over-http');
    for (let i = 0; i < 6; i++) expect((await post(a, { token })).status).toBe(200);
    const refused = await post(a, { token });
    expect([refused.status, refused.headers['retry-after'], refused.json]).toEqual([429, '1', rateLimited(1)]);
    expect(refused.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    // In the media type the client prefers.
    const modern = await post(a, { token, accept: 'application/graphql-response+json' });
    expect([modern.status, modern.headers['content-type']]).toEqual([
      429,
      'application/graphql-response+json; charset=utf-8',
    ]);

    // The other replica counts what the first let through once the first has shared it.
    await a.rateLimiter!.sync();
    expect((await post(b, { token })).json).toEqual(rateLimited(1));
    // Subscriptions over SSE are requests of the same caller.
    const stream = await post(b, {
      token,
      path: '/graphql/stream',
      accept: 'text/event-stream',
      body: { query: EVENTS, variables: { id: platform.widget(tenant, project) } },
    });
    expect([stream.status, stream.headers['retry-after'], stream.json]).toEqual([429, '1', rateLimited(1)]);
    // Other callers have buckets of their own, from any address.
    expect((await post(b, { token: await caller('someone-else'), localAddress: '127.0.0.5' })).status).toBe(200);
  });

  it('should refuse a subscribe over the limit with RATE_LIMITED, and close a connection attempt with 4429', async () => {
    const token = await caller('over-graphql-ws');
    const widgetId = platform.widget(tenant, project);
    // Five requests and a connection attempt take the burst of six.
    for (let i = 0; i < 5; i++) expect((await post(b, { token })).status).toBe(200);
    const client = platform.client(token, b.url.replace(/^http/, 'ws'));
    const errors = await new Promise((resolve) => {
      client.subscribe(
        { query: EVENTS, variables: { id: widgetId } },
        { next: () => {}, error: resolve, complete: () => resolve('completed') },
      );
    });
    expect(JSON.parse(JSON.stringify(errors))).toEqual(rateLimited(1).errors);
    // The refused subscribe leaves its connection open.
    expect(b.subscriptions.stats().connections).toBe(1);

    await b.rateLimiter!.sync();
    expect(await connectionAttempt(a, token, '127.0.0.1')).toEqual({
      code: 4429,
      reason: 'Too many requests: retry after 1 s',
    });
  });

  it('should limit requests and connection attempts without a valid token by their address', async () => {
    const first = await post(a, { localAddress: '127.0.0.2' });
    expect([first.status, first.json.errors[0].extensions.code]).toEqual([401, 'UNAUTHENTICATED']);
    const second = await post(a, { localAddress: '127.0.0.2' });
    expect([second.status, second.headers['retry-after'], second.json]).toEqual([429, '6', rateLimited(6)]);
    await a.rateLimiter!.sync();
    expect((await post(b, { localAddress: '127.0.0.2' })).status).toBe(429);
    expect(await connectionAttempt(b, 'not-a-token', '127.0.0.2')).toEqual({
      code: 4429,
      reason: 'Too many requests: retry after 6 s',
    });
    // Another address has a bucket of its own; a valid token from the same address, its caller's.
    expect((await post(b, { localAddress: '127.0.0.3' })).status).toBe(401);
    expect(await connectionAttempt(b, undefined, '127.0.0.4')).toEqual({
      code: 4403,
      reason: 'Forbidden: missing bearer token',
    });
    expect((await post(b, { token: await caller('same-address'), localAddress: '127.0.0.2' })).status).toBe(200);
    expect(await connectionAttempt(a, await caller('same-address-ws'), '127.0.0.2')).toEqual({ acknowledged: true });
  });
});
