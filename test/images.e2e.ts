import { BusError, createBus, createLogger, type Bus } from '@fleetgraph/kit';
import { resolveImage } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startPlatform, type Platform } from './src/index.js';

const IMAGES = /* GraphQL */ `
  query Images($cloud: CloudType, $region: String) {
    images(cloud: $cloud, region: $region) {
      id signature os osVersion kubernetesVersion cloud region source status artifactId ansibleRoles createdAt description message
    }
  }
`;

interface ImageView {
  id: string;
  source: string;
  status: string;
  osVersion: string;
  kubernetesVersion: string | null;
  artifactId: string | null;
  description: string | null;
  ansibleRoles: string[];
}

describe('images through the gateway, on the local cloud', () => {
  const SPEED = 500;
  let platform: Platform;
  let orchestrator: Bus;
  const tenant = seed.tenant();
  const project = seed.project();
  let viewer: string;
  let stranger: string;

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: SPEED },
      // The images service simulates builds at the local cloud's speed, and looks often.
      env: { LOCAL_CLOUD_SPEED: String(SPEED), IMAGES_POLL_MS: '50', IMAGES_SWEEP_MS: '500' },
    });
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    stranger = await platform.token(seed.user(seed.tenant(), { [project]: 'admin' }, { tenantAdmin: true }));
    orchestrator = await createBus({
      url: platform.natsUrl,
      name: 'e2e-orchestrator',
      log: createLogger('images-e2e', 'silent'),
      credentials: await platform.credentials('e2e-orchestrator'),
    });
  });

  afterAll(async () => {
    await orchestrator?.close();
    await platform?.stop();
  });

  const list = async (token: string, variables: Record<string, unknown> = { cloud: 'LOCAL', region: 'local-1' }) => {
    const response = await platform.graphql<{ images: ImageView[] }>(IMAGES, variables, token);
    expect(response.errors).toBeUndefined();
    return response.data!.images;
  };
  /** Asks again until `done` holds (the catalogue is seeded, a build finishes, in the background). */
  const eventually = async <T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const resolve = (os: Record<string, unknown>, kubernetesVersion = '1.30.4', tenantId = tenant) =>
    orchestrator.request(
      resolveImage,
      {
        tenantId,
        projectId: project,
        clusterId: 'clu_e2e',
        cloud: 'LOCAL',
        region: 'local-1',
        os: { type: 'OS', name: 'ubuntu', version: '22.04', ...os },
        kubernetes: { type: 'KUBERNETES', name: 'kubernetes', version: kubernetesVersion },
      },
      { timeoutMs: 10_000 },
    );

  it('should list the out-of-the-box catalogue of local-1', async () => {
    const images = await eventually(
      () => list(viewer),
      (i) => i.length >= 6,
    );
    expect(images.map((i) => `${i.source} ${i.status} ${i.osVersion} ${i.kubernetesVersion}`)).toEqual([
      'OUT_OF_BOX READY 22.04 1.29.15',
      'OUT_OF_BOX READY 22.04 1.30.14',
      'OUT_OF_BOX READY 22.04 1.31.10',
      'OUT_OF_BOX READY 24.04 1.29.15',
      'OUT_OF_BOX READY 24.04 1.30.14',
      'OUT_OF_BOX READY 24.04 1.31.10',
    ]);
    for (const image of images) {
      expect(image.artifactId).toMatch(/^ami-[0-9a-f]+$/);
      expect(image.description).toMatch(/hardened to the CIS Ubuntu Linux \d\d\.04 LTS Benchmark/);
    }
  });

  it('should show an image resolved over NATS through the gateway, once built', async () => {
    const resolved = await resolve({ ansibleRoles: ['cis-level-2', 'corp-ca'], values: 'ca: corp\n' });
    expect(resolved).toMatchObject({
      tenantId: tenant,
      source: 'CUSTOMIZED',
      status: 'PENDING',
      ansibleRoles: ['cis-level-2', 'corp-ca'],
    });

    const images = await eventually(
      () => list(viewer),
      (all) => all.some((i) => i.id === resolved.id && i.status === 'READY'),
    );
    expect(images.find((i) => i.id === resolved.id)).toMatchObject({
      source: 'CUSTOMIZED',
      status: 'READY',
      ansibleRoles: ['cis-level-2', 'corp-ca'],
      kubernetesVersion: '1.30.4',
      artifactId: expect.stringMatching(/^ami-/),
    });
    // The same definition again: the same image, ready at once.
    await expect(resolve({ ansibleRoles: ['cis-level-2', 'corp-ca'], values: 'ca: corp\n' })).resolves.toMatchObject({
      id: resolved.id,
      status: 'READY',
    });
  });

  it("should not show a tenant's customised image to another tenant", async () => {
    const mine = await resolve({ ansibleRoles: ['private-role'] });
    const mineListed = await list(viewer, {});
    expect(mineListed.map((i) => i.id)).toContain(mine.id);

    const theirs = await list(stranger, {});
    expect(theirs.map((i) => i.id)).not.toContain(mine.id);
    expect(theirs.every((i) => i.source === 'OUT_OF_BOX')).toBe(true);
    expect(theirs.length).toBeGreaterThanOrEqual(6);
  });

  it('should refuse an unknown OS over NATS with a clear BAD_REQUEST', async () => {
    const refused = await resolve({ name: 'windows' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BusError);
    expect(refused).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/unknown OS "windows"/) });
  });

  it('should answer a request without a token with UNAUTHENTICATED', async () => {
    const response = await platform.graphql(IMAGES, {});
    expect(response.status).toBe(401);
    expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
