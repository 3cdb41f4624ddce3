import { fileURLToPath } from 'node:url';
import { createBus, createLogger, type Bus } from '@fleetgraph/kit';
import { createProvider } from '@fleetgraph/clouds';
import { getCluster } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startPlatform, startProcess, type Platform, type ServiceProcess } from './src/index.js';

const root = fileURLToPath(new URL('../', import.meta.url));

/**
 * Two replicas of the clusters service share the store (SQLite in WAL mode across processes,
 * as MongoDB would be) and NATS. The one working on a cluster is killed with SIGKILL in the
 * middle of provisioning; the other takes the cluster over when the lease runs out.
 */
describe('clusters service replicas', () => {
  let platform: Platform;
  let second: ServiceProcess;
  let bus: Bus;
  const tenant = seed.tenant();
  const project = seed.project();
  let editor: string;

  beforeAll(async () => {
    const env = { RECONCILE_LEASE_MS: '1500', RECONCILE_POLL_MS: '50', RECONCILE_PROGRESS_MS: '100' };
    // Slow enough that provisioning is still under way when the replica dies.
    platform = await startPlatform({ localCloud: { speed: 20 }, env });
    // A replica as the platform starts its clusters service: its own NATS user, and the account key its agents' credentials are minted with.
    second = await startProcess('clusters-2', `${root}services/clusters/dist/main.js`, {
      ...(await platform.envFor('clusters-2')),
      NATS_ACCOUNT_SEED: platform.nats.security.accountSeed,
      ...env,
      PORT: '0',
    });
    bus = await createBus({
      url: platform.natsUrl,
      name: 'replicas-test',
      log: createLogger('replicas-test', 'silent'),
      credentials: await platform.credentials('replicas-test'),
    });
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
  });

  afterAll(async () => {
    await bus?.close();
    await second?.stop();
    await platform?.stop();
  });

  it('should let the surviving replica finish a cluster whose replica was killed, doubling and orphaning no machine', async () => {
    const profile = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project) },
      editor,
    );
    const created = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code } } }`,
      {
        input: {
          projectId: project,
          name: 'replicated',
          profileId: profile.data!.createClusterProfile.profile.id,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'cp', role: 'CONTROL_PLANE', count: 3, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: 4, instanceType: 't3.medium' },
          ],
        },
      },
      editor,
    );
    const id = created.data!.createCluster.cluster.id;
    const cloud = createProvider({ type: 'LOCAL', region: 'local-1', endpoint: platform.localCloudUrl });
    try {
      // Kill the first replica once machines are being created.
      const deadline = Date.now() + 60_000;
      while ((await cloud.describeMachines({ clusterId: id, region: 'local-1' })).length === 0) {
        if (Date.now() > deadline) throw new Error('no machine was created');
        await new Promise((r) => setTimeout(r, 50));
      }
      platform.services.get('clusters')!.child.kill('SIGKILL');

      let phase = '';
      while (phase !== 'RUNNING') {
        if (Date.now() > deadline + 60_000) throw new Error(`the surviving replica did not finish (phase ${phase})`);
        phase = (await bus.request(getCluster, { tenantId: tenant, id }).catch(() => ({ phase: '' }))).phase;
        await new Promise((r) => setTimeout(r, 200));
      }
      const machines = await cloud.describeMachines({ clusterId: id, region: 'local-1', includeTerminated: true });
      expect(machines.filter((m) => m.pool === 'cp' && m.state === 'running')).toHaveLength(3);
      expect(machines.filter((m) => m.pool === 'workers' && m.state === 'running')).toHaveLength(4);
      // Nothing doubled: every machine ever made for the cluster is one of those running.
      expect(machines.filter((m) => m.state !== 'running')).toEqual([]);
    } finally {
      await cloud.close();
    }
  });
});
