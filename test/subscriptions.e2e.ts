import { createClient as createSseClient } from 'graphql-sse';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startPlatform, type Platform } from './src/index.js';

/** Polls `check` every 100 ms until it holds, for up to 60 s. */
async function waitFor(check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Subscriptions over graphql-ws (and SSE) through the real gateway, fed by the real clusters service. */
describe('cluster subscriptions through the gateway', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  let viewer: string;
  let editor: string;
  let stranger: string;
  let profileId: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 300 },
      env: { RECONCILE_PROGRESS_MS: '100', RECONCILE_POLL_MS: '50' },
    });
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    stranger = await platform.token(seed.user(seed.tenant(), { [project]: 'admin' }));
    const created = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project) },
      editor,
    );
    profileId = created.data!.createClusterProfile.profile.id;
  });

  afterAll(async () => {
    for (const client of clients) await client.dispose();
    await platform?.stop();
  });

  /**
   * A cluster's first 100 events as Cluster.events has them, once it holds `last`: it stores an
   * event once the relay has published it, a moment after the stream (and a subscriber) has it.
   */
  async function storedEvents(id: string, last: string): Promise<{ cursor: string; reason: string }[]> {
    let all: { cursor: string; reason: string }[] = [];
    for (let i = 0; i < 200 && !all.some((e) => e.cursor === last); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      all = (
        await platform.graphql(
          `query($id: ID!) { cluster(id: $id) { events(first: 100) { nodes { cursor reason } } } }`,
          { id },
          viewer,
        )
      ).data!.cluster.events.nodes;
    }
    return all;
  }

  const connect = (token: string) => {
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    });
    clients.push(client);
    return client;
  };

  async function createCluster(projectId = project, token = editor, profile = profileId): Promise<string> {
    const r = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code message } } }`,
      {
        input: {
          projectId,
          name: seed.project(),
          profileId: profile,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: 1, instanceType: 't3.medium' },
          ],
        },
      },
      token,
    );
    expect(r.data!.createCluster.userErrors).toEqual([]);
    return r.data!.createCluster.cluster.id;
  }

  it('should send the current conditions first, then every change until RUNNING', async () => {
    const id = await createCluster();
    const updates: { phase: string; conditions: { type: string; status: string }[] }[] = [];
    const iterator = connect(viewer).iterate<{ clusterConditions: (typeof updates)[number] }>({
      query: `subscription($id: ID!) { clusterConditions(clusterId: $id) { clusterId phase conditions { type status active failed lastTransitionTime } } }`,
      variables: { id },
    });
    for await (const result of iterator) {
      expect(result.errors).toBeUndefined();
      updates.push(result.data!.clusterConditions);
      if (result.data!.clusterConditions.phase === 'RUNNING') break;
    }
    expect(['PENDING', 'PROVISIONING', 'RUNNING']).toContain(updates[0]!.phase);
    expect(updates.at(-1)!.conditions.every((c) => c.status === 'TRUE')).toBe(true);
  });

  it('should replay the events after a cursor taken from Cluster.events, then go live, with no gap or duplicate', async () => {
    const id = await createCluster();
    // Wait for some history, take a cursor in its middle.
    let history: { cursor: string; reason: string }[] = [];
    for (let i = 0; i < 200 && history.length < 4; i++) {
      history = (
        await platform.graphql(
          `query($id: ID!) { cluster(id: $id) { events(first: 100) { nodes { cursor reason } } } }`,
          { id },
          viewer,
        )
      ).data!.cluster.events.nodes;
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = history[1]!.cursor;
    const received: { cursor: string; reason: string }[] = [];
    const iterator = connect(viewer).iterate<{ clusterEvents: { cursor: string; reason: string } }>({
      query: `subscription($id: ID!, $after: String) { clusterEvents(clusterId: $id, after: $after) { cursor reason } }`,
      variables: { id, after },
    });
    for await (const result of iterator) {
      expect(result.errors).toBeUndefined();
      received.push(result.data!.clusterEvents);
      if (result.data!.clusterEvents.reason === 'PhaseRunning') break;
    }
    const all = await storedEvents(id, received.at(-1)!.cursor);
    const expected = all.slice(all.findIndex((e: { cursor: string }) => e.cursor === after) + 1);
    expect(received).toEqual(expected.slice(0, received.length));
    expect(received.at(-1)!.reason).toBe('PhaseRunning');
  });

  it('should refuse a cursor no event has yet on every transport, and take the newest one', async () => {
    const id = await createCluster();
    let history: { cursor: string; reason: string }[] = [];
    for (let i = 0; i < 200 && history.length < 1; i++) {
      history = (
        await platform.graphql(
          `query($id: ID!) { cluster(id: $id) { events(first: 1000) { nodes { cursor reason } } } }`,
          { id },
          viewer,
        )
      ).data!.cluster.events.nodes;
      await new Promise((r) => setTimeout(r, 50));
    }
    const query = `subscription($id: ID!, $after: String) { clusterEvents(clusterId: $id, after: $after) { cursor reason } }`;
    const refusal = [
      {
        message: 'after is not a cursor of an event of Subscription.clusterEvents: it is past the last one',
        extensions: { code: 'BAD_USER_INPUT' },
      },
    ];
    // Accepted before, and then every live event was skipped (up to that sequence): silence.
    const client = connect(viewer);
    const refused = await new Promise<unknown>((resolve) => {
      setTimeout(() => resolve('nothing in 10 s'), 10_000).unref();
      client.subscribe(
        { query, variables: { id, after: '9999999999' } },
        { next: (result) => resolve({ next: result }), error: resolve, complete: () => resolve('complete') },
      );
    });
    expect(refused).toEqual(refusal);
    const sse = createSseClient({
      url: `${platform.gatewayUrl}/stream`,
      headers: { authorization: `Bearer ${viewer}` },
      retryAttempts: 0,
    });
    const overSse: unknown[] = [];
    for await (const result of sse.iterate({ query, variables: { id, after: '9999999999' } })) overSse.push(result);
    sse.dispose();
    expect(overSse).toEqual([{ errors: refusal }]);

    // The newest cursor Cluster.events gives (the subject's last event, or about to be): live from there.
    const after = history.at(-1)!.cursor;
    const received: { cursor: string; reason: string }[] = [];
    for await (const result of client.iterate<{ clusterEvents: { cursor: string; reason: string } }>({
      query,
      variables: { id, after },
    })) {
      expect(result.errors).toBeUndefined();
      received.push(result.data!.clusterEvents);
      if (result.data!.clusterEvents.reason === 'PhaseRunning') break;
    }
    expect(Number(received[0]!.cursor)).toBeGreaterThan(Number(after));
    expect(received.at(-1)!.reason).toBe('PhaseRunning');
  });

  it('should follow the fleet: each cluster the caller may read now, then its changes, and nothing of other projects', async () => {
    const other = seed.project();
    const otherAdmin = await platform.token(seed.user(tenant, { [other]: 'admin' }));
    const tenantAdmin = await platform.token({ sub: 'boss', tenantId: tenant, tenantAdmin: true });
    const otherProfile = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(other) },
      otherAdmin,
    );
    const before = await createCluster();
    type Entry = { id: string; projectId: string; phase: string; nodeCount: number; cursor: string };
    const follow = (token: string, variables: Record<string, unknown>) => {
      const seen: Entry[] = [];
      let error: unknown;
      const done = connect(token).subscribe<{ fleet: Entry }>(
        {
          query: `subscription($projectId: ID) { fleet(projectId: $projectId) { id projectId phase nodeCount cursor condition { type failed } } }`,
          variables,
        },
        {
          next: (r) => {
            if (r.data) seen.push(r.data.fleet);
            else error = r.errors;
          },
          error: (e) => {
            error = e;
          },
          complete: () => {},
        },
      );
      return { seen, error: () => error, done };
    };
    const mine = follow(viewer, {});
    const all = follow(tenantAdmin, {});
    const refused = follow(viewer, { projectId: other });
    const created = await createCluster();
    const foreign = await createCluster(other, otherAdmin, otherProfile.data!.createClusterProfile.profile.id);
    const phases = (entries: Entry[], id: string) => entries.filter((e) => e.id === id).map((e) => e.phase);
    await waitFor(
      () => phases(mine.seen, created).includes('RUNNING') && phases(all.seen, foreign).includes('RUNNING'),
    );
    expect(refused.error()).toMatchObject([{ message: 'project not found', extensions: { code: 'BAD_USER_INPUT' } }]);
    // The cluster created before the subscription came first, as it was; nothing of the other project reached the viewer.
    const firstOf = (id: string) => mine.seen.findIndex((e) => e.id === id);
    expect(mine.seen[firstOf(before)]).toMatchObject({ projectId: project, nodeCount: 2 });
    expect(firstOf(before)).toBeLessThan(firstOf(created));
    expect(mine.seen.every((e) => e.projectId === project)).toBe(true);
    expect(phases(mine.seen, created)[0]).toBe('PENDING');
    expect(all.seen.some((e) => e.id === before) && all.seen.some((e) => e.id === created)).toBe(true);
    const cursors = mine.seen.map((e) => Number(e.cursor));
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    expect(new Set(cursors).size).toBe(cursors.length);

    const deleted = await platform.graphql(
      `mutation($id: ID!) { deleteCluster(id: $id) { userErrors { code message } } }`,
      { id: created },
      await platform.token(seed.user(tenant, { [project]: 'admin' })),
    );
    expect(deleted.errors).toBeUndefined();
    await waitFor(() => phases(mine.seen, created).includes('DELETED'));
  });

  it("should refuse another tenant's cluster exactly like an unknown one", async () => {
    const id = await createCluster();
    const errorsOf = async (clusterId: string) => {
      const iterator = connect(stranger).iterate({
        query: `subscription($id: ID!) { clusterConditions(clusterId: $id) { phase } }`,
        variables: { id: clusterId },
      });
      try {
        for await (const result of iterator) return result.errors?.map((e) => e.message);
      } catch (error) {
        // graphql-ws ends a refused subscription with its list of GraphQL errors.
        return (Array.isArray(error) ? error : [error]).map((e: { message?: string }) => String(e?.message ?? e));
      }
      return [];
    };
    const foreign = await errorsOf(id);
    expect(foreign?.[0]).toMatch(/not found/);
    expect(await errorsOf('cls_unknown')).toEqual(foreign);
  });
  it('should serve the same over Server-Sent Events: events after a cursor, then live, and refuse a foreign cluster', async () => {
    const id = await createCluster();
    let history: { cursor: string; reason: string }[] = [];
    for (let i = 0; i < 200 && history.length < 3; i++) {
      history = (
        await platform.graphql(
          `query($id: ID!) { cluster(id: $id) { events(first: 100) { nodes { cursor reason } } } }`,
          { id },
          viewer,
        )
      ).data!.cluster.events.nodes;
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = history[0]!.cursor;
    const sse = (token: string) =>
      createSseClient({
        url: `${platform.gatewayUrl}/stream`,
        headers: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
      });
    const received: { cursor: string; reason: string }[] = [];
    const client = sse(viewer);
    for await (const result of client.iterate<{ clusterEvents: { cursor: string; reason: string } }>({
      query: `subscription($id: ID!, $after: String) { clusterEvents(clusterId: $id, after: $after) { cursor reason } }`,
      variables: { id, after },
    })) {
      expect(result.errors).toBeUndefined();
      received.push(result.data!.clusterEvents);
      if (result.data!.clusterEvents.reason === 'PhaseRunning') break;
    }
    client.dispose();
    const all = await storedEvents(id, received.at(-1)!.cursor);
    expect(received).toEqual(all.slice(1, 1 + received.length));
    expect(received.at(-1)!.reason).toBe('PhaseRunning');

    const foreign = sse(stranger);
    const refused: unknown[] = [];
    for await (const result of foreign.iterate({
      query: `subscription($id: ID!) { clusterConditions(clusterId: $id) { phase } }`,
      variables: { id },
    }))
      refused.push(result);
    foreign.dispose();
    expect(refused).toEqual([{ errors: [{ message: 'cluster not found', extensions: { code: 'BAD_USER_INPUT' } }] }]);
  });
});
