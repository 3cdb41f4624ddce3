import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalProvider, TagKeys, type CloudProvider } from '@fleetgraph/clouds';
import { createBus, createLogger, createStore, Identity, type Bus, type Delivery, type Store } from '@fleetgraph/kit';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { startLocalCloud, type LocalCloud } from '@fleetgraph/local-cloud';
import { imageStatusChanged, resolveImage, type ImageMessage } from '@fleetgraph/schema';
import { graphql, type GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClouds } from './adapters/clouds.js';
import { BUILDER_CLUSTER_ID } from './app/image-worker.js';
import { ImageTagKeys } from './domain/catalogue.js';
import { buildImagesSchema } from './schema/index.js';
import { startImagesService, type ImagesService } from './service.js';

// Vite resolves `graphql` to its ESM build, while type-graphql and @apollo/subgraph, loaded by
// Node, get the CommonJS one: two graphql instances, and schemas that mix them fail. One
// instance for everything here: the one Node loads.
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

/**
 * The images service against real servers: a nats-server with JetStream, a local cloud in this
 * process (at 500 times real speed: a boot takes ~0.1 s, an image copy or capture ~0.5 s), and a
 * SQLite store in a temporary directory. Requests go over NATS, as the orchestrator sends them.
 */
const log = createLogger('images-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const SPEED = 500;
const FAST = { pollMs: 20, sweepMs: 200, leaseMs: 3_000, simulatedTaskMs: 5 };

let counter = 0;
const seed = {
  tenant: () => `tenant-${process.pid}-${++counter}`,
  request(
    tenantId: string,
    overrides: {
      os?: Record<string, unknown>;
      kubernetes?: Record<string, unknown>;
      region?: string;
      clusterId?: string;
    } = {},
  ) {
    return {
      tenantId,
      projectId: 'web',
      cloud: 'LOCAL' as const,
      region: overrides.region ?? 'local-1',
      ...(overrides.clusterId ? { clusterId: overrides.clusterId } : {}),
      os: { type: 'OS' as const, name: 'ubuntu', version: '22.04', ...overrides.os },
      kubernetes: { type: 'KUBERNETES' as const, name: 'kubernetes', version: '1.30.4', ...overrides.kubernetes },
    };
  },
};

describe('images service against a real nats-server and local cloud', () => {
  let nats: NatsServer;
  let dir: string;
  let cloud: LocalCloud;
  let provider: CloudProvider;
  let store: Store;
  let bus: Bus;
  let client: Bus;
  let service: ImagesService;
  /** Builder machines that reached running, per image id. */
  const builders = new Map<string, string[]>();
  const events: Delivery<ImageMessage>[] = [];

  const start = async () => {
    const clouds = createClouds({
      local: { url: cloud.url, sourceRegion: 'local-1', builderInstanceType: 't3.medium' },
      aws: null,
      azure: null,
    });
    return startImagesService({ store, bus, clouds, log, worker: FAST });
  };

  beforeAll(async () => {
    nats = await startNatsServer();
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-images-'));
    cloud = await startLocalCloud({ dataDir: join(dir, 'cloud'), speed: SPEED });
    cloud.machineEvents.on((change) => {
      const imageId = change.machine.tags[ImageTagKeys.imageId];
      if (change.type === 'running' && imageId)
        builders.set(imageId, [...(builders.get(imageId) ?? []), change.machine.id]);
    });
    provider = createLocalProvider({ endpoint: cloud.url });
    store = await createStore({ dataDir: dir, service: 'images' });
    bus = await createBus({ url: nats.url, name: 'images', log, credentials: await nats.credentials('images') });
    client = await createBus({
      url: nats.url,
      name: 'orchestrator',
      log,
      credentials: await nats.credentials('orchestrator'),
    });
    service = await start();
    await service.seeded;
    await client.consume(imageStatusChanged, { durable: 'images-test', handle: async (d) => void events.push(d) });
  });

  afterAll(async () => {
    await service?.stop();
    await client?.close();
    await bus?.close();
    await store?.close();
    await provider?.close();
    await cloud?.close();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const resolve = (request: ReturnType<typeof seed.request>) =>
    client.request(resolveImage, request, { timeoutMs: 10_000 });

  /** Waits until the image is READY or FAILED, as the store has it. */
  const settled = async (id: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const image = await service.images.get(id);
      if (image && (image.status === 'READY' || image.status === 'FAILED')) return image;
      if (Date.now() > deadline) throw new Error(`image ${id} is still ${image?.status}: ${image?.log.join('\n')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const statusesOf = async (id: string, last: string) => {
    const deadline = Date.now() + 5_000;
    const seen = () => events.filter((e) => e.payload.id === id).map((e) => e.payload.status);
    while (seen().at(-1) !== last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return seen();
  };
  const setQuota = (vcpuLimit: number) =>
    fetch(`${cloud.url}/_admin/quota`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ vcpuLimit }),
    });

  it('should seed the catalogue from the images the local cloud publishes', async () => {
    const catalogue = await service.images.list(['public'], { cloud: 'LOCAL', region: 'local-1' });
    expect(
      catalogue.map((i) => `${i.os} ${i.osVersion} ${i.kubernetesVersion} ${i.status} ${i.source}`).sort(),
    ).toEqual([
      'ubuntu 22.04 1.29.15 READY OUT_OF_BOX',
      'ubuntu 22.04 1.30.14 READY OUT_OF_BOX',
      'ubuntu 22.04 1.31.10 READY OUT_OF_BOX',
      'ubuntu 24.04 1.29.15 READY OUT_OF_BOX',
      'ubuntu 24.04 1.30.14 READY OUT_OF_BOX',
      'ubuntu 24.04 1.31.10 READY OUT_OF_BOX',
    ]);
    for (const image of catalogue) {
      expect(image.description).toMatch(/CIS Ubuntu Linux \d\d\.04 LTS Benchmark/);
      expect(await provider.describeImage('local-1', image.artifactId!)).toMatchObject({ status: 'available' });
    }
  });

  it('should resolve any patch release of a catalogue minor to the out-of-the-box image', async () => {
    const tenant = seed.tenant();
    const a = await resolve(seed.request(tenant, { kubernetes: { version: '1.31.0' } }));
    const b = await resolve(seed.request(tenant, { kubernetes: { version: '1.31.7' } }));
    expect(a).toMatchObject({
      tenantId: 'public',
      source: 'OUT_OF_BOX',
      status: 'READY',
      os: 'ubuntu',
      osVersion: '22.04',
      kubernetesVersion: '1.31.10',
    });
    expect(b.id).toBe(a.id);
  });

  it('should build one image for 20 concurrent resolves of one customised definition', async () => {
    const tenant = seed.tenant();
    const request = seed.request(tenant, {
      os: { ansibleRoles: ['cis-extra', 'falco', 'corp-ca'], values: 'ca: corp\n' },
    });
    const replies = await Promise.all(Array.from({ length: 20 }, () => resolve(request)));
    const ids = new Set(replies.map((r) => r.id));
    expect(ids.size).toBe(1);
    const [id] = ids;
    expect(replies[0]).toMatchObject({
      tenantId: tenant,
      source: 'CUSTOMIZED',
      ansibleRoles: ['cis-extra', 'falco', 'corp-ca'],
      kubernetesVersion: '1.30.4',
    });
    expect(['PENDING', 'BUILDING']).toContain(replies[0]!.status);

    const image = await settled(id!);
    expect(image).toMatchObject({ status: 'READY', artifactId: expect.stringMatching(/^ami-/) });
    expect(image.log.join('\n')).toMatch(
      /TASK \[cis-extra : main\][\s\S]*TASK \[falco : main\][\s\S]*TASK \[corp-ca : main\]/,
    );
    expect(await provider.describeImage('local-1', image.artifactId!)).toMatchObject({
      status: 'available',
      tags: expect.objectContaining({ [ImageTagKeys.signature]: image.signature, [ImageTagKeys.imageId]: id }),
    });

    // One builder ever ran, and it is gone.
    expect(builders.get(id!)).toHaveLength(1);
    const machines = (
      await provider.describeMachines({ clusterId: BUILDER_CLUSTER_ID, region: 'local-1', includeTerminated: true })
    ).filter((m) => m.tags[ImageTagKeys.imageId] === id);
    expect(machines.map((m) => m.state)).toEqual([expect.stringMatching(/terminat/)]);
    expect(machines[0]!.tags[TagKeys.cluster]).toBe(BUILDER_CLUSTER_ID);

    expect(await statusesOf(id!, 'READY')).toEqual(['PENDING', 'BUILDING', 'READY']);

    // Asked again: the same image, no new build.
    await expect(resolve(request)).resolves.toMatchObject({ id, status: 'READY' });
    expect(builders.get(id!)).toHaveLength(1);
  });

  it('should give a definition with its roles in another order another image', async () => {
    const tenant = seed.tenant();
    const first = await resolve(seed.request(tenant, { os: { ansibleRoles: ['a', 'b'] } }));
    const second = await resolve(seed.request(tenant, { os: { ansibleRoles: ['b', 'a'] } }));
    const other = await resolve(seed.request(seed.tenant(), { os: { ansibleRoles: ['a', 'b'] } }));
    expect(new Set([first.id, second.id, other.id]).size).toBe(3);
    expect(first.signature).toBe(other.signature);
    expect(first.signature).not.toBe(second.signature);
    await Promise.all([first, second, other].map((i) => settled(i.id)));
  });

  it('should use a bring-your-own image as is when it has Kubernetes already', async () => {
    const [ref] = await provider.findImages('local-1', { [ImageTagKeys.osVersion]: '24.04' });
    const image = await resolve(
      seed.request(seed.tenant(), {
        os: { version: '24.04', imageRef: ref!.id, skipK8sInstall: true },
        kubernetes: { version: '1.29.2' },
      }),
    );
    expect(image).toMatchObject({
      source: 'BRING_YOUR_OWN',
      status: 'READY',
      artifactId: ref!.id,
      kubernetesVersion: '1.29.2',
    });
  });

  it('should install Kubernetes on a bring-your-own image that lacks it, making a new signed image', async () => {
    const ref = (await provider.findImages('local-1', { [ImageTagKeys.osVersion]: '22.04' }))[0]!;
    const reply = await resolve(seed.request(seed.tenant(), { os: { imageRef: ref.name, skipK8sInstall: false } }));
    expect(reply).toMatchObject({ source: 'CUSTOMIZED', status: 'PENDING', artifactId: null });
    const image = await settled(reply.id);
    expect(image).toMatchObject({ status: 'READY', source: 'CUSTOMIZED' });
    expect(image.artifactId).not.toBe(ref.id);
    expect(image.log.join('\n')).toMatch(/install containerd, kubelet, kubeadm, kubectl 1\.30\.4/);
    const [builder] = (
      await provider.describeMachines({ clusterId: BUILDER_CLUSTER_ID, region: 'local-1', includeTerminated: true })
    ).filter((m) => m.tags[ImageTagKeys.imageId] === reply.id);
    expect(builder?.imageId).toBe(ref.id);
  });

  it('should copy the out-of-the-box image into a region that lacks it', async () => {
    const reply = await resolve(
      seed.request(seed.tenant(), { region: 'local-2', os: { version: '24.04' }, kubernetes: { version: '1.31.2' } }),
    );
    expect(reply).toMatchObject({ tenantId: 'public', source: 'OUT_OF_BOX', region: 'local-2', status: 'COPYING' });
    const image = await settled(reply.id);
    expect(image).toMatchObject({ status: 'READY', kubernetesVersion: '1.31.10' });
    expect(await provider.describeImage('local-2', image.artifactId!)).toMatchObject({
      status: 'available',
      region: 'local-2',
    });
    expect(await statusesOf(reply.id, 'READY')).toEqual(['COPYING', 'READY']);
    // Others asking for it in local-2 now get it at once.
    await expect(
      resolve(
        seed.request(seed.tenant(), { region: 'local-2', os: { version: '24.04' }, kubernetes: { version: '1.31.9' } }),
      ),
    ).resolves.toMatchObject({ id: reply.id, status: 'READY' });
  });

  it('should build a customised image in a new region from a copy of its base', async () => {
    const reply = await resolve(
      seed.request(seed.tenant(), {
        region: 'local-2',
        os: { ansibleRoles: ['falco'] },
        kubernetes: { version: '1.29.1' },
      }),
    );
    const image = await settled(reply.id);
    expect(image).toMatchObject({ status: 'READY', region: 'local-2' });
    const base = await service.images.list(['public'], { cloud: 'LOCAL', region: 'local-2' });
    expect(base.find((b) => b.osVersion === '22.04' && b.kubernetesVersion === '1.29.15')).toMatchObject({
      status: 'READY',
    });
  });

  it.each([
    ['an unknown OS', { os: { name: 'windows' } }, /unknown OS "windows"/],
    ['an unknown OS version', { os: { version: '16.04' } }, /ubuntu 16\.04 is not in the catalogue/],
    [
      'a Kubernetes minor outside the catalogue',
      { kubernetes: { version: '1.26.0' } },
      /Kubernetes 1\.26 is not supported/,
    ],
    [
      'a region the cloud does not have',
      { region: 'local-9' },
      /region "local-9" is not a region of LOCAL: it has local-1, local-2/,
    ],
    [
      'an image id the cloud does not know',
      { os: { imageRef: 'ami-0123456789abcdef0', skipK8sInstall: true } },
      /image "ami-0123456789abcdef0" is not known to LOCAL in local-1/,
    ],
    [
      'an image name the cloud does not know',
      { os: { imageRef: 'no-such-image' } },
      /image "no-such-image" is not known to LOCAL in local-1/,
    ],
  ])('should refuse %s with BAD_REQUEST and create nothing', async (_what, overrides, message) => {
    const tenant = seed.tenant();
    await expect(resolve(seed.request(tenant, overrides))).rejects.toMatchObject({
      name: 'BusError',
      code: 'BAD_REQUEST',
      message: expect.stringMatching(message),
    });
    expect(await service.images.list([tenant])).toEqual([]);
  });

  it("should mark a build FAILED with the cloud's message, and retry it on the next resolve", async () => {
    const request = seed.request(seed.tenant(), { os: { ansibleRoles: ['quota-test'] } });
    await setQuota(0);
    let image: Awaited<ReturnType<typeof settled>>;
    try {
      const reply = await resolve(request);
      image = await settled(reply.id);
    } finally {
      await setQuota(64);
    }
    expect(image).toMatchObject({
      status: 'FAILED',
      message: expect.stringMatching(/You have requested more vCPU capacity than your current vCPU limit of 0 allows/),
    });

    const again = await resolve(request);
    expect(again).toMatchObject({
      id: image.id,
      status: 'PENDING',
      message: expect.stringMatching(/^retrying \(attempt 2\)/),
    });
    await expect(settled(image.id)).resolves.toMatchObject({ status: 'READY' });
    expect(await statusesOf(image.id, 'READY')).toEqual(['PENDING', 'FAILED', 'PENDING', 'BUILDING', 'READY']);
  });

  it('should resume a build after a restart, with the same builder', async () => {
    const reply = await resolve(seed.request(seed.tenant(), { os: { ansibleRoles: ['restart-a', 'restart-b'] } }));
    const deadline = Date.now() + 10_000;
    while ((await service.images.get(reply.id))?.status !== 'BUILDING' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    // A process stopping: its worker releases the lease, its NATS connection goes.
    await service.stop();
    await bus.close();
    const held = await service.images.get(reply.id);
    expect(held).toMatchObject({ status: 'BUILDING', leaseOwner: null });

    bus = await createBus({ url: nats.url, name: 'images', log, credentials: await nats.credentials('images') });
    service = await start();
    await expect(settled(reply.id)).resolves.toMatchObject({ status: 'READY' });
    expect(builders.get(reply.id)).toHaveLength(1);
  });

  describe('GraphQL', () => {
    let schema: GraphQLSchema;
    const identity = (tenantId: string, projects: Record<string, 'viewer' | 'editor' | 'admin'> = { web: 'viewer' }) =>
      new Identity({ sub: 'user', tenantId, projects });
    const run = (
      source: string,
      tenantId: string,
      variables?: Record<string, unknown>,
      projects?: Record<string, 'viewer'>,
    ) =>
      graphql({
        schema,
        source,
        variableValues: variables,
        contextValue: { identity: identity(tenantId, projects), requestId: 'test', log },
      });

    beforeAll(async () => {
      schema = await buildImagesSchema({ images: service.images });
    });

    it("should list the catalogue and the caller's tenant's images, and no other tenant's", async () => {
      const mine = seed.tenant();
      const other = seed.tenant();
      const custom = await resolve(seed.request(mine, { os: { ansibleRoles: ['listed'] } }));
      const query =
        'query($region: String) { images(cloud: LOCAL, region: $region) { id source status os osVersion kubernetesVersion description } }';

      const forMine = await run(query, mine, { region: 'local-1' });
      expect(forMine.errors).toBeUndefined();
      const images = forMine.data!.images as { id: string; source: string; description: string }[];
      expect(images.filter((i) => i.source === 'OUT_OF_BOX')).toHaveLength(6);
      expect(images.map((i) => i.id)).toContain(custom.id);

      const forOther = await run(query, other, { region: 'local-1' });
      expect((forOther.data!.images as { id: string }[]).map((i) => i.id)).not.toContain(custom.id);
      await settled(custom.id);
    });

    it('should resolve Image references within the tenant, and Cluster.images for a cluster', async () => {
      const tenant = seed.tenant();
      const image = await resolve(seed.request(tenant, { clusterId: 'clu_1', os: { version: '24.04' } }));
      const entities = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Image { id status } ... on Cluster { id images { id source } } } }`;
      const reps = [
        { __typename: 'Image', id: image.id },
        { __typename: 'Cluster', id: 'clu_1' },
      ];
      expect(await run(entities, tenant, { reps })).toEqual({
        data: {
          _entities: [
            { id: image.id, status: 'READY' },
            { id: 'clu_1', images: [{ id: image.id, source: 'OUT_OF_BOX' }] },
          ],
        },
      });
      // Another tenant's cluster of the same id uses nothing; a viewer of another project sees none of this one's images.
      expect((await run(entities, seed.tenant(), { reps: [reps[1]] })).data).toEqual({
        _entities: [{ id: 'clu_1', images: [] }],
      });
      expect((await run(entities, tenant, { reps: [reps[1]] }, { ops: 'viewer' })).data).toEqual({
        _entities: [{ id: 'clu_1', images: [] }],
      });
    });
  });
});
