import type { Client } from 'graphql-ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, watch, type Watcher } from './watch.fixture.js';
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

/** How the subscription ended, and when, or that it did not within `timeoutMs`. */
async function ending(
  sub: Watcher,
  timeoutMs: number,
): Promise<{ ms: number; error?: unknown; completed: boolean } | 'still running'> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'still running'>(
    (resolve) => (timer = setTimeout(() => resolve('still running'), timeoutMs)),
  );
  const outcome = await Promise.race([
    sub.done.then(() => ({ ms: Date.now() - started, error: sub.error, completed: sub.completed })),
    timedOut,
  ]);
  clearTimeout(timer);
  return outcome;
}

/**
 * Subscribes during a NATS outage and right after it: a real nats-server stopped and started again
 * (same port, same JetStream data) under a running gateway.
 */
describe('subscriptions across a NATS outage', () => {
  let platform: WidgetsPlatform;
  const tenant = ids.tenant();
  const project = ids.project();
  let viewer: string;
  let clients: Client[] = [];
  const connect = () => {
    const client = platform.client(viewer);
    clients.push(client);
    return client;
  };
  const stats = () => platform.gateway.subscriptions.stats();

  beforeAll(async () => {
    platform = await startWidgetsPlatform();
    viewer = await platform.token({ sub: 'viewer', tenantId: tenant, projects: { [project]: 'viewer' } });
  });

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    clients = [];
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('should refuse a subscribe at once while NATS is away, and serve the first one once the gateway has reconnected', async () => {
    const client = connect();
    const watched = platform.widget(tenant, project);
    const running = watch(client, EVENTS, { id: watched });
    await eventually(() => stats().subscriptions === 1, 'the subscription to start');
    const firstCursor = String(await platform.publishEvent(tenant, watched, 1));
    await running.until(1);

    await platform.stopNats();
    await eventually(() => !platform.gatewayBus.connected, 'the gateway to see NATS go');

    // Each kind of start: a subject nobody watches (a new consumer), one watched (its shared
    // consumer), a replay after a cursor, and the last state.
    const during = [
      watch(client, EVENTS, { id: platform.widget(tenant, project) }),
      watch(client, EVENTS, { id: watched }),
      watch(client, EVENTS, { id: watched, after: firstCursor }),
      watch(client, STATE, { id: platform.widget(tenant, project) }),
    ];
    for (const sub of during) {
      const outcome = await ending(sub, 5_000);
      expect(outcome).not.toBe('still running');
      const { ms, error } = outcome as { ms: number; error?: unknown };
      expect(ms).toBeLessThan(2_000);
      expect(error).toEqual([{ message: expect.stringMatching(/retry/), extensions: { code: 'SERVICE_UNAVAILABLE' } }]);
    }
    // Over SSE too: the same engine, the same answer, and the stream ends.
    const started = Date.now();
    const response = await fetch(new URL('/graphql/stream', platform.gateway.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer}`, accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ query: EVENTS, variables: { id: watched } }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    expect(Date.now() - started).toBeLessThan(2_000);
    const next = /event: next\ndata: (.*)\n/.exec(body)?.[1];
    expect(JSON.parse(next ?? 'null')).toEqual({
      errors: [{ message: expect.stringMatching(/retry/), extensions: { code: 'SERVICE_UNAVAILABLE' } }],
    });
    expect(body).toContain('event: complete');

    await platform.startNats();
    await eventually(
      () => platform.gatewayBus.connected && platform.bus.connected,
      'the gateway and the publisher to reconnect',
    );

    // The first subscribe of each kind succeeds.
    const fresh = platform.widget(tenant, project);
    const before = stats().subscriptions;
    const live = watch(client, EVENTS, { id: fresh });
    const replay = watch(client, EVENTS, { id: watched, after: firstCursor });
    await platform.publishState(tenant, fresh, 'ACTIVE', 1);
    const state = watch(client, STATE, { id: fresh });
    await eventually(
      () => stats().subscriptions >= before + 3 || [live, replay, state].some((s) => s.error !== undefined),
      'the three subscriptions to start',
    );
    expect([live.error, replay.error, state.error]).toEqual([undefined, undefined, undefined]);
    const second = String(await platform.publishEvent(tenant, watched, 2));
    await platform.publishEvent(tenant, fresh, 7);
    await Promise.all([live.until(1), replay.until(1), state.until(1)]);
    expect(live.results[0]).toMatchObject({ data: { widgetEvents: { n: 7 } } });
    expect(replay.results[0]).toEqual({ data: { widgetEvents: { cursor: second, n: 2 } } });
    expect(state.results[0]).toEqual({ data: { widgetState: { status: 'ACTIVE', revision: 1 } } });
    expect([live.error, replay.error, state.error]).toEqual([undefined, undefined, undefined]);
    // The subscription that ran through the outage goes on too.
    await running.until(2);
    expect(running.results.at(-1)).toEqual({ data: { widgetEvents: { cursor: second, n: 2 } } });
  });

  it('should fail at once the subscribes waiting on NATS when it goes away, and not fail those that come after it is back', async () => {
    const client = connect();
    const events = platform.widget(tenant, project);
    const states = platform.widget(tenant, project);
    await platform.publishState(tenant, states, 'ACTIVE', 1);
    // NATS stops answering, without the gateway noticing: the subscribes' JetStream requests wait.
    process.kill(platform.nats.pid, 'SIGSTOP');
    let killed = false;
    try {
      const waiting = [watch(client, EVENTS, { id: events }), watch(client, STATE, { id: states })];
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(waiting.map((sub) => sub.error)).toEqual([undefined, undefined]);
      // Then it goes away: the gateway's connection breaks.
      process.kill(platform.nats.pid, 'SIGKILL');
      killed = true;
      for (const sub of waiting) {
        const outcome = await ending(sub, 5_000);
        expect(outcome).not.toBe('still running');
        const { ms, error } = outcome as { ms: number; error?: unknown };
        expect(ms).toBeLessThan(2_000);
        expect(error).toEqual([
          { message: expect.stringMatching(/retry/), extensions: { code: 'SERVICE_UNAVAILABLE' } },
        ]);
      }
    } finally {
      if (!killed) process.kill(platform.nats.pid, 'SIGKILL');
      await platform.stopNats();
    }
    await platform.startNats();
    await eventually(
      () => platform.gatewayBus.connected && platform.bus.connected,
      'the gateway and the publisher to reconnect',
    );

    // The same subjects at once: nothing of the failed starts is left to fail these.
    const before = stats().subscriptions;
    const live = watch(client, EVENTS, { id: events });
    const state = watch(client, STATE, { id: states });
    await eventually(
      () => stats().subscriptions >= before + 2 || [live, state].some((s) => s.error !== undefined),
      'the two subscriptions to start',
    );
    expect([live.error, state.error]).toEqual([undefined, undefined]);
    await platform.publishEvent(tenant, events, 3);
    await Promise.all([live.until(1), state.until(1)]);
    expect(live.results[0]).toMatchObject({ data: { widgetEvents: { n: 3 } } });
    expect(state.results[0]).toEqual({ data: { widgetState: { status: 'ACTIVE', revision: 1 } } });
  });
});
