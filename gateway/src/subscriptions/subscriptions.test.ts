import type { Claims } from '@fleetgraph/kit/core';
import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SLOW_CONSUMER_REASON } from './server.js';
import { eventually, range, watch } from './watch.fixture.js';
import { ids, startWidgetsPlatform, type WidgetsPlatform } from './widgets.fixture.js';

const EVENTS = /* GraphQL */ `
  subscription Events($id: ID!, $after: String) {
    widgetEvents(widgetId: $id, after: $after) { cursor n }
  }
`;
const STATE = /* GraphQL */ `
  subscription State($id: ID!) {
    widgetState(widgetId: $id) { status revision }
  }
`;

const BOARD = /* GraphQL */ `
  subscription Board($projectId: ID) {
    widgetBoard(projectId: $projectId) { widgetId projectId revision }
  }
`;

const closeOf = (client: Client) =>
  new Promise<{ code: number; reason: string }>((resolve) =>
    client.on('closed', (event) => {
      const { code, reason } = event as { code: number; reason: string };
      resolve({ code, reason });
    }),
  );
const BUFFER_LIMIT = 256 * 1024;

describe('subscriptions through the gateway', () => {
  let platform: WidgetsPlatform;
  const tenant = ids.tenant();
  const project = ids.project();
  const otherProject = ids.project();
  let viewer: string;
  let clients: Client[] = [];
  const stats = () => platform.gateway.subscriptions.stats();
  const connect = (token?: string, url?: string) => {
    const client = platform.client(token, url);
    clients.push(client);
    return client;
  };
  const established = (count: number) =>
    eventually(() => stats().subscriptions === count, `${count} open subscriptions`);

  beforeAll(async () => {
    platform = await startWidgetsPlatform({ bufferLimitBytes: BUFFER_LIMIT, closeGraceMs: 10_000 });
    viewer = await platform.token({ sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } });
  });

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    clients = [];
    await platform.drained();
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('should serve every field bound by @jetstream in the supergraph', () => {
    expect([...platform.gateway.subscriptions.fields].sort()).toEqual(['widgetBoard', 'widgetEvents', 'widgetState']);
  });

  it('should deliver the events of the watched widget with the selection applied', async () => {
    expect.assertions(2);
    const widgetId = platform.widget(tenant, project);
    const otherWidget = platform.widget(tenant, project);
    const sub = watch(
      connect(viewer),
      `subscription ($id: ID!) { e: widgetEvents(widgetId: $id) { count: n cursor, __typename } }`,
      { id: widgetId },
    );
    await established(1);
    await platform.publishEvent(tenant, otherWidget, 99);
    const first = await platform.publishEvent(tenant, widgetId, 1);
    const second = await platform.publishEvent(tenant, widgetId, 2);
    await sub.until(2);
    expect(sub.results).toEqual([
      { data: { e: { count: 1, cursor: String(first), __typename: 'WidgetEvent' } } },
      { data: { e: { count: 2, cursor: String(second), __typename: 'WidgetEvent' } } },
    ]);
    expect(stats().subscriptions).toBe(1);
  });

  it('should resume after a cursor across a disconnect with no gap and no duplicate over 1,000 events', async () => {
    const widgetId = platform.widget(tenant, project);
    const first = watch(connect(viewer), EVENTS, { id: widgetId });
    await established(1);
    const publishing = (async () => {
      for (let n = 1; n <= 1000; n++) await platform.publishEvent(tenant, widgetId, n);
    })();
    await first.until(300);
    first.freeze();
    await clients[0]!.dispose();
    const before = first.results.map((r) => r.data!.widgetEvents as { n: number; cursor: string });

    // Resume while events are still being published: a replay on its own consumer, then the live group.
    const second = watch(connect(viewer), EVENTS, { id: widgetId, after: before.at(-1)!.cursor });
    await publishing;
    await second.until(1000 - before.length);
    const after = second.results.map((r) => r.data!.widgetEvents as { n: number; cursor: string });
    const all = [...before, ...after];
    expect(all.map((e) => e.n)).toEqual(range(1, 1000));
    const cursors = all.map((e) => Number(e.cursor));
    expect(cursors.every((c, i) => i === 0 || c > cursors[i - 1]!)).toBe(true);
  });

  it('should replay every retained event after a cursor, then go live', async () => {
    const widgetId = platform.widget(tenant, project);
    const cursors: number[] = [];
    for (let n = 1; n <= 5; n++) cursors.push(await platform.publishEvent(tenant, widgetId, n));
    const sub = watch(connect(viewer), EVENTS, { id: widgetId, after: String(cursors[1]) });
    await sub.until(3);
    await established(1);
    await platform.publishEvent(tenant, widgetId, 6);
    await sub.until(4);
    expect(sub.results.map((r) => r.data!.widgetEvents.n)).toEqual([3, 4, 5, 6]);
  });

  it('should deliver the current state first, then every change, and complete at a final status', async () => {
    expect.assertions(3);
    const widgetId = platform.widget(tenant, project);
    await platform.publishState(tenant, widgetId, 'ACTIVE', 1);
    await platform.publishState(tenant, widgetId, 'ACTIVE', 2);
    const sub = watch(connect(viewer), STATE, { id: widgetId });
    await sub.until(1);
    await established(1);
    await platform.publishState(tenant, widgetId, 'ACTIVE', 3);
    await platform.publishState(tenant, widgetId, 'DONE', 4);
    await sub.done;
    expect(sub.results.map((r) => r.data!.widgetState)).toEqual([
      { status: 'ACTIVE', revision: 2 },
      { status: 'ACTIVE', revision: 3 },
      { status: 'DONE', revision: 4 },
    ]);
    expect(sub.completed).toBe(true);
    expect(sub.error).toBeUndefined();
  });

  it('should complete at once when the current state is already final', async () => {
    const widgetId = platform.widget(tenant, project);
    await platform.publishState(tenant, widgetId, 'FAILED', 7);
    const sub = watch(connect(viewer), STATE, { id: widgetId });
    await sub.done;
    expect(sub.results).toEqual([{ data: { widgetState: { status: 'FAILED', revision: 7 } } }]);
    expect(sub.completed).toBe(true);
  });

  it('should refuse a foreign tenant, a caller without a role and an unknown widget alike', async () => {
    const widgetId = platform.widget(tenant, project);
    const callers: Record<string, [Claims, string]> = {
      'foreign tenant': [
        { sub: 'x', tenantId: ids.tenant(), tenantAdmin: true, projects: { [project]: 'admin' } },
        widgetId,
      ],
      'no role in the project': [{ sub: 'y', tenantId: tenant, projects: { [otherProject]: 'admin' } }, widgetId],
      'unknown widget': [{ sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } }, 'wdoesnotexist'],
    };
    const refusals: Record<string, unknown> = {};
    for (const [who, [claims, id]] of Object.entries(callers)) {
      const sub = watch(connect(await platform.token(claims)), EVENTS, { id });
      await sub.done;
      refusals[who] = { error: sub.error, results: sub.results };
    }
    const notFound = { error: [{ message: 'widget not found', extensions: { code: 'BAD_USER_INPUT' } }], results: [] };
    expect(refusals).toEqual({
      'foreign tenant': notFound,
      'no role in the project': notFound,
      'unknown widget': notFound,
    });

    // The same widget, for a tenant admin of its own tenant:
    const admin = await platform.token({ sub: 'admin', tenantId: tenant, tenantAdmin: true });
    const allowed = watch(connect(admin), EVENTS, { id: widgetId });
    await established(1);
    await platform.publishEvent(tenant, widgetId, 1);
    await allowed.until(1);
    expect(allowed.results[0]!.data!.widgetEvents.n).toBe(1);
  });

  it('should start a board with the current card of each widget the caller may read, then every change of those only', async () => {
    const third = ids.project();
    const foreign = ids.tenant();
    const [a, b, c] = [
      platform.widget(tenant, project),
      platform.widget(tenant, otherProject),
      platform.widget(tenant, third),
    ];
    await platform.publishCard(tenant, project, a, 1);
    await platform.publishCard(tenant, otherProject, b, 1);
    await platform.publishCard(tenant, project, a, 2);
    await platform.publishCard(foreign, project, a, 9);
    await platform.publishCard(tenant, third, c, 1);
    const two = await platform.token({
      sub: 'two',
      tenantId: tenant,
      projects: { [project]: 'viewer', [otherProject]: 'editor' },
    });
    const admin = await platform.token({ sub: 'admin', tenantId: tenant, tenantAdmin: true });
    const card = (widgetId: string, projectId: string, revision: number) => ({
      data: { widgetBoard: { widgetId, projectId, revision } },
    });

    const mine = watch(connect(two), BOARD, {});
    const onlyOne = watch(connect(viewer), BOARD, { projectId: project });
    const everything = watch(connect(admin), BOARD, {});
    const refused = watch(connect(viewer), BOARD, { projectId: otherProject });
    await refused.done;
    expect(refused.error).toEqual([{ message: 'project not found', extensions: { code: 'BAD_USER_INPUT' } }]);
    await Promise.all([mine.until(2), onlyOne.until(1), everything.until(3)]);
    await established(3);
    await platform.publishCard(tenant, third, c, 2);
    await platform.publishCard(tenant, otherProject, b, 2);
    await platform.publishCard(foreign, otherProject, b, 9);
    await platform.publishCard(tenant, project, a, 3);
    await Promise.all([mine.until(4), onlyOne.until(2), everything.until(6)]);
    expect(mine.results).toEqual([
      card(b, otherProject, 1),
      card(a, project, 2),
      card(b, otherProject, 2),
      card(a, project, 3),
    ]);
    expect(onlyOne.results).toEqual([card(a, project, 2), card(a, project, 3)]);
    expect(everything.results).toEqual([
      card(b, otherProject, 1),
      card(a, project, 2),
      card(c, third, 1),
      card(c, third, 2),
      card(b, otherProject, 2),
      card(a, project, 3),
    ]);
  });

  it('should refuse bad input with a clear error and keep the connection', async () => {
    const client = connect(viewer);
    const widgetId = platform.widget(tenant, project);
    const cases = [
      [EVENTS, { id: widgetId, after: 'not-a-cursor' }, 'after is not a cursor of Subscription.widgetEvents'],
      [EVENTS, { id: 'a.b' }, 'widgetId must be a plain id: letters, digits, "-" and "_"'],
      [EVENTS, {}, 'Variable "$id" of required type "ID!" was not provided.'],
      ['subscription { widgetEvents(widgetId: "x") { nope } }', {}, 'Cannot query field "nope" on type "WidgetEvent".'],
      [
        '{ widget(id: "x") { id } }',
        {},
        'only subscriptions are served here: send queries and mutations with POST /graphql',
      ],
      // Whether it watches anything cannot depend on a variable (graphql-js 16 would throw on this one).
      [
        'subscription ($id: ID!, $on: Boolean!) { ... @include(if: $on) { widgetEvents(widgetId: $id) { n } } }',
        { id: widgetId, on: true },
        "a subscription's root selection cannot carry @include",
      ],
      [
        'subscription ($id: ID!) { widgetEvents(widgetId: $id) @skip(if: false) { n } }',
        { id: widgetId },
        "a subscription's root selection cannot carry @skip",
      ],
    ] as const;
    const messages: string[] = [];
    for (const [query, variables] of cases) {
      const sub = watch(client, query, variables);
      await sub.done;
      messages.push((sub.error as { message: string }[])[0]!.message);
    }
    expect(messages).toEqual(cases.map((c) => c[2]));
    const ok = watch(client, EVENTS, { id: widgetId });
    await established(1);
    await platform.publishEvent(tenant, widgetId, 1);
    await ok.until(1);
    expect(ok.results).toHaveLength(1);
  });

  it.each([
    ['without a token', undefined, 'Forbidden: missing bearer token'],
    ['with a malformed token', 'not-a-jwt', 'Forbidden: token is invalid'],
  ])('should close a connection %s with 4403', async (_, token, reason) => {
    expect.assertions(2);
    const client = connect(token);
    const closed = closeOf(client);
    watch(client, EVENTS, { id: 'w1' });
    expect(await closed).toEqual({ code: 4403, reason });
    expect(stats().connections).toBe(0);
  });

  it('should refuse an expired token, and close with 4403 when the token expires mid-connection', async () => {
    expect.assertions(2);
    const claims: Claims = { sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } };
    const expired = connect(await platform.token(claims, Math.floor(Date.now() / 1000) - 60));
    const refused = closeOf(expired);
    watch(expired, EVENTS, { id: 'w1' });
    expect(await refused).toEqual({ code: 4403, reason: 'Forbidden: token expired' });

    const widgetId = platform.widget(tenant, project);
    const client = connect(await platform.token(claims, '2s'));
    const closed = closeOf(client);
    const sub = watch(client, EVENTS, { id: widgetId });
    await established(1);
    expect(await closed).toEqual({ code: 4403, reason: 'Forbidden: token expired' });
    await sub.done;
    await established(0);
  });

  it('should share one NATS consumer and one execution per event among 100 subscribers', async () => {
    const widgetId = platform.widget(tenant, project);
    const subs = Array.from({ length: 100 }, () => watch(connect(viewer), EVENTS, { id: widgetId }));
    await established(100);
    expect(stats().consumers).toBe(1);
    expect(await platform.consumerCount('WIDGET_EVENTS')).toBe(1);
    const before = stats();
    for (let n = 1; n <= 5; n++) await platform.publishEvent(tenant, widgetId, n);
    await Promise.all(subs.map((s) => s.until(5)));
    const after = stats();
    expect(after.executions - before.executions).toBe(5);
    expect(after.delivered - before.delivered).toBe(500);
    expect(new Set(subs.map((s) => JSON.stringify(s.results))).size).toBe(1);
  });

  it('should run one authorisation query for identical subscribes in flight, and refuse each foreign one', async () => {
    const widgetId = platform.widget(tenant, project);
    const before = stats().authorisations;
    const client = connect(viewer);
    // One connection: its subscribe messages arrive together, so they queue behind one another.
    const subs = Array.from({ length: 40 }, () => watch(client, EVENTS, { id: widgetId }));
    const foreign = platform.widget(ids.tenant(), ids.project());
    const refused = watch(client, EVENTS, { id: foreign });
    await established(40);
    await refused.done;
    expect(refused.error).toEqual([{ message: 'widget not found', extensions: { code: 'BAD_USER_INPUT' } }]);
    const ran = stats().authorisations - before;
    // 2 when the 40 arrive while the first query runs (as they do here); far fewer than 41 in any case.
    expect(ran).toBeGreaterThanOrEqual(2);
    expect(ran).toBeLessThanOrEqual(10);
    await platform.publishEvent(tenant, widgetId, 1);
    await Promise.all(subs.map((s) => s.until(1)));
  });

  it('should remember a granted authorisation for its memory time only: a deleted widget is refused after it', async () => {
    const memoryMs = 1_500;
    const replica = await platform.startGateway({ authorizationMemoryMs: memoryMs });
    try {
      const stats = () => replica.gateway.subscriptions.stats();
      const widgetId = platform.widget(tenant, project);
      const first = watch(connect(viewer, replica.wsUrl), EVENTS, { id: widgetId });
      await eventually(() => stats().subscriptions === 1, 'the first subscription');
      const ran = stats().authorisations;
      // Another field of the same widget, and the same field again: no query, remembered.
      const again = watch(connect(viewer, replica.wsUrl), STATE, { id: widgetId });
      await eventually(() => stats().subscriptions === 2, 'the second subscription');
      expect([stats().authorisations - ran, stats().authorisationsRemembered]).toEqual([0, 1]);
      // Another caller (other claims) is asked about on its own.
      const admin = await platform.token({ sub: 'admin', tenantId: tenant, tenantAdmin: true });
      watch(connect(admin, replica.wsUrl), EVENTS, { id: widgetId });
      await eventually(() => stats().subscriptions === 3, 'the admin subscription');
      expect(stats().authorisations - ran).toBe(1);

      platform.deleteWidget(widgetId);
      const deletedAt = Date.now();
      const late = watch(connect(viewer, replica.wsUrl), EVENTS, { id: widgetId });
      await eventually(() => stats().subscriptions === 4 || late.error !== undefined, 'an answer');
      // Within the memory time, the remembered grant may still let it start (the documented bound)...
      expect(late.error === undefined || Date.now() - deletedAt >= memoryMs).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, memoryMs - (Date.now() - deletedAt) + 50));
      // ...and once it is over, the deleted widget is refused as unknown.
      const refused = watch(connect(viewer, replica.wsUrl), EVENTS, { id: widgetId });
      await refused.done;
      expect(refused.error).toEqual([{ message: 'widget not found', extensions: { code: 'BAD_USER_INPUT' } }]);
      for (const w of [first, again]) w.stop();
    } finally {
      await Promise.all(clients.map((c) => c.dispose()));
      clients = [];
      await replica.close();
    }
  });

  it("should ask about a burst of one caller's widgets 15 to a query, through the gateway's own limits", async () => {
    const client = connect(viewer);
    const widgets = Array.from({ length: 40 }, () => platform.widget(tenant, project));
    const foreign = platform.widget(ids.tenant(), ids.project());
    const before = stats().authorisations;
    const subs = [...widgets, foreign].map((id) => watch(client, EVENTS, { id }));
    await established(40);
    await subs.at(-1)!.done;
    expect(subs.at(-1)!.error).toEqual([{ message: 'widget not found', extensions: { code: 'BAD_USER_INPUT' } }]);
    // 41 questions: at least 3 queries (15 a query), far fewer than 41.
    const ran = stats().authorisations - before;
    expect(ran).toBeGreaterThanOrEqual(3);
    expect(ran).toBeLessThanOrEqual(12);
    await platform.publishEvent(tenant, widgets[39]!, 1);
    await subs[39]!.until(1);
  });

  it('should refuse a subscribe as unavailable when its authorisation does not answer in time', async () => {
    const replica = await platform.startGateway({ authorizationTimeoutMs: 0 });
    try {
      const sub = watch(connect(viewer, replica.wsUrl), EVENTS, { id: platform.widget(tenant, project) });
      await sub.done;
      expect(sub.error).toEqual([
        { message: 'the subscription could not be authorised; retry', extensions: { code: 'SERVICE_UNAVAILABLE' } },
      ]);
      expect(replica.gateway.subscriptions.stats()).toMatchObject({ subscriptions: 0, consumers: 0 });
    } finally {
      await replica.close();
    }
  });

  it('should execute once per event for each distinct selection', async () => {
    const widgetId = platform.widget(tenant, project);
    const brief = `subscription ($id: ID!) { widgetEvents(widgetId: $id) { n } }`;
    const subs = [
      ...Array.from({ length: 10 }, () => watch(connect(viewer), EVENTS, { id: widgetId })),
      // The resume cursor is an argument of the field, not of its selection: these share with the above.
      ...Array.from({ length: 10 }, () => watch(connect(viewer), EVENTS, { id: widgetId, after: null })),
      ...Array.from({ length: 10 }, () => watch(connect(viewer), brief, { id: widgetId })),
    ];
    await established(30);
    const before = stats();
    for (let n = 1; n <= 3; n++) await platform.publishEvent(tenant, widgetId, n);
    await Promise.all(subs.map((s) => s.until(3)));
    expect(stats().executions - before.executions).toBe(6);
    expect(stats().consumers).toBe(1);
  });

  it('should cut off a client that stops reading, with a clear close reason, and keep its buffer bounded', async () => {
    const widgetId = platform.widget(tenant, project);
    const socket = new WebSocket(platform.wsUrl, 'graphql-transport-ws');
    let frames = 0;
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    socket.on('message', () => frames++);
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${viewer}` } }));
    await eventually(() => frames === 1, 'connection_ack');
    const query = 'subscription ($id: ID!) { widgetEvents(widgetId: $id) { n message } }';
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { id: widgetId } } }));
    await established(1);
    socket.pause();

    const message = 'x'.repeat(32 * 1024);
    const slowBefore = stats().slowConsumers;
    let published = 0;
    while (stats().slowConsumers === slowBefore && published < 3000) {
      await platform.publishEvent(tenant, widgetId, ++published, message);
    }
    expect(stats().slowConsumers).toBe(slowBefore + 1);
    // The socket's buffer never held more than the limit and one frame.
    expect(stats().maxBufferedBytes).toBeLessThanOrEqual(BUFFER_LIMIT + message.length + 1024);
    await established(0);
    expect(await platform.metric('fleetgraph_subscription_slow_consumers_total')).toBe(slowBefore + 1);

    socket.resume();
    expect(await closed).toEqual({ code: 1013, reason: SLOW_CONSUMER_REASON });
    // connection_ack, then fewer events than were published: the gateway stopped sending.
    expect(frames - 1).toBeLessThan(published);
  });

  it('should leave no consumer behind when clients disconnect, as /metrics shows', async () => {
    const widgets = [
      platform.widget(tenant, project),
      platform.widget(tenant, project),
      platform.widget(tenant, project),
    ];
    for (const id of widgets) watch(connect(viewer), EVENTS, { id });
    watch(connect(viewer), EVENTS, { id: widgets[0] });
    await established(4);
    expect(await platform.consumerCount('WIDGET_EVENTS')).toBe(3);
    expect(await platform.metric('fleetgraph_subscriptions_open')).toBe(4);
    expect(await platform.metric('fleetgraph_subscription_nats_consumers')).toBe(3);
    expect(await platform.metric('fleetgraph_subscription_connections')).toBe(4);

    await Promise.all(clients.map((c) => c.dispose()));
    await eventually(async () => (await platform.consumerCount('WIDGET_EVENTS')) === 0, 'no consumer on the stream');
    await eventually(
      async () => (await platform.metric('fleetgraph_subscription_nats_consumers')) === 0,
      'the consumers gauge at 0',
    );
    expect(await platform.metric('fleetgraph_subscriptions_open')).toBe(0);
    expect(await platform.metric('fleetgraph_subscription_connections')).toBe(0);
  });

  it('should close sockets with 1001 on shutdown, so that clients resume on another gateway', async () => {
    const widgetId = platform.widget(tenant, project);
    const replica = await platform.startGateway({ bufferLimitBytes: BUFFER_LIMIT });
    const client = connect(viewer, replica.wsUrl);
    const closed = closeOf(client);
    const first = watch(client, EVENTS, { id: widgetId });
    await eventually(
      () => replica.gateway.subscriptions.stats().subscriptions === 1,
      'the subscription on the replica',
    );
    for (let n = 1; n <= 20; n++) await platform.publishEvent(tenant, widgetId, n);
    await first.until(20);
    await replica.close();
    expect(await closed).toMatchObject({ code: 1001 });
    expect(replica.gateway.subscriptions.stats()).toMatchObject({ subscriptions: 0, connections: 0, consumers: 0 });

    for (let n = 21; n <= 40; n++) await platform.publishEvent(tenant, widgetId, n);
    const resumed = watch(connect(viewer), EVENTS, {
      id: widgetId,
      after: first.results.at(-1)!.data!.widgetEvents.cursor,
    });
    await resumed.until(20);
    expect([...first.results, ...resumed.results].map((r) => r.data!.widgetEvents.n)).toEqual(range(1, 40));
  });
  it('should read many watched subjects through one consumer of their pattern, each subscriber getting only its own', async () => {
    const replica = await platform.startGateway({ bufferLimitBytes: BUFFER_LIMIT, patternConsumerAt: 2 });
    try {
      const replicaStats = () => replica.gateway.subscriptions.stats();
      const widgets = Array.from({ length: 5 }, () => platform.widget(tenant, project));
      const foreignTenant = ids.tenant();
      const foreignProject = ids.project();
      const foreignWidget = platform.widget(foreignTenant, foreignProject);
      const foreign = await platform.token({
        sub: 'foreign',
        tenantId: foreignTenant,
        projects: { [foreignProject]: 'viewer' },
      });
      const subs = widgets.map((id) => watch(connect(viewer, replica.wsUrl), EVENTS, { id }));
      const foreignSub = watch(connect(foreign, replica.wsUrl), EVENTS, { id: foreignWidget });
      await eventually(() => replicaStats().subscriptions === 6, 'six subscriptions on the replica');
      // Two subjects on consumers of their own, the four others on one consumer of widgets.v1.events.*.*
      expect(replicaStats().consumers).toBe(3);
      expect(await platform.consumerCount('WIDGET_EVENTS')).toBe(3);

      const unwatched = platform.widget(tenant, project);
      for (let n = 1; n <= 20; n++) {
        for (const [i, id] of widgets.entries()) await platform.publishEvent(tenant, id, i * 100 + n);
        await platform.publishEvent(tenant, unwatched, -n);
        await platform.publishEvent(foreignTenant, foreignWidget, 1000 + n);
      }
      await Promise.all([...subs, foreignSub].map((sub) => sub.until(20)));
      for (const [i, sub] of subs.entries())
        expect(sub.results.map((r) => r.data!.widgetEvents.n)).toEqual(range(i * 100 + 1, i * 100 + 20));
      expect(foreignSub.results.map((r) => r.data!.widgetEvents.n)).toEqual(range(1001, 1020));

      // A cursor on a subject read through the pattern: its retained events after it, then live, no gap or duplicate.
      const last = widgets[4]!;
      const cursor = subs[4]!.results[9]!.data!.widgetEvents.cursor;
      const resumed = watch(connect(viewer, replica.wsUrl), EVENTS, { id: last, after: cursor });
      await resumed.until(10);
      for (let n = 21; n <= 25; n++) await platform.publishEvent(tenant, last, 400 + n);
      await resumed.until(15);
      expect(resumed.results.map((r) => r.data!.widgetEvents.n)).toEqual(range(411, 425));
      await Promise.all(clients.map((c) => c.dispose()));
      clients = [];
      await eventually(
        () => replicaStats().consumers === 0 && replicaStats().subscriptions === 0,
        'no consumer left on the replica',
      );
    } finally {
      await replica.close();
    }
  });
});
