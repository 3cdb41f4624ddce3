/**
 * The local cloud itself (a FAKE cloud: a simulation speaking EC2's Query API), started
 * in-process on a free port and driven through the `local` provider, i.e. the AWS SDK.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstanceAttributeCommand, EC2Client, type InstanceAttributeName } from '@aws-sdk/client-ec2';
import {
  createLocalProvider,
  LOCAL_CLOUD_CREDENTIALS,
  type CloudProvider,
  type CreateMachineInput,
} from '@fleetgraph/clouds';
import { eventually } from '@fleetgraph/clouds/testing';
import { ConfigError } from '@fleetgraph/kit/core';
import { createSqliteStore, type Store } from '@fleetgraph/kit/store';
import { afterEach, describe, expect, it } from 'vitest';
import { SEED_IMAGES, SEED_REGION } from './catalog.js';
import { loadEnv } from './env.js';
import { startLocalCloud, type LocalCloudOptions } from './local-cloud.js';
import type { MachineStateChange } from './simulator.js';
import { FIRST_SEED_IMAGE, localCloudAdmin, nodeUserData } from './testing.js';

/** A raw EC2 Query API call; the local cloud takes any signature, the region comes from its scope. */
async function ec2Query(url: string, body: string): Promise<{ status: number; xml: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization:
        'AWS4-HMAC-SHA256 Credential=KEY/20260101/local-1/ec2/aws4_request, SignedHeaders=host, Signature=x',
    },
    body,
  });
  return { status: response.status, xml: await response.text() };
}

/** A clock the test moves by hand. */
function manualClock(start = Date.parse('2026-01-01T00:00:00Z')) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

let counter = 0;
function machine(overrides: Partial<CreateMachineInput> = {}): CreateMachineInput {
  counter += 1;
  return {
    clientToken: `token-${counter}-${Date.now()}`,
    clusterId: 'c-local',
    pool: 'workers',
    machineName: `workers-${counter}`,
    role: 'WORKER',
    region: 'local-1',
    zone: 'local-1a',
    instanceType: 't3.medium',
    imageId: FIRST_SEED_IMAGE.id,
    ...overrides,
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function start(options: LocalCloudOptions = {}, providerOptions: { maxAttempts?: number } = {}) {
  let store: Store | undefined;
  if (!options.store && !options.dataDir) {
    store = createSqliteStore({ file: ':memory:' });
    options = { ...options, store };
  }
  const cloud = await startLocalCloud({ speed: 1000, ...options });
  const provider = createLocalProvider({
    endpoint: cloud.url,
    maxAttempts: providerOptions.maxAttempts ?? 1,
    retryMode: 'standard',
  });
  cleanups.push(async () => {
    await provider.close();
    await cloud.close();
    await store?.close();
  });
  return { cloud, provider, admin: localCloudAdmin(cloud.url) };
}

async function stateOf(provider: CloudProvider, id: string) {
  return (await provider.describeMachine('local-1', id))?.state;
}

describe('local cloud (a fake cloud, in-process)', () => {
  it('keeps its state on disk: machines, networks and images survive a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-cloud-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const clock = manualClock();

    const first = await startLocalCloud({ dataDir, clock, speed: 1 });
    const before = createLocalProvider({ endpoint: first.url, maxAttempts: 1 });
    const network = await before.ensureNetwork({ clusterId: 'c-restart', region: 'local-1', zones: ['local-1a'] });
    const input = machine({ clusterId: 'c-restart', network });
    const created = await before.createMachine(input);
    expect(created.state).toBe('pending');
    await before.close();
    await first.close();

    // A minute and a half later (the longest boot), on the same files.
    clock.advance(91_000);
    const heard: MachineStateChange[] = [];
    const second = await startLocalCloud({
      dataDir,
      clock,
      speed: 1,
      onMachineStateChange: (change) => heard.push(change),
    });
    expect(heard.map((c) => [c.type, c.machine.id])).toEqual([['running', created.id]]);
    const after = createLocalProvider({ endpoint: second.url, maxAttempts: 1 });
    cleanups.push(async () => {
      await after.close();
      await second.close();
    });
    expect(await after.describeMachine('local-1', created.id)).toMatchObject({
      id: created.id,
      state: 'running',
      name: input.machineName,
    });
    expect(await after.ensureNetwork({ clusterId: 'c-restart', region: 'local-1', zones: ['local-1a'] })).toEqual(
      network,
    );
    // The idempotency token survived too: a retry finds the first machine.
    expect((await after.createMachine(input)).id).toBe(created.id);
    expect(await after.describeMachines({ clusterId: 'c-restart', region: 'local-1' })).toHaveLength(1);
  });

  it('boots machines in 40-90 s of cloud time, divided by the speed factor', async () => {
    const clock = manualClock();
    const { provider } = await start({ clock, speed: 10 });
    const { id } = await provider.createMachine(machine());
    clock.advance(3_900); // under 40 s / 10
    expect(await stateOf(provider, id)).toBe('pending');
    clock.advance(5_200); // past 90 s / 10
    expect(await stateOf(provider, id)).toBe('running');
  });

  it('shuts machines down through shutting-down to terminated, freeing their vCPUs', async () => {
    const clock = manualClock();
    const { provider, admin } = await start({ clock, speed: 10 });
    const { id } = await provider.createMachine(machine());
    expect((await admin.quota('local-1')).vcpuUsed).toBe(2);
    clock.advance(9_100);
    await provider.deleteMachine('local-1', id);
    expect(await stateOf(provider, id)).toBe('terminating');
    expect((await admin.quota('local-1')).vcpuUsed).toBe(0);
    clock.advance(4_600); // past 45 s / 10
    expect(await stateOf(provider, id)).toBe('terminated');
    expect(await provider.describeMachines({ clusterId: 'c-local', region: 'local-1' })).toEqual([]);
    expect(
      (await provider.describeMachines({ clusterId: 'c-local', region: 'local-1', includeTerminated: true })).map(
        (m) => m.id,
      ),
    ).toEqual([id]);
  });

  it('copies images in minutes of cloud time; its published images are in local-1 only', async () => {
    const clock = manualClock();
    const { provider } = await start({ clock, speed: 10 });
    expect(await provider.describeImage('local-1', FIRST_SEED_IMAGE.name)).toMatchObject({
      id: FIRST_SEED_IMAGE.id,
      status: 'available',
    });
    expect(await provider.describeImage('local-2', FIRST_SEED_IMAGE.name)).toBeNull();
    expect((await provider.findImages(SEED_REGION, { 'fleetgraph:os': 'ubuntu' })).length).toBe(SEED_IMAGES.length);

    const copy = await provider.copyImage({
      sourceRegion: 'local-1',
      sourceImageId: FIRST_SEED_IMAGE.id,
      region: 'local-2',
      name: 'copied',
      clientToken: 'copy-1',
    });
    expect(copy.status).toBe('pending');
    clock.advance(17_900); // under 180 s / 10
    expect((await provider.describeImage('local-2', copy.id))?.status).toBe('pending');
    clock.advance(24_200); // past 420 s / 10
    expect((await provider.describeImage('local-2', copy.id))?.status).toBe('available');
  });

  it('tells listeners when a machine runs and when it is terminated', async () => {
    const { cloud, provider } = await start({ speed: 1000 });
    const changes: MachineStateChange[] = [];
    const stop = cloud.machineEvents.on((change) => changes.push(change));
    const created = await provider.createMachine(machine({ userData: '#cloud-config\nhostname: a\n' }));
    await eventually(async () => changes.some((c) => c.type === 'running'), 5_000, 'the running event');
    await provider.deleteMachine('local-1', created.id);
    await eventually(async () => changes.some((c) => c.type === 'terminated'), 5_000, 'the terminated event');
    stop();
    expect(changes.map((c) => c.type)).toEqual(['running', 'terminated']);
    expect(changes[0]!.machine).toMatchObject({
      id: created.id,
      instanceType: 't3.medium',
      vcpus: 2,
      memoryMiB: 4096,
      userData: '#cloud-config\nhostname: a\n',
      tags: expect.objectContaining({ 'fleetgraph:cluster': 'c-local' }),
    });
  });

  it("refuses RunInstances over the vCPU quota with AWS's VcpuLimitExceeded message", async () => {
    const { provider, admin } = await start({ vcpuLimit: 4 });
    await provider.createMachine(machine({ instanceType: 'm5.large' }));
    const error = await provider.createMachine(machine({ instanceType: 'm5.xlarge' })).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'CloudError',
      code: 'QUOTA_EXCEEDED',
      cloudCode: 'VcpuLimitExceeded',
      httpStatus: 400,
      message:
        'You have requested more vCPU capacity than your current vCPU limit of 4 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.',
    });
    await admin.setQuota(8, 'local-1');
    await expect(provider.createMachine(machine({ instanceType: 'm5.xlarge' }))).resolves.toMatchObject({
      instanceType: 'm5.xlarge',
    });
    expect(await provider.quota('local-1')).toEqual({ region: 'local-1', vcpuLimit: 8, vcpuUsed: 6 });
    expect(await provider.quota('local-2')).toEqual({ region: 'local-2', vcpuLimit: 4, vcpuUsed: 0 });
  });

  it('answers with 503 Unavailable at the configured fault rate, and recovers when faults are reset', async () => {
    const { provider, admin } = await start({ faults: { errorRate: 1 } });
    const error = await provider.regions().catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'CloudError',
      code: 'TRANSIENT',
      cloudCode: 'Unavailable',
      httpStatus: 503,
      retryable: true,
    });
    await admin.resetFaults();
    expect((await admin.faults()).errorRate).toBe(1);
    await admin.setFaults({ errorRate: 0 });
    await expect(provider.regions()).resolves.toEqual([
      { name: 'local-1', zones: ['local-1a', 'local-1b', 'local-1c'] },
      { name: 'local-2', zones: ['local-2a', 'local-2b', 'local-2c'] },
    ]);
  });

  it('throttles with RequestLimitExceeded above the configured requests per second', async () => {
    const { provider, admin } = await start();
    await admin.setFaults({ throttlePerSecond: 2 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => provider.instanceTypes('local-1')));
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(refused[0]!.reason).toMatchObject({
      code: 'RATE_LIMITED',
      cloudCode: 'RequestLimitExceeded',
      message: 'Request limit exceeded.',
      httpStatus: 503,
    });
  });

  it('injects the errors it is told to, once each, such as InsufficientInstanceCapacity', async () => {
    const { provider, admin } = await start();
    const message =
      'We currently do not have sufficient t3.medium capacity in the Availability Zone you requested (local-1a). Our system will be working on provisioning additional capacity.';
    await admin.setFaults({
      inject: [{ action: 'RunInstances', code: 'InsufficientInstanceCapacity', message, status: 500 }],
    });
    await expect(provider.regions()).resolves.toHaveLength(2);
    const error = await provider.createMachine(machine()).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'RESOURCES_DEPLETED',
      cloudCode: 'InsufficientInstanceCapacity',
      message,
      retryable: true,
    });
    await expect(provider.createMachine(machine())).resolves.toMatchObject({ state: 'pending' });
  });

  it('never makes a second machine when answers are lost and the SDK retries with the same client token', async () => {
    const { provider, admin } = await start({}, { maxAttempts: 3 });
    await admin.setFaults({ lostResponseRate: 1 });
    const input = machine({ clusterId: 'c-lost' });
    const error = await provider.createMachine(input).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRANSIENT', cloudCode: 'InternalError' });
    await admin.resetFaults();
    const created = await provider.createMachine(input);
    const machines = await provider.describeMachines({ clusterId: 'c-lost', region: 'local-1' });
    expect(machines.map((m) => m.id)).toEqual([created.id]);
  });

  it('rejects bad admin input with every problem named', async () => {
    const { cloud } = await start();
    const response = await fetch(`${cloud.url}/_admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 2, throttlePerSecond: -1 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string[] };
    expect(body.error).toHaveLength(2);
    expect(body.error.join('\n')).toMatch(/errorRate/);
    expect(body.error.join('\n')).toMatch(/throttlePerSecond/);
  });

  it('narrows a security group when ensureNetwork is called with a smaller API allow-list', async () => {
    const { cloud, provider } = await start();
    const input = { clusterId: 'c-narrow', region: 'local-1', zones: ['local-1a'] };
    const wide = await provider.ensureNetwork({ ...input, apiAllowedCidrs: ['0.0.0.0/0'] });
    const narrow = await provider.ensureNetwork({ ...input, apiAllowedCidrs: ['192.0.2.0/24'] });
    expect(narrow).toEqual(wide);
    const { xml } = await ec2Query(
      cloud.url,
      `Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=${narrow.controlPlane.securityGroupId}`,
    );
    expect(xml).toContain('<cidrIp>192.0.2.0/24</cidrIp>');
    expect(xml).not.toContain('<cidrIp>0.0.0.0/0</cidrIp><description>Kubernetes API');
    // Nodes of both roles still reach the control plane.
    expect(xml).toContain(`<groupId>${narrow.workers.securityGroupId}</groupId>`);
  });

  it("answers unsigned or unknown requests with EC2's XML error shape and status", async () => {
    const { cloud } = await start();
    const unsigned = await fetch(cloud.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=DescribeRegions&Version=2016-11-15',
    });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>AuthFailure<\/Code><Message>AWS was not able to validate the provided access credentials<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
    );
    const unknown = await ec2Query(cloud.url, 'Action=LaunchRocket&Version=2016-11-15');
    expect(unknown.status).toBe(400);
    expect(unknown.xml).toContain(
      '<Code>InvalidAction</Code><Message>The action LaunchRocket is not valid for this web service.</Message>',
    );
  });
});

describe("the local cloud booting clusters' machines from their user data", () => {
  /** A machine of a cluster, as the orchestrator makes it: tagged with its cluster and tenant. */
  const clusterMachine = (overrides: Partial<CreateMachineInput> = {}) =>
    machine({ clusterId: 'c-boot', tags: { 'fleetgraph:tenant': 't1' }, ...overrides });
  const boot = async (clock: ReturnType<typeof manualClock>, provider: CloudProvider, id: string) => {
    clock.advance(9_100); // past 90 s / 10: booted, or failed
    return provider.describeMachine('local-1', id);
  };

  it('should stop a machine whose user data would not make it a node, saying why, until it is deleted', async () => {
    const clock = manualClock();
    const { provider, admin } = await start({ clock, speed: 10 });
    const broken = await provider.createMachine(clusterMachine({ userData: '#cloud-config\nwrite_files: []\n' }));
    const reason =
      'Client.InstanceInitiatedShutdown: bootstrap failed: no kubeadm configuration at /run/kubeadm/kubeadm.yaml';
    expect(await boot(clock, provider, broken.id)).toMatchObject({ state: 'stopping', stateReason: reason });
    clock.advance(4_600); // past 45 s / 10
    expect(await provider.describeMachine('local-1', broken.id)).toMatchObject({
      state: 'stopped',
      stateReason: reason,
    });
    // A stopped machine holds no vCPUs, and goes when the orchestrator removes it.
    expect((await admin.quota('local-1')).vcpuUsed).toBe(0);
    await provider.deleteMachine('local-1', broken.id);
    expect(await stateOf(provider, broken.id)).toBe('terminating');
  });

  it('should boot a node whose user data holds a kubeadm configuration, and one without user data unless it is required', async () => {
    const clock = manualClock();
    const { provider } = await start({ clock, speed: 10 });
    const node = await provider.createMachine(
      clusterMachine({ userData: nodeUserData({ kind: 'join', nodeName: 'w-1' }) }),
    );
    const bare = await provider.createMachine(clusterMachine());
    clock.advance(9_100);
    expect(await stateOf(provider, node.id)).toBe('running');
    expect(await stateOf(provider, bare.id)).toBe('running');

    const strict = await start({ clock, speed: 10, requireUserData: true });
    const refused = await strict.provider.createMachine(clusterMachine());
    // A machine outside clusters (an image builder: no tenant tag) boots whatever its user data.
    const builder = await strict.provider.createMachine(
      machine({ clusterId: 'fleetgraph-image-builder', userData: '#!/bin/bash\necho build\n' }),
    );
    clock.advance(9_100);
    expect(await strict.provider.describeMachine('local-1', refused.id)).toMatchObject({
      state: 'stopping',
      stateReason: 'Client.InstanceInitiatedShutdown: bootstrap failed: no user data',
    });
    expect(await stateOf(strict.provider, builder.id)).toBe('running');
  });

  it('should never tell the agents that a machine which failed its bootstrap runs', async () => {
    const { cloud, provider } = await start({ speed: 1000 });
    const changes: MachineStateChange[] = [];
    const stop = cloud.machineEvents.on((change) => changes.push(change));
    const broken = await provider.createMachine(clusterMachine({ userData: '#!/bin/bash\n' }));
    const good = await provider.createMachine(
      clusterMachine({ userData: nodeUserData({ kind: 'join', nodeName: 'w-2' }) }),
    );
    await eventually(
      async () =>
        (await stateOf(provider, broken.id)) === 'stopped' && (await stateOf(provider, good.id)) === 'running',
      5_000,
      'both boots',
    );
    stop();
    expect(changes.map((c) => [c.type, c.machine.id])).toEqual([['running', good.id]]);
  });
});

describe("the local cloud's DescribeInstanceAttribute, through the AWS SDK", () => {
  const ec2Of = (url: string) =>
    new EC2Client({ endpoint: url, region: 'local-1', credentials: { ...LOCAL_CLOUD_CREDENTIALS }, maxAttempts: 1 });
  const attribute = (ec2: EC2Client, InstanceId: string, Attribute: string) =>
    ec2.send(new DescribeInstanceAttributeCommand({ InstanceId, Attribute: Attribute as InstanceAttributeName }));

  it('should answer the user data base64-encoded, as RunInstances took it, and an empty value without any', async () => {
    const { cloud, provider } = await start();
    const ec2 = ec2Of(cloud.url);
    cleanups.push(async () => ec2.destroy());
    const userData = nodeUserData({ kind: 'join', nodeName: 'w-1' });
    const withData = await provider.createMachine(machine({ userData }));
    const without = await provider.createMachine(machine());

    const answer = await attribute(ec2, withData.id, 'userData');
    expect(answer.InstanceId).toBe(withData.id);
    expect(answer.UserData!.Value).toBe(Buffer.from(userData, 'utf8').toString('base64'));
    expect(Buffer.from(answer.UserData!.Value!, 'base64').toString('utf8')).toBe(userData);
    expect((await attribute(ec2, without.id, 'userData')).UserData).toEqual({});
  });

  it('should answer the other attributes as EC2 does, and an unknown one or instance with its error', async () => {
    const { cloud, provider } = await start();
    const ec2 = ec2Of(cloud.url);
    cleanups.push(async () => ec2.destroy());
    const { id } = await provider.createMachine(machine({ instanceType: 'm5.large' }));
    expect((await attribute(ec2, id, 'instanceType')).InstanceType).toEqual({ Value: 'm5.large' });
    expect((await attribute(ec2, id, 'disableApiTermination')).DisableApiTermination).toEqual({ Value: false });
    expect((await attribute(ec2, id, 'instanceInitiatedShutdownBehavior')).InstanceInitiatedShutdownBehavior).toEqual({
      Value: 'stop',
    });
    expect((await attribute(ec2, id, 'rootDeviceName')).RootDeviceName).toEqual({ Value: '/dev/sda1' });
    expect((await attribute(ec2, id, 'groupSet')).Groups).toEqual([
      { GroupId: expect.stringMatching(/^sg-/), GroupName: 'default' },
    ]);
    expect((await attribute(ec2, id, 'kernel')).KernelId).toEqual({});

    await expect(attribute(ec2, id, 'colour')).rejects.toMatchObject({
      name: 'InvalidParameterValue',
      message: 'Value (colour) for parameter attribute is invalid. Unknown attribute.',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(attribute(ec2, 'i-0123456789abcdef0', 'userData')).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
      message: "The instance ID 'i-0123456789abcdef0' does not exist",
    });
  });
});

describe('local cloud configuration', () => {
  it('has a default for every variable', () => {
    expect(loadEnv({})).toEqual({
      PORT: 4566,
      HOST: '127.0.0.1',
      DATA_DIR: './.data',
      LOG_LEVEL: 'info',
      LOCAL_CLOUD_SPEED: 1,
      LOCAL_CLOUD_VCPU_LIMIT: 64,
      LOCAL_CLOUD_FAULT_RATE: 0,
      LOCAL_CLOUD_THROTTLE_RPS: 0,
      LOCAL_CLOUD_REQUIRE_USER_DATA: true,
    });
    expect(loadEnv({ LOCAL_CLOUD_REQUIRE_USER_DATA: 'false' }).LOCAL_CLOUD_REQUIRE_USER_DATA).toBe(false);
  });

  it('fails naming every bad variable at once', () => {
    let error: unknown;
    try {
      loadEnv({ PORT: 'http', LOCAL_CLOUD_SPEED: '0', LOCAL_CLOUD_FAULT_RATE: '1.5' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'LOCAL_CLOUD_FAULT_RATE',
      'LOCAL_CLOUD_SPEED',
      'PORT',
    ]);
  });
});
