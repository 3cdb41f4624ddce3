import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as connectTcp } from 'node:net';
import type { Claims } from '@fleetgraph/kit/core';
import { createClient, type Client } from 'graphql-sse';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, range, watch } from './watch.fixture.js';
import { ids, startWidgetsPlatform, type WidgetsPlatform } from './widgets.fixture.js';

/**
 * Subscriptions over Server-Sent Events, against a real nats-server and gateway with the widgets
 * fixture subgraph; graphql-sse's own client speaks the protocol (distinct connections mode).
 */
const EVENTS =
  'subscription Events($id: ID!, $after: String) { widgetEvents(widgetId: $id, after: $after) { cursor n } }';
const STATE = 'subscription State($id: ID!) { widgetState(widgetId: $id) { status revision } }';
const BUFFER_LIMIT = 256 * 1024;

/** A raw SSE request (POST with a body: a string is sent as it is), and its response as it arrives. */
function rawStream(url: string, headers: Record<string, string>, body?: unknown) {
  let text = '';
  let response!: IncomingMessage;
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  const request = httpRequest(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', (r) => {
      response = r;
      r.setEncoding('utf8');
      r.on('data', (chunk: string) => (text += chunk));
      // Ended, or broken off (a cut-off stream).
      r.once('end', end);
      r.once('close', end);
      r.once('error', end);
      resolve(r);
    });
    request.once('error', reject);
  });
  request.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  return {
    answered,
    ended,
    get text() {
      return text;
    },
    get response() {
      return response;
    },
    request,
  };
}

describe('subscriptions over SSE', () => {
  let platform: WidgetsPlatform;
  let streamUrl: string;
  const tenant = ids.tenant();
  const project = ids.project();
  let viewer: string;
  let clients: Client[] = [];
  const stats = () => platform.gateway.subscriptions.stats();
  const established = (count: number) =>
    eventually(() => stats().subscriptions === count, `${count} open subscriptions`);
  const connect = (token: string | undefined, url = streamUrl) => {
    const client = createClient({
      url,
      retryAttempts: 0,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    platform = await startWidgetsPlatform({ bufferLimitBytes: BUFFER_LIMIT, closeGraceMs: 10_000 });
    streamUrl = `${platform.gateway.url}/stream`;
    viewer = await platform.token({ sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } });
  });

  afterEach(async () => {
    for (const client of clients) client.dispose();
    clients = [];
    await platform.drained();
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('should deliver events, and resume after a cursor with no gap and no duplicate', async () => {
    const widgetId = platform.widget(tenant, project);
    const first = watch(connect(viewer), EVENTS, { id: widgetId });
    await established(1);
    for (let n = 1; n <= 50; n++) await platform.publishEvent(tenant, widgetId, n);
    await first.until(50);
    first.stop();
    await established(0);

    for (let n = 51; n <= 80; n++) await platform.publishEvent(tenant, widgetId, n);
    const cursor = first.results.at(-1)!.data!.widgetEvents.cursor as string;
    const resumed = watch(connect(viewer), EVENTS, { id: widgetId, after: cursor });
    await resumed.until(30);
    await established(1);
    for (let n = 81; n <= 100; n++) await platform.publishEvent(tenant, widgetId, n);
    await resumed.until(50);
    const all = [...first.results, ...resumed.results].map(
      (r) => r.data!.widgetEvents as { n: number; cursor: string },
    );
    expect(all.map((e) => e.n)).toEqual(range(1, 100));
    expect(new Set(all.map((e) => e.cursor)).size).toBe(100);
  });

  it('should send the current state first and complete at a final status', async () => {
    const widgetId = platform.widget(tenant, project);
    await platform.publishState(tenant, widgetId, 'ACTIVE', 1);
    const sub = watch(connect(viewer), STATE, { id: widgetId });
    await sub.until(1);
    await established(1);
    await platform.publishState(tenant, widgetId, 'DONE', 2);
    await sub.done;
    expect(sub.completed).toBe(true);
    expect(sub.results.map((r) => r.data!.widgetState)).toEqual([
      { status: 'ACTIVE', revision: 1 },
      { status: 'DONE', revision: 2 },
    ]);
  });

  it('should share the consumer and the execution with graphql-ws subscribers of the same subject', async () => {
    const widgetId = platform.widget(tenant, project);
    const sse = watch(connect(viewer), EVENTS, { id: widgetId });
    const ws = platform.client(viewer);
    const wsResults: unknown[] = [];
    ws.subscribe(
      { query: EVENTS, variables: { id: widgetId } },
      { next: (r) => void wsResults.push(r), error: () => {}, complete: () => {} },
    );
    await established(2);
    expect(stats().consumers).toBe(1);
    const before = stats().executions;
    for (let n = 1; n <= 3; n++) await platform.publishEvent(tenant, widgetId, n);
    await sse.until(3);
    await eventually(() => wsResults.length === 3, 'the graphql-ws subscriber');
    expect(stats().executions - before).toBe(3);
    expect(wsResults).toEqual(sse.results);
    await ws.dispose();
  });

  it('should refuse bad requests with a clear error before opening a stream, and store nothing', async () => {
    const accept = { accept: 'text/event-stream' };
    const auth = { authorization: `Bearer ${viewer}` };
    const cases = {
      'no token': rawStream(streamUrl, accept, { query: EVENTS, variables: { id: 'w1' } }),
      'no event-stream accept': rawStream(
        streamUrl,
        { ...auth, accept: 'application/json' },
        { query: EVENTS, variables: { id: 'w1' } },
      ),
      'no query': rawStream(streamUrl, { ...auth, ...accept }, { variables: {} }),
      'variables not an object': rawStream(`${streamUrl}?query=${encodeURIComponent(EVENTS)}&variables=%5B1%5D`, {
        ...auth,
        ...accept,
      }),
      'malformed JSON': rawStream(streamUrl, { ...auth, ...accept }, '{"query": '),
    };
    const answers: Record<string, unknown> = {};
    for (const [what, stream] of Object.entries(cases)) {
      const response = await stream.answered;
      await stream.ended;
      answers[what] = {
        status: response.statusCode,
        code: (JSON.parse(stream.text) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code,
      };
    }
    expect(answers).toEqual({
      'no token': { status: 401, code: 'UNAUTHENTICATED' },
      'no event-stream accept': { status: 406, code: 'BAD_USER_INPUT' },
      'no query': { status: 400, code: 'BAD_USER_INPUT' },
      'variables not an object': { status: 400, code: 'BAD_USER_INPUT' },
      'malformed JSON': { status: 400, code: 'BAD_REQUEST' },
    });
    expect(stats()).toMatchObject({ subscriptions: 0, connections: 0 });
  });

  it('should refuse a foreign widget and a query inside the stream, like an unknown widget', async () => {
    const foreignTenant = ids.tenant();
    const foreignWidget = platform.widget(foreignTenant, ids.project());
    const headers = { authorization: `Bearer ${viewer}`, accept: 'text/event-stream' };
    const texts: string[] = [];
    for (const body of [
      { query: EVENTS, variables: { id: foreignWidget } },
      { query: EVENTS, variables: { id: 'unknown' } },
      { query: '{ __typename }' },
    ]) {
      const stream = rawStream(streamUrl, headers, body);
      expect((await stream.answered).statusCode).toBe(200);
      await stream.ended;
      texts.push(stream.text);
    }
    const notFound = `:\n\nevent: next\ndata: {"errors":[{"message":"widget not found","extensions":{"code":"BAD_USER_INPUT"}}]}\n\nevent: complete\ndata: \n\n`;
    expect(texts.slice(0, 2)).toEqual([notFound, notFound]);
    expect(texts[2]).toMatch(
      /^:\n\nevent: next\ndata: \{"errors":\[\{"message":"only subscriptions are served here: send queries and mutations with POST \/graphql"/,
    );
    expect(texts[2]).toMatch(/event: complete\ndata: \n\n$/);
  });

  it('should open nothing for a client that leaves while its token is checked', async () => {
    const widgetId = platform.widget(tenant, project);
    const { port, hostname } = new URL(streamUrl);
    const query = encodeURIComponent(EVENTS);
    const variables = encodeURIComponent(JSON.stringify({ id: widgetId }));
    for (let i = 0; i < 30; i++) {
      const socket = connectTcp(Number(port), hostname);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        `GET /graphql/stream?query=${query}&variables=${variables} HTTP/1.1\r\nHost: gateway\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${viewer}\r\n\r\n`,
      );
      // Gone before the gateway has verified the token (which takes a turn of the event loop).
      await new Promise((resolve) => setImmediate(resolve));
      socket.resetAndDestroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // afterEach checks that no subscription, connection or consumer is left.
    expect(stats()).toMatchObject({ connections: 0, subscriptions: 0 });
  });

  it('should end the stream with UNAUTHENTICATED when the token expires', async () => {
    const claims: Claims = { sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } };
    const widgetId = platform.widget(tenant, project);
    const stream = rawStream(
      streamUrl,
      { authorization: `Bearer ${await platform.token(claims, '2s')}`, accept: 'text/event-stream' },
      { query: EVENTS, variables: { id: widgetId } },
    );
    await established(1);
    await stream.ended;
    expect(stream.text).toBe(
      `:\n\nevent: next\ndata: {"errors":[{"message":"Forbidden: token expired","extensions":{"code":"UNAUTHENTICATED"}}]}\n\n`,
    );
    await established(0);
  });

  it('should cut off a client that stops reading, keeping its buffer bounded', async () => {
    const widgetId = platform.widget(tenant, project);
    const stream = rawStream(
      streamUrl,
      { authorization: `Bearer ${viewer}`, accept: 'text/event-stream' },
      { query: 'subscription ($id: ID!) { widgetEvents(widgetId: $id) { n message } }', variables: { id: widgetId } },
    );
    (await stream.answered).pause();
    stream.request.socket?.pause();
    await established(1);
    const message = 'x'.repeat(32 * 1024);
    const slowBefore = stats().slowConsumers;
    let published = 0;
    while (stats().slowConsumers === slowBefore && published < 3000)
      await platform.publishEvent(tenant, widgetId, ++published, message);
    expect(stats().slowConsumers).toBe(slowBefore + 1);
    expect(stats().maxBufferedBytes).toBeLessThanOrEqual(BUFFER_LIMIT + message.length + 1024);
    await established(0);
    stream.response.resume();
    stream.request.socket?.resume();
    await stream.ended;
    // The stream broke off without `complete`: the client resubscribes after its last cursor.
    expect(stream.text).not.toContain('event: complete');
  });

  it('should end streams without complete at shutdown, so that clients subscribe again elsewhere', async () => {
    const replica = await platform.startGateway({ bufferLimitBytes: BUFFER_LIMIT });
    const widgetId = platform.widget(tenant, project);
    const sub = watch(connect(viewer, `${replica.gateway.url}/stream`), EVENTS, { id: widgetId });
    await eventually(
      () => replica.gateway.subscriptions.stats().subscriptions === 1,
      'the subscription on the replica',
    );
    await platform.publishEvent(tenant, widgetId, 1);
    await sub.until(1);
    await replica.close();
    await sub.done;
    expect(sub.completed).toBe(false);
    expect(sub.error).toBeDefined();
    expect(replica.gateway.subscriptions.stats()).toMatchObject({ subscriptions: 0, connections: 0, consumers: 0 });
  });
});
