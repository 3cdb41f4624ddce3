import { X509Certificate } from 'node:crypto';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AGENT_SECRET_KEYS, BOOTSTRAP_PATHS } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { seed, startPlatform, type Platform } from './src/index.js';

const CLUSTER_FIELDS = /* GraphQL */ `
  id name projectId phase generation observedGeneration
  profile { id name version }
  cloud { type region credentialRef }
  nodePools { name role count instanceType availabilityZones }
  conditions { type status active failed reason message code attempts lastTransitionTime }
`;
const CREATE = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { ${CLUSTER_FIELDS} } userErrors { field code message } } }`;
const GET = `query($id: ID!) { cluster(id: $id) { ${CLUSTER_FIELDS} } }`;
const UPDATE_POOL = `mutation($input: UpdateNodePoolInput!) { updateNodePool(input: $input) { cluster { generation nodePools { name count } } userErrors { code message field } } }`;
const DELETE = `mutation($id: ID!) { deleteCluster(id: $id) { cluster { id phase } userErrors { code message } } }`;
const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { code message } } }`;

describe('clusters through the gateway, on the local cloud', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  const otherProject = seed.project();
  let admin: string;
  let editor: string;
  let viewer: string;
  let stranger: string;
  let tenantAdmin: string;
  let profileId: string;
  let otherProjectProfileId: string;

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 400, vcpuLimit: 64 },
      env: {
        RECONCILE_PROGRESS_MS: '100',
        RECONCILE_BACKOFF_BASE_MS: '100',
        RECONCILE_BACKOFF_CAP_MS: '500',
        RECONCILE_POLL_MS: '50',
        RECONCILE_RESYNC_MS: '2000',
      },
    });
    admin = await platform.token(seed.user(tenant, { [project]: 'admin', [otherProject]: 'admin' }));
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    tenantAdmin = await platform.token(seed.user(tenant, {}, { tenantAdmin: true }));
    stranger = await platform.token(seed.user(seed.tenant(), { [project]: 'admin' }));
    const created = await platform.graphql(
      CREATE_PROFILE,
      { input: seed.profileInput(project, { name: 'base', version: '1.0.0' }) },
      admin,
    );
    profileId = created.data!.createClusterProfile.profile.id;
    const other = await platform.graphql(
      CREATE_PROFILE,
      { input: seed.profileInput(otherProject, { name: 'base', version: '1.0.0' }) },
      admin,
    );
    otherProjectProfileId = other.data!.createClusterProfile.profile.id;
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const clusterInput = (overrides: Record<string, unknown> = {}) => ({
    projectId: project,
    name: seed.project().toLowerCase().slice(0, 40),
    profileId,
    cloud: { type: 'LOCAL', region: 'local-1' },
    nodePools: [
      { name: 'control-plane', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
      {
        name: 'workers',
        role: 'WORKER',
        count: 2,
        instanceType: 'm5.large',
        availabilityZones: ['local-1a', 'local-1b'],
      },
    ],
    ...overrides,
  });

  async function create(overrides: Record<string, unknown> = {}, token = editor) {
    const response = await platform.graphql(CREATE, { input: clusterInput(overrides) }, token);
    expect(response.errors).toBeUndefined();
    return response.data!.createCluster;
  }

  async function until<T>(
    what: string,
    probe: () => Promise<T | null | undefined | false>,
    timeoutMs = 60_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await probe();
      if (value) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** The local cloud's EC2 API, as an AWS client reaches it. */
  const localEc2 = () =>
    new EC2Client({
      endpoint: platform.localCloudUrl,
      region: 'local-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });

  const get = async (id: string, token = viewer) => (await platform.graphql(GET, { id }, token)).data!.cluster;
  const running = (id: string) =>
    until(`${id} RUNNING`, async () => {
      const c = await get(id);
      return c?.phase === 'RUNNING' && c.observedGeneration === c.generation && c;
    });

  it('should provision a cluster to RUNNING with every milestone reached, its profile resolved by federation', async () => {
    const { cluster, userErrors } = await create();
    expect(userErrors).toEqual([]);
    expect(cluster).toMatchObject({
      phase: 'PENDING',
      generation: 1,
      profile: { id: profileId, name: 'base', version: '1.0.0' },
    });
    expect(cluster.nodePools[0].availabilityZones).toEqual(['local-1a']);
    const done = await running(cluster.id);
    expect(done.conditions.map((c: any) => [c.type, c.status, c.failed, c.active])).toEqual([
      ['Customizing Image', 'TRUE', false, false],
      ['Creating Infrastructure', 'TRUE', false, false],
      ['Adding Control Plane Node', 'TRUE', false, false],
      ['Adding Worker Nodes', 'TRUE', false, false],
      ['Installing Add-ons', 'TRUE', false, false],
    ]);
    const events = await platform.graphql(
      `query($id: ID!) { cluster(id: $id) { events(first: 100) { nodes { cursor severity reason message object } pageInfo { hasNextPage endCursor } } } }`,
      { id: cluster.id },
      viewer,
    );
    expect(events.errors).toBeUndefined();
    const reasons = events.data!.cluster.events.nodes.map((e: any) => e.reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'PhaseProvisioning',
        'ImageReady',
        'NetworkReady',
        'MachineCreated',
        'AddonInstalled',
        'PhaseRunning',
      ]),
    );
    const cursors = events.data!.cluster.events.nodes.map((e: any) => e.cursor);
    // The images subgraph extends Cluster with the image it resolved for it.
    const images = await platform.graphql(
      `query($id: ID!) { cluster(id: $id) { images { os osVersion kubernetesVersion status source cloud region } } }`,
      { id: cluster.id },
      viewer,
    );
    expect(images.data!.cluster.images).toEqual([
      {
        os: 'ubuntu',
        osVersion: '22.04',
        kubernetesVersion: expect.stringMatching(/^1\.30/),
        status: 'READY',
        source: 'OUT_OF_BOX',
        cloud: 'LOCAL',
        region: 'local-1',
      },
    ]);
    expect([...cursors].sort((a: string, b: string) => Number(a) - Number(b))).toEqual(cursors);
  });

  it("should start the agent from the control plane's user data, as its own NATS user, and issue kubeconfigs signed by the CA that user data installed", async () => {
    const { cluster } = await create({
      nodePools: [
        { name: 'control-plane', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
        { name: 'workers', role: 'WORKER', count: 1, instanceType: 'm5.large' },
      ],
    });
    await running(cluster.id);

    // The first control-plane node's user data, read back as AWS answers it (DescribeInstanceAttribute, base64).
    const ec2 = localEc2();
    const described = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:fleetgraph:cluster', Values: [cluster.id] },
          { Name: 'tag:fleetgraph:role', Values: ['CONTROL_PLANE'] },
          { Name: 'instance-state-name', Values: ['running'] },
        ],
      }),
    );
    const controlPlane = (described.Reservations ?? []).flatMap((r) => r.Instances ?? []);
    expect(controlPlane).toHaveLength(1);
    const attribute = await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: controlPlane[0]!.InstanceId!, Attribute: 'userData' }),
    );
    ec2.destroy();
    const userData = Buffer.from(attribute.UserData!.Value!, 'base64').toString('utf8');
    expect(userData.startsWith('#cloud-config')).toBe(true);
    const files: { path: string; content: string; encoding?: string }[] = parse(userData).write_files;
    const fileAt = (path: string) => {
      const file = files.find((f) => f.path === path);
      if (!file) throw new Error(`no ${path} in the user data`);
      return file.encoding === 'b64' ? Buffer.from(file.content, 'base64').toString('utf8') : file.content;
    };
    const ca = new X509Certificate(fileAt('/etc/kubernetes/pki/ca.crt'));

    // The agent's identity is the manifest's Secret: a NATS user confined to this cluster's subjects.
    const secret = parseAllDocuments(fileAt(BOOTSTRAP_PATHS.agentManifest))
      .map((d) => d.toJS())
      .find((d) => d?.kind === 'Secret');
    const values = {
      ...Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]),
      ),
      ...secret.stringData,
    };
    expect(values[AGENT_SECRET_KEYS.clusterId]).toBe(cluster.id);
    const jwt = /-----BEGIN NATS USER JWT-----\s+(\S+)\s+------END NATS USER JWT------/.exec(
      values[AGENT_SECRET_KEYS.natsCredentials],
    )![1]!;
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'));
    const allowed: string[] = claims.nats.pub.allow;
    expect(allowed.length).toBeGreaterThan(0);
    for (const subject of allowed)
      expect(subject.startsWith(`agent.v1.${cluster.id}.`) || subject.startsWith('_INBOX')).toBe(true);

    // That agent (the only one: the local cloud requires user data) reports the cluster's nodes.
    const reported = await until('the agent to report both nodes', async () => {
      const answer = await platform.graphql(
        `query($id: ID!) { cluster(id: $id) { health { status } nodes { name role } } }`,
        { id: cluster.id },
        viewer,
      );
      const c = answer.data?.cluster;
      return c?.nodes.length === 2 && c;
    });
    expect(reported.health.status).not.toBe('UNKNOWN');

    // A kubeconfig for an editor: a client certificate the cluster's CA signed, its server's CA that very CA.
    const KUBECONFIG = `query($id: ID!) { cluster(id: $id) { kubeconfig(ttlMinutes: 60) { kubeconfig expiresAt } } }`;
    const issued = await platform.graphql(KUBECONFIG, { id: cluster.id }, editor);
    expect(issued.errors).toBeUndefined();
    const kubeconfig = parse(issued.data!.cluster.kubeconfig.kubeconfig);
    const serverCa = new X509Certificate(
      Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64'),
    );
    expect(serverCa.fingerprint256).toBe(ca.fingerprint256);
    const client = new X509Certificate(Buffer.from(kubeconfig.users[0].user['client-certificate-data'], 'base64'));
    expect(client.checkIssued(ca)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(client.subject).toMatch(/O=fleetgraph:editor/);
    // Named under the platform's prefix: no subject can name one of the API server's own users.
    expect(client.subject).toMatch(/CN=fleetgraph:user:/);
    const lifetime = Date.parse(client.validTo) - Date.now();
    expect(lifetime).toBeGreaterThan(55 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(61 * 60_000);
    // A viewer gets none.
    expect((await platform.graphql(KUBECONFIG, { id: cluster.id }, viewer)).data!.cluster.kubeconfig).toBeNull();
    // An API key's holds an hour at most, whatever it asks: a certificate outlives the key's revocation.
    const key = await platform.graphql(
      `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret userErrors { code } } }`,
      { input: { projectId: project, name: 'deployer', role: 'EDITOR' } },
      admin,
    );
    expect(key.data!.createApiKey.userErrors).toEqual([]);
    const LONG = `query($id: ID!) { cluster(id: $id) { kubeconfig(ttlMinutes: 480) { expiresAt } } }`;
    const byKey = await platform.graphql(LONG, { id: cluster.id }, key.data!.createApiKey.secret);
    expect(byKey.errors).toBeUndefined();
    const keyLifetime = Date.parse(byKey.data!.cluster.kubeconfig.expiresAt) - Date.now();
    expect(keyLifetime).toBeGreaterThan(55 * 60_000);
    expect(keyLifetime).toBeLessThanOrEqual(61 * 60_000);
  });

  it("should fail at Adding Worker Nodes on the vCPU quota with the cloud's message, and reach RUNNING once another cluster is deleted", async () => {
    const first = (await create()).cluster;
    await running(first.id);
    const quota = await platform.localCloud!.quota('local-1');
    // Room for the second cluster's control plane (2 vCPUs) but not its workers.
    await platform.localCloud!.setQuota(quota.vcpuUsed + 2, 'local-1');
    try {
      const second = (await create()).cluster;
      const failed = await until('the quota failure', async () => {
        const c = await get(second.id);
        const workers = c.conditions.find((x: any) => x.type === 'Adding Worker Nodes');
        return workers?.failed && workers.attempts >= 2 && workers;
      });
      expect(failed).toMatchObject({ code: 'QUOTA_EXCEEDED', active: true, status: 'FALSE' });
      expect(failed.message).toMatch(
        /^You have requested more vCPU capacity than your current vCPU limit of \d+ allows/,
      );
      expect((await get(second.id)).phase).toBe('PROVISIONING');

      const deleted = await platform.graphql(DELETE, { id: first.id }, admin);
      expect(deleted.data!.deleteCluster.userErrors).toEqual([]);
      const recovered = await running(second.id);
      expect(recovered.conditions.find((c: any) => c.type === 'Adding Worker Nodes')).toMatchObject({
        status: 'TRUE',
        failed: false,
      });
      await until('the first cluster DELETED', async () => (await get(first.id))?.phase === 'DELETED');
    } finally {
      await platform.localCloud!.setQuota(1000, 'local-1');
    }
  });

  it.each([
    [
      'a control plane of 2 nodes',
      { nodePools: [{ name: 'cp', role: 'CONTROL_PLANE', count: 2, instanceType: 't3.medium' }] },
      'INVALID_CONTROL_PLANE_COUNT',
    ],
    [
      'no control plane',
      { nodePools: [{ name: 'w', role: 'WORKER', count: 2, instanceType: 't3.medium' }] },
      'INVALID_CONTROL_PLANE',
    ],
    [
      'an unknown instance type',
      { nodePools: [{ name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 'x9.huge' }] },
      'INVALID_INSTANCE_TYPE',
    ],
    [
      'an unknown zone',
      {
        nodePools: [
          { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium', availabilityZones: ['local-1z'] },
        ],
      },
      'INVALID_ZONE',
    ],
    [
      'two pools of one name',
      {
        nodePools: [
          { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
          { name: 'cp', role: 'WORKER', count: 1, instanceType: 't3.medium' },
        ],
      },
      'DUPLICATE_POOL',
    ],
    [
      'a worker pool too large',
      {
        nodePools: [
          { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
          { name: 'w', role: 'WORKER', count: 101, instanceType: 't3.medium' },
        ],
      },
      'POOL_TOO_LARGE',
    ],
    ['a profile of another project', { profileId: 'OTHER' }, 'PROFILE_NOT_FOUND'],
    ['an unknown region', { cloud: { type: 'LOCAL', region: 'local-9' } }, 'INVALID_REGION'],
    ['an invalid name', { name: 'Not_A_Name' }, 'INVALID_NAME'],
  ])('should refuse %s with a userError and store nothing', async (_what, overrides, code) => {
    const input = {
      ...overrides,
      ...((overrides as any).profileId === 'OTHER' ? { profileId: otherProjectProfileId } : {}),
    };
    const before = (
      await platform.graphql(
        `query($p: ID) { clusters(projectId: $p, first: 100) { nodes { id } } }`,
        { p: project },
        viewer,
      )
    ).data!.clusters.nodes.length;
    const { cluster, userErrors } = await create(input);
    expect(cluster).toBeNull();
    expect(userErrors.map((e: any) => e.code)).toContain(code);
    const after = (
      await platform.graphql(
        `query($p: ID) { clusters(projectId: $p, first: 100) { nodes { id } } }`,
        { p: project },
        viewer,
      )
    ).data!.clusters.nodes.length;
    expect(after).toBe(before);
  });

  it('should refuse a duplicate name in the project', async () => {
    const name = 'same-name';
    expect((await create({ name })).userErrors).toEqual([]);
    expect((await create({ name })).userErrors.map((e: any) => e.code)).toEqual(['NAME_TAKEN']);
  });

  it("should answer a foreign tenant's cluster id exactly like an unknown one", async () => {
    const mine = (await create()).cluster;
    expect(await get(mine.id, stranger)).toBeNull();
    expect(await get('cls_unknown', stranger)).toBeNull();
    const foreign = await platform.graphql(
      UPDATE_POOL,
      { input: { clusterId: mine.id, name: 'workers', count: 5 } },
      stranger,
    );
    const unknown = await platform.graphql(
      UPDATE_POOL,
      { input: { clusterId: 'cls_unknown', name: 'workers', count: 5 } },
      stranger,
    );
    expect(foreign).toEqual(unknown);
    expect((await platform.graphql(DELETE, { id: mine.id }, stranger)).data).toEqual(
      (await platform.graphql(DELETE, { id: 'cls_unknown' }, stranger)).data,
    );
    expect((await get(mine.id)).generation).toBe(1);
  });

  it('should enforce roles: viewers read, editors change, admins delete; a tenant admin reads all and writes nothing', async () => {
    const response = await platform.graphql(CREATE, { input: clusterInput() }, viewer);
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const mine = (await create()).cluster;
    expect((await platform.graphql(DELETE, { id: mine.id }, editor)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const all = await platform.graphql(`{ clusters(first: 100) { nodes { id projectId } } }`, {}, tenantAdmin);
    expect(all.data!.clusters.nodes.map((c: any) => c.id)).toContain(mine.id);
    expect(
      (await platform.graphql(UPDATE_POOL, { input: { clusterId: mine.id, name: 'workers', count: 3 } }, tenantAdmin))
        .errors?.[0]?.extensions?.code,
    ).toBe('FORBIDDEN');
  });

  it('should lose no update under 50 concurrent updateNodePool calls', async () => {
    const cluster = (await create()).cluster;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        platform.graphql(UPDATE_POOL, { input: { clusterId: cluster.id, name: 'workers', count: i + 1 } }, editor),
      ),
    );
    const succeeded = results.filter((r) => r.data?.updateNodePool.userErrors.length === 0);
    const refused = results.filter((r) => r.data?.updateNodePool.userErrors.length);
    expect(succeeded.length + refused.length).toBe(50);
    // Every accepted change is one generation: none overwrote another unseen.
    const after = await get(cluster.id);
    expect(after.generation).toBe(1 + succeeded.length);
    const generations = succeeded
      .map((r) => r.data!.updateNodePool.cluster.generation)
      .sort((a: number, b: number) => a - b);
    expect(new Set(generations).size).toBe(succeeded.length);
    // With expectedGeneration, exactly one of many concurrent writers wins.
    const g = after.generation;
    const guarded = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        platform.graphql(
          UPDATE_POOL,
          { input: { clusterId: cluster.id, name: 'workers', count: i, expectedGeneration: g } },
          editor,
        ),
      ),
    );
    const winners = guarded.filter((r) => r.data!.updateNodePool.userErrors.length === 0);
    expect(winners).toHaveLength(1);
    expect(guarded.filter((r) => r.data!.updateNodePool.userErrors[0]?.code === 'STALE_GENERATION')).toHaveLength(19);
  });

  it('should scale, resize and add a zone through the API, converging each time', async () => {
    const cluster = (await create()).cluster;
    await running(cluster.id);
    for (const change of [
      { count: 3 },
      { instanceType: 'm5.xlarge' },
      { availabilityZones: ['local-1a', 'local-1b', 'local-1c'] },
      { count: 1 },
    ]) {
      const r = await platform.graphql(
        UPDATE_POOL,
        { input: { clusterId: cluster.id, name: 'workers', ...change } },
        editor,
      );
      expect(r.data!.updateNodePool.userErrors).toEqual([]);
      const c = await running(cluster.id);
      expect(c.nodePools.find((p: any) => p.name === 'workers')).toMatchObject(change);
    }
    const added = await platform.graphql(
      `mutation($id: ID!, $pool: NodePoolInput!) { addNodePool(clusterId: $id, pool: $pool) { cluster { nodePools { name } } userErrors { code } } }`,
      { id: cluster.id, pool: { name: 'batch', role: 'WORKER', count: 1, instanceType: 't3.large' } },
      editor,
    );
    expect(added.data!.addNodePool.userErrors).toEqual([]);
    await running(cluster.id);

    // Removing a pool deletes its machines; the control-plane pool and unknown pools are refused.
    const REMOVE = `mutation($id: ID!, $name: String!) { removeNodePool(clusterId: $id, name: $name) { cluster { nodePools { name } } userErrors { field code } } }`;
    expect(
      (await platform.graphql(REMOVE, { id: cluster.id, name: 'batch' }, viewer)).errors?.[0]?.extensions?.code,
    ).toBe('FORBIDDEN');
    for (const [name, code] of [
      ['control-plane', 'INVALID_CONTROL_PLANE'],
      ['nope', 'POOL_NOT_FOUND'],
    ]) {
      const refused = await platform.graphql(REMOVE, { id: cluster.id, name }, editor);
      expect(refused.data!.removeNodePool).toEqual({ cluster: null, userErrors: [{ field: ['name'], code }] });
    }
    const removed = await platform.graphql(REMOVE, { id: cluster.id, name: 'batch' }, editor);
    expect(removed.data!.removeNodePool.userErrors).toEqual([]);
    expect(removed.data!.removeNodePool.cluster.nodePools.map((p: any) => p.name)).toEqual([
      'control-plane',
      'workers',
    ]);
    await running(cluster.id);
    const ec2 = localEc2();
    const left = await until('the batch pool machines terminated', async () => {
      const described = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'tag:fleetgraph:cluster', Values: [cluster.id] },
            { Name: 'instance-state-name', Values: ['pending', 'running'] },
          ],
        }),
      );
      const instances = (described.Reservations ?? []).flatMap((r) => r.Instances ?? []);
      const pools = instances.map((i) => i.Tags?.find((t) => t.Key === 'fleetgraph:pool')?.Value);
      return !pools.includes('batch') && pools;
    });
    ec2.destroy();
    expect(left.sort()).toEqual(['control-plane', 'workers']);
  });

  it('should offer newer profile versions and apply one (admin only) as a rolling upgrade', async () => {
    const cluster = (await create()).cluster;
    await running(cluster.id);
    const newer = await platform.graphql(
      CREATE_PROFILE,
      { input: seed.profileInput(project, { name: 'base', version: '1.1.0' }) },
      admin,
    );
    const newerId = newer.data!.createClusterProfile.profile.id;
    const updates = await platform.graphql(
      `query($id: ID!) { cluster(id: $id) { availableUpdates { id version } } }`,
      { id: cluster.id },
      viewer,
    );
    expect(updates.data!.cluster.availableUpdates).toContainEqual({ id: newerId, version: '1.1.0' });
    const APPLY = `mutation($c: ID!, $p: ID!) { applyClusterUpdate(clusterId: $c, profileId: $p) { cluster { profile { version } } userErrors { code } } }`;
    expect((await platform.graphql(APPLY, { c: cluster.id, p: newerId }, editor)).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN',
    );
    const applied = await platform.graphql(APPLY, { c: cluster.id, p: newerId }, admin);
    expect(applied.data!.applyClusterUpdate).toEqual({ cluster: { profile: { version: '1.1.0' } }, userErrors: [] });
    await running(cluster.id);
  });

  it('should list regions, instance types and proxy requirements', async () => {
    const r = await platform.graphql(
      `{ regions(cloud: LOCAL) { name zones } instanceTypes(cloud: LOCAL, region: "local-1") { name vcpus memoryMiB } proxyRequirements { domain port description } }`,
      {},
      viewer,
    );
    expect(r.data!.regions).toContainEqual({ name: 'local-1', zones: ['local-1a', 'local-1b', 'local-1c'] });
    expect(r.data!.instanceTypes).toContainEqual({ name: 'm5.large', vcpus: 2, memoryMiB: 8192 });
    expect(r.data!.proxyRequirements.map((p: any) => p.domain)).toEqual(
      expect.arrayContaining(['ec2.us-east-1.amazonaws.com', 'management.azure.com', 'registry.k8s.io']),
    );
    const bad = await platform.graphql(`{ instanceTypes(cloud: LOCAL, region: "nowhere") { name } }`, {}, viewer);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
