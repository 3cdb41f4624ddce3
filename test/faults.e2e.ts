import { fileURLToPath } from 'node:url';
import { generateNatsKeys, serviceCredentials } from '@fleetgraph/kit';
import { createClient } from 'graphql-ws';
import { connect, credsAuthenticator } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startPlatform, startProcess, type Platform } from './src/index.js';

const root = fileURLToPath(new URL('../', import.meta.url));

interface Event {
  cursor: string;
  reason: string;
  object: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const asCreds = (creds: string) => credsAuthenticator(new TextEncoder().encode(creds));

/**
 * Faults through the real gateway and services: nats-server restarted while clusters provision
 * and subscribers follow their events, the clusters service killed with SIGKILL in the middle of
 * a step, and a cloud that fails a share of its calls. Nothing is lost, doubled or orphaned.
 */
describe('faults', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  let editor: string;
  let profileId: string;

  beforeAll(async () => {
    // Slow enough that provisioning is under way while the faults happen.
    platform = await startPlatform({
      localCloud: { speed: 25 },
      env: { RECONCILE_PROGRESS_MS: '100', RECONCILE_POLL_MS: '50', RECONCILE_BACKOFF_CAP_MS: '1000' },
    });
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    const created = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project) },
      editor,
    );
    profileId = created.data!.createClusterProfile.profile.id;
  }, 120_000);

  afterAll(async () => {
    await platform?.stop();
  });

  async function createCluster(workers: number): Promise<string> {
    const r = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code message } } }`,
      {
        input: {
          projectId: project,
          name: seed.project(),
          profileId,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: workers, instanceType: 't3.medium' },
          ],
        },
      },
      editor,
    );
    expect(r.data!.createCluster.userErrors).toEqual([]);
    return r.data!.createCluster.cluster.id;
  }

  const phaseOf = async (id: string): Promise<string | undefined> =>
    (await platform.graphql(`query($id: ID!) { cluster(id: $id) { phase } }`, { id }, editor).catch(() => undefined))
      ?.data?.cluster?.phase;

  async function untilRunning(ids: string[], timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const id of ids) {
      while ((await phaseOf(id)) !== 'RUNNING') {
        if (Date.now() > deadline) throw new Error(`${id} is not RUNNING (${await phaseOf(id)})`);
        await sleep(200);
      }
    }
  }

  /** Every retained event of a cluster, paged from Cluster.events. */
  async function eventsOf(id: string): Promise<Event[]> {
    const all: Event[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { nodes: Event[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } = (
        await platform.graphql(
          `query($id: ID!, $after: String) { cluster(id: $id) { events(first: 100, after: $after) { nodes { cursor reason object } pageInfo { hasNextPage endCursor } } } }`,
          { id, after },
          editor,
        )
      ).data!.cluster.events;
      all.push(...page.nodes);
      if (!page.pageInfo.hasNextPage) return all;
      after = page.pageInfo.endCursor;
    }
  }

  /** Cluster.events once it holds the PhaseRunning event (events reach it a moment after the phase). */
  async function historyOf(id: string): Promise<Event[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const events = await eventsOf(id);
      if (events.some((e) => e.reason === 'PhaseRunning') || Date.now() > deadline) return events;
      await sleep(100);
    }
  }

  /**
   * Follows a cluster's events over graphql-ws from its first one until PhaseRunning, as a careful
   * client does: on any error or end it subscribes again after the last cursor it has. Its first
   * connection drops after three events, as a flaky network would drop it.
   */
  async function follow(id: string): Promise<{ events: Event[]; resumes: number }> {
    const events: Event[] = [];
    let resumes = -1;
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline) {
      resumes++;
      const client = createClient({
        url: platform.gatewayUrl.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${editor}` },
        retryAttempts: 0,
      });
      try {
        for await (const result of client.iterate<{ clusterEvents: Event }>({
          query: `subscription($id: ID!, $after: String) { clusterEvents(clusterId: $id, after: $after) { cursor reason object } }`,
          variables: { id, after: events.at(-1)?.cursor ?? '0' },
        })) {
          if (result.errors) break;
          events.push(result.data!.clusterEvents);
          if (result.data!.clusterEvents.reason === 'PhaseRunning') return { events, resumes };
          if (resumes === 0 && events.length === 3) break;
        }
      } catch {
        // the connection or the subscription failed: resume below
      } finally {
        await client.dispose();
      }
      await sleep(250);
    }
    throw new Error(`${id}: no PhaseRunning event after ${resumes} resumes (${events.length} events)`);
  }

  /** What provisioning must have recorded, once each: its phases, milestones and one event per machine. */
  function expectProvisioningHistory(events: Event[], machines: number) {
    const count = (reason: string) => events.filter((e) => e.reason === reason).length;
    for (const reason of [
      'PhaseProvisioning',
      'NetworkReady',
      'ControlPlaneReady',
      'WorkersReady',
      'AddonsInstalled',
      'PhaseRunning',
    ])
      expect(count(reason), reason).toBe(1);
    // The image's own event and its milestone's.
    expect(count('ImageReady')).toBe(2);
    const created = events.filter((e) => e.reason === 'MachineCreated').map((e) => e.object);
    expect(created).toHaveLength(machines);
    expect(new Set(created).size).toBe(machines);
    expect(new Set(events.map((e) => e.cursor)).size).toBe(events.length);
  }

  it("should refuse a NATS client without credentials, or with another operator's, and take the platform's own", async () => {
    await expect(connect({ servers: platform.natsUrl, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
    // A well-formed user, of an account of another operator, even named as a service.
    const foreign = await serviceCredentials(generateNatsKeys(), 'clusters');
    await expect(
      connect({ servers: platform.natsUrl, reconnect: false, authenticator: asCreds(foreign) }),
    ).rejects.toThrow(/Authorization Violation/i);
    // The server is there and answers who holds the platform's credentials.
    const own = await connect({
      servers: platform.natsUrl,
      reconnect: false,
      authenticator: asCreds(await platform.credentials('faults-e2e')),
    });
    await own.flush();
    await own.close();
  });

  it('should record every event of steps taken while nats-server restarts, and deliver each once to resumed subscribers', async () => {
    const ids = await Promise.all([createCluster(2), createCluster(3), createCluster(2)]);
    const followers = ids.map((id) => follow(id));
    // Restart NATS while the clusters provision: steps go on (they need no NATS to store their
    // events), the outbox publishes once NATS is back.
    await sleep(1_500);
    expect(await Promise.all(ids.map(phaseOf))).not.toContain('RUNNING');
    await platform.restartNats(4_000);

    await untilRunning(ids);
    const followed = await Promise.all(followers);
    for (const [i, id] of ids.entries()) {
      const stored = await historyOf(id);
      expectProvisioningHistory(stored, i === 1 ? 4 : 3);
      // Each subscriber got exactly the stored history, in order, however often it resumed.
      expect(followed[i]!.events).toEqual(stored.slice(0, followed[i]!.events.length));
      expect(followed[i]!.events.at(-1)!.reason).toBe('PhaseRunning');
    }
    for (const f of followed) expect(f.resumes).toBeGreaterThan(0);
  }, 180_000);

  it('should finish a cluster whose only clusters service was killed mid-step, with one event per machine', async () => {
    const id = await createCluster(4);
    const deadline = Date.now() + 60_000;
    while (!(await platform.localCloud.quota('local-1')).vcpuUsed || (await phaseOf(id)) !== 'PROVISIONING') {
      if (Date.now() > deadline) throw new Error('provisioning did not start');
      await sleep(50);
    }
    const old = platform.services.get('clusters')!;
    old.child.kill('SIGKILL');
    await new Promise((resolve) => old.child.once('exit', resolve));
    // The gateway knows the service at its port: the new process takes the same one.
    // As the platform started it: its own NATS user, and the account key its agents' credentials are minted with.
    const restarted = await startProcess('clusters', `${root}services/clusters/dist/main.js`, {
      ...(await platform.envFor('clusters')),
      NATS_ACCOUNT_SEED: platform.nats.security.accountSeed,
      RECONCILE_LEASE_MS: '1000',
      PORT: new URL(old.url).port,
    });
    platform.services.set('clusters', restarted);

    await untilRunning([id]);
    expectProvisioningHistory(await historyOf(id), 5);
  }, 120_000);

  it('should converge under a cloud that fails calls, showing failed conditions with the cloud error, doubling no machine', async () => {
    // 0.3 is mostly absorbed by the SDK's own retries; 0.8 makes steps fail.
    const id = await createCluster(3);
    await platform.localCloud.setFaults({ errorRate: 0.8 });
    try {
      let failed: { type: string; message: string; code: string } | undefined;
      const deadline = Date.now() + 60_000;
      while (!failed) {
        if (Date.now() > deadline) throw new Error('no failed condition');
        const conditions =
          (
            await platform.graphql(
              `query($id: ID!) { cluster(id: $id) { conditions { type failed message code } } }`,
              { id },
              editor,
            )
          ).data?.cluster?.conditions ?? [];
        failed = conditions.find((c: { failed: boolean }) => c.failed);
        await sleep(100);
      }
      expect(failed.message).toMatch(/overloaded|unavailable/i);
      await platform.localCloud.setFaults({ errorRate: 0.3 });
      await untilRunning([id]);
    } finally {
      await platform.localCloud.resetFaults();
    }
    expectProvisioningHistory(await historyOf(id), 4);
    const conditions = (
      await platform.graphql(`query($id: ID!) { cluster(id: $id) { conditions { failed } } }`, { id }, editor)
    ).data!.cluster.conditions;
    expect(conditions.every((c: { failed: boolean }) => !c.failed)).toBe(true);
  }, 120_000);
});
