import type { MachineState } from '@fleetgraph/clouds';
import type { NodeRole } from '@fleetgraph/schema';
import { describe, expect, it } from 'vitest';
import type { ClusterSpec } from '../domain/cluster.js';
import type { ClusterStatus } from '../domain/status.js';
import {
  defaultLayers,
  failing,
  image,
  intent,
  pools,
  profile,
  provisioned,
  spec,
  world,
  type World,
} from './phases.fixture.js';
import {
  addonsPhase,
  deletionPhase,
  imagePhase,
  infrastructurePhase,
  machinesPhase,
  type PhaseResult,
} from './phases.js';
import { reconcileStep } from './reconcile.js';

/**
 * Each reconcile phase against in-memory ports (cluster-api's *_phases_test.go): a cloud in
 * memory that implements the clouds' provider interface, and stand-ins for the profiles and
 * images services and the cluster's agent (phases.fixture.ts). No local cloud, no NATS.
 */

/** What a phase should answer: its outcome and reason, the cloud's code when it failed, and the events it noted. */
interface Expected {
  outcome: PhaseResult['outcome'];
  reason: string;
  code?: string;
  message?: string | RegExp;
  events: string[];
}

function expectResult(result: PhaseResult, w: World, expected: Expected): void {
  expect(result).toMatchObject({ outcome: expected.outcome, reason: expected.reason });
  if (expected.outcome === 'failed') expect(result).toMatchObject({ code: expected.code });
  if (expected.message !== undefined) expect(result.message).toMatch(expected.message);
  expect(w.reasons()).toEqual(expected.events);
}

describe('Customizing Image', () => {
  it.each<{
    name: string;
    status?: Partial<ClusterStatus>;
    given?: (w: World) => void;
    expected: Expected;
    asked: number;
  }>([
    {
      name: 'should be done without asking when the image of the profile is resolved already',
      status: { imageId: 'ami-1', imageProfileId: 'prof-1' },
      expected: { outcome: 'done', reason: 'ImageReady', message: 'image ami-1 is ready', events: [] },
      asked: 0,
    },
    {
      name: 'should take a READY image and note ImageReady',
      status: { imageId: null, imageProfileId: null },
      expected: { outcome: 'done', reason: 'ImageReady', message: 'image ami-1 is ready', events: ['ImageReady'] },
      asked: 1,
    },
    {
      name: 'should resolve the image again after a profile update',
      status: { imageId: 'ami-old', imageProfileId: 'prof-0' },
      expected: { outcome: 'done', reason: 'ImageReady', events: ['ImageReady'] },
      asked: 1,
    },
    {
      name: 'should be in progress while the image builds',
      status: { imageId: null },
      given: (w) =>
        (w.requests.resolveImage = async () =>
          image({ status: 'BUILDING', artifactId: null, message: 'builder i-9 is running' })),
      expected: { outcome: 'progress', reason: 'ImageBuilding', message: 'builder i-9 is running', events: [] },
      asked: 1,
    },
    {
      name: 'should fail with INVALID_CONFIGURATION when the image build failed',
      status: { imageId: null },
      given: (w) =>
        (w.requests.resolveImage = async () =>
          image({ status: 'FAILED', artifactId: null, message: 'ansible role hardening failed' })),
      expected: {
        outcome: 'failed',
        reason: 'ImageFailed',
        code: 'INVALID_CONFIGURATION',
        message: 'ansible role hardening failed',
        events: [],
      },
      asked: 1,
    },
    {
      name: 'should fail with INVALID_CONFIGURATION when the profile has no Kubernetes layer',
      status: { imageId: null },
      given: (w) => (w.requests.profile = async () => profile(defaultLayers.filter((l) => l.type !== 'KUBERNETES'))),
      expected: { outcome: 'failed', reason: 'InvalidProfile', code: 'INVALID_CONFIGURATION', events: [] },
      asked: 0,
    },
    {
      name: 'should fail with INVALID_CONFIGURATION when the profile is gone',
      status: { imageId: null },
      given: (w) => (w.requests.profile = failing('NOT_FOUND', 'no such profile')),
      expected: {
        outcome: 'failed',
        reason: 'ImageUnavailable',
        code: 'INVALID_CONFIGURATION',
        message: 'no such profile',
        events: [],
      },
      asked: 0,
    },
    {
      name: 'should fail as TRANSIENT when the images service does not answer',
      status: { imageId: null },
      given: (w) => (w.requests.resolveImage = failing('TIMEOUT', 'images.v1.resolve timed out')),
      expected: {
        outcome: 'failed',
        reason: 'ImageUnavailable',
        code: 'TRANSIENT',
        message: 'images.v1.resolve timed out',
        events: [],
      },
      asked: 1,
    },
  ])('$name', async ({ status, given, expected, asked }) => {
    const w = world();
    given?.(w);
    const { result, status: after } = await w.step(imagePhase, spec(), provisioned(status));
    expectResult(result, w, expected);
    expect(w.asked.resolveImage).toBe(asked);
    if (expected.outcome === 'done') expect(after).toMatchObject({ imageId: 'ami-1', imageProfileId: 'prof-1' });
  });
});

describe('Creating Infrastructure', () => {
  it.each<{
    name: string;
    status?: Partial<ClusterStatus>;
    definition?: Partial<ClusterSpec>;
    given?: (w: World) => void;
    expected: Expected;
    calls: number;
  }>([
    {
      name: 'should be done without calling the cloud when the network covers every zone',
      expected: { outcome: 'done', reason: 'InfrastructureReady', message: 'network vpc-1 is ready', events: [] },
      calls: 0,
    },
    {
      name: 'should make the network and note NetworkReady',
      status: { network: null },
      expected: { outcome: 'done', reason: 'InfrastructureReady', events: ['NetworkReady'] },
      calls: 1,
    },
    {
      name: 'should extend the network to a zone a pool added',
      definition: { nodePools: pools({ availabilityZones: ['local-1a', 'local-1b', 'local-1c'] }) },
      expected: { outcome: 'done', reason: 'InfrastructureReady', events: ['NetworkReady'] },
      calls: 1,
    },
    {
      name: "should fail with the cloud's code and words",
      status: { network: null },
      given: (w) =>
        w.cloud.failNext('ensureNetwork', 'UNAUTHORIZED', 'You are not authorized to perform this operation.'),
      expected: {
        outcome: 'failed',
        reason: 'InfrastructureFailed',
        code: 'UNAUTHORIZED',
        message: 'You are not authorized to perform this operation.',
        events: [],
      },
      calls: 1,
    },
  ])('$name', async ({ status, definition, given, expected, calls }) => {
    const w = world();
    given?.(w);
    const { result, status: after } = await w.step(infrastructurePhase, spec(definition), provisioned(status));
    expectResult(result, w, expected);
    expect(w.cloud.callsOf('ensureNetwork')).toBe(calls);
    if (expected.outcome === 'done') expect(after.network).not.toBeNull();
  });
});

describe('Adding Control Plane Node / Adding Worker Nodes', () => {
  const running = (w: World, name: string, pool: string, zone: string, state: MachineState = 'running') =>
    w.cloud.add({ name, pool, zone, state });

  it.each<{
    name: string;
    role: NodeRole;
    definition?: Partial<ClusterSpec>;
    status?: Partial<ClusterStatus>;
    given?: (w: World) => void;
    expected: Expected;
    created: number;
    deleted: number;
  }>([
    {
      name: 'should create the control-plane machine, its intent stored first, and note one MachineCreated',
      role: 'CONTROL_PLANE',
      expected: {
        outcome: 'progress',
        reason: 'AddingControlPlane',
        message: 'scaling control-plane up to 1',
        events: ['MachineCreated'],
      },
      created: 1,
      deleted: 0,
    },
    {
      name: 'should be done when the control plane runs',
      role: 'CONTROL_PLANE',
      given: (w) => void running(w, 'control-plane-aaaaa', 'control-plane', 'local-1a'),
      expected: {
        outcome: 'done',
        reason: 'ControlPlaneReady',
        message: '1 control-plane node(s) running',
        events: [],
      },
      created: 0,
      deleted: 0,
    },
    {
      name: 'should wait for a pending worker, creating nothing more',
      role: 'WORKER',
      given: (w) => {
        running(w, 'workers-aaaaa', 'workers', 'local-1a');
        running(w, 'workers-bbbbb', 'workers', 'local-1b', 'pending');
      },
      expected: {
        outcome: 'progress',
        reason: 'AddingWorkers',
        message: 'waiting for workers machines to run',
        events: [],
      },
      created: 0,
      deleted: 0,
    },
    {
      name: 'should create the missing workers over both zones',
      role: 'WORKER',
      expected: {
        outcome: 'progress',
        reason: 'AddingWorkers',
        message: 'scaling workers up to 2',
        events: ['MachineCreated', 'MachineCreated'],
      },
      created: 2,
      deleted: 0,
    },
    {
      name: 'should announce a machine made by an attempt that never returned once it is seen, creating nothing',
      role: 'WORKER',
      status: { intents: [intent({ name: 'workers-aaaaa' })] },
      given: (w) => {
        running(w, 'workers-aaaaa', 'workers', 'local-1a');
        running(w, 'workers-bbbbb', 'workers', 'local-1b');
      },
      expected: {
        outcome: 'done',
        reason: 'WorkersReady',
        message: '2 worker node(s) running',
        events: ['MachineCreated'],
      },
      created: 0,
      deleted: 0,
    },
    {
      name: 'should remove the newest extra worker and note one MachineDeleted',
      role: 'WORKER',
      definition: { nodePools: pools({ count: 1 }) },
      given: (w) => {
        running(w, 'workers-aaaaa', 'workers', 'local-1a');
        running(w, 'workers-bbbbb', 'workers', 'local-1b');
      },
      expected: {
        outcome: 'progress',
        reason: 'AddingWorkers',
        message: 'scaling workers down to 1',
        events: ['MachineDeleted'],
      },
      created: 0,
      deleted: 1,
    },
    {
      name: 'should remove the machines of a pool that no longer exists',
      role: 'WORKER',
      given: (w) => {
        running(w, 'workers-aaaaa', 'workers', 'local-1a');
        running(w, 'workers-bbbbb', 'workers', 'local-1b');
        running(w, 'gpu-ccccc', 'gpu', 'local-1a');
      },
      expected: {
        outcome: 'progress',
        reason: 'AddingWorkers',
        message: 'waiting for worker machines',
        events: ['MachineDeleted'],
      },
      created: 0,
      deleted: 1,
    },
    {
      name: "should fail with the cloud's code and words, the intent kept for the next attempt",
      role: 'WORKER',
      definition: { nodePools: pools({ count: 1, availabilityZones: ['local-1a'] }) },
      given: (w) =>
        w.cloud.failNext(
          'createMachine',
          'QUOTA_EXCEEDED',
          'You have requested more vCPU capacity than your current vCPU limit of 8 allows.',
        ),
      expected: {
        outcome: 'failed',
        reason: 'WorkersFailed',
        code: 'QUOTA_EXCEEDED',
        message: 'You have requested more vCPU capacity than your current vCPU limit of 8 allows.',
        events: [],
      },
      created: 0,
      deleted: 0,
    },
    {
      name: 'should fail as the cloud says when it cannot list machines',
      role: 'CONTROL_PLANE',
      given: (w) => w.cloud.failNext('describeMachines', 'RATE_LIMITED', 'Request limit exceeded.'),
      expected: {
        outcome: 'failed',
        reason: 'ControlPlaneFailed',
        code: 'RATE_LIMITED',
        message: 'Request limit exceeded.',
        events: [],
      },
      created: 0,
      deleted: 0,
    },
  ])('$name', async ({ role, definition, status, given, expected, created, deleted }) => {
    const w = world();
    given?.(w);
    const before = w.cloud.machines.size;
    // Every machine is created from an intent already on record.
    w.cloud.beforeCreate = (input) =>
      expect(w.persisted.at(-1)?.intents.map((i) => i.token)).toContain(input.clientToken);
    const { result, status: after } = await w.step(machinesPhase(role), spec(definition), provisioned(status));
    expectResult(result, w, expected);
    expect(w.cloud.machines.size - before).toBe(created);
    expect(w.cloud.callsOf('deleteMachine')).toBe(deleted);
    if (expected.outcome === 'failed' && role === 'WORKER' && expected.reason === 'WorkersFailed')
      expect(after.intents).toHaveLength(1);
  });

  it('should drop intents an earlier definition made that the current one no longer wants, and send the rest', async () => {
    const w = world();
    running(w, 'workers-aaaaa', 'workers', 'local-1a');
    // Generation 1 asked for workers in local-1a and local-1b; the cloud refuses local-1b for
    // good. Generation 2 leaves local-1b out and asks for 2 workers in local-1a.
    const refused = intent({ token: 't-b', name: 'workers-bbbbb', zone: 'local-1b', generation: 1 });
    const { result, status: after } = await w.step(
      machinesPhase('WORKER'),
      spec({ generation: 2, nodePools: pools({ count: 2, availabilityZones: ['local-1a'] }) }),
      provisioned({ intents: [refused] }),
    );
    expectResult(result, w, {
      outcome: 'progress',
      reason: 'AddingWorkers',
      message: 'scaling workers up to 2',
      events: ['MachineCreated'],
    });
    const sent = w.cloud.calls.filter((c) => c.operation === 'createMachine').map((c) => c.input);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ zone: 'local-1a' });
    expect(after.intents.map((i) => [i.zone, i.generation])).toEqual([['local-1a', 2]]);
  });

  it('should drop intents of an earlier definition beyond a smaller count, earliest kept', async () => {
    const w = world();
    running(w, 'workers-aaaaa', 'workers', 'local-1a');
    const open = [
      intent({ token: 't-1', name: 'workers-bbbbb', zone: 'local-1b', generation: 1 }),
      intent({ token: 't-2', name: 'workers-ccccc', zone: 'local-1a', generation: 1 }),
    ];
    const { status: after } = await w.step(
      machinesPhase('WORKER'),
      spec({ generation: 2, nodePools: pools({ count: 2 }) }),
      provisioned({ intents: open }),
    );
    expect(after.intents.map((i) => i.token)).toEqual(['t-1']);
    expect(w.cloud.callsOf('createMachine')).toBe(1);
  });

  it('should keep intents of the current definition, even beyond the count (a surge)', async () => {
    const w = world();
    running(w, 'workers-aaaaa', 'workers', 'local-1a');
    running(w, 'workers-bbbbb', 'workers', 'local-1a');
    const surge = intent({ token: 't-s', name: 'workers-sssss', zone: 'local-1b', generation: 1 });
    const { status: after } = await w.step(machinesPhase('WORKER'), spec(), provisioned({ intents: [surge] }));
    expect(after.intents.map((i) => i.token)).toEqual(['t-s']);
  });

  it('should send every open intent though the cloud refuses one, failing with its words', async () => {
    const w = world();
    w.cloud.failNext(
      'createMachine',
      'INVALID_CONFIGURATION',
      'The requested configuration is currently not supported.',
    );
    const { result, status: after } = await w.step(machinesPhase('WORKER'), spec(), provisioned());
    expectResult(result, w, {
      outcome: 'failed',
      reason: 'WorkersFailed',
      code: 'INVALID_CONFIGURATION',
      message: 'The requested configuration is currently not supported.',
      events: ['MachineCreated'],
    });
    expect(w.cloud.callsOf('createMachine')).toBe(2);
    // Both stay open until the cloud lists their machines: the refused one to be sent again.
    expect(after.intents.map((i) => Boolean(i.announced)).sort()).toEqual([false, true]);
  });

  it("should drop the intent of a machine that ended before it ran, and fail with the cloud's reason", async () => {
    const w = world();
    w.cloud.launchFailure = 'Server.InternalError: Internal error on launch';
    const { result, status: after } = await w.step(
      machinesPhase('WORKER'),
      spec({ nodePools: pools({ count: 1, availabilityZones: ['local-1a'] }) }),
      provisioned(),
    );
    expectResult(result, w, {
      outcome: 'failed',
      reason: 'WorkersFailed',
      code: 'TRANSIENT',
      message:
        /^worker machine i-\d+ \(m5\.large\) in local-1a is terminated: Server\.InternalError: Internal error on launch; it is replaced$/,
      events: ['MachineLaunchFailed'],
    });
    expect(after.intents).toEqual([]);
  });

  it("should fail with the cloud's reason when it removes a machine that would not boot, so the replacement waits", async () => {
    const w = world();
    running(w, 'workers-aaaaa', 'workers', 'local-1a');
    w.cloud.add({
      name: 'workers-bbbbb',
      pool: 'workers',
      zone: 'local-1b',
      state: 'stopped',
      stateReason: 'Client.InstanceInitiatedShutdown: bootstrap failed',
    });
    const { result } = await w.step(machinesPhase('WORKER'), spec(), provisioned());
    expectResult(result, w, {
      outcome: 'failed',
      reason: 'WorkersFailed',
      code: 'TRANSIENT',
      message: /is stopped: Client\.InstanceInitiatedShutdown: bootstrap failed; it is replaced$/,
      events: ['MachineDeleted'],
    });
    expect(w.cloud.callsOf('deleteMachine')).toBe(1);
    expect(w.cloud.callsOf('createMachine')).toBe(0);
  });

  /** Workers resized from m5.large to m5.xlarge: the new machine runs, its node still joining. */
  const resizing = () => {
    const w = world();
    running(w, 'workers-aaaaa', 'workers', 'local-1a');
    const fresh = w.cloud.add({ name: 'workers-bbbbb', pool: 'workers', zone: 'local-1b', instanceType: 'm5.xlarge' });
    w.notReady.add(fresh.name);
    const resized = spec({
      nodePools: pools({ count: 1, instanceType: 'm5.xlarge', availabilityZones: ['local-1a', 'local-1b'] }),
    });
    return { w, resized };
  };

  it("should remove an outdated machine of a rolling replacement only once its replacement's node is Ready", async () => {
    const { w, resized } = resizing();
    const held = await w.step(machinesPhase('WORKER'), resized, provisioned({ addonsProfileId: 'prof-1' }));
    expectResult(held.result, w, {
      outcome: 'progress',
      reason: 'AddingWorkers',
      message: 'waiting for node workers-bbbbb to be Ready before removing an outdated one',
      events: [],
    });
    expect(w.cloud.callsOf('deleteMachine')).toBe(0);

    w.notReady.clear();
    const { result } = await w.step(machinesPhase('WORKER'), resized, held.status);
    expect(result).toMatchObject({
      outcome: 'progress',
      message: 'replacing workers machines: removing an outdated one',
    });
    expect(w.cloud.callsOf('deleteMachine')).toBe(1);
    expect(w.asked.nodes).toBe(2);
  });

  it('should keep outdated machines while node readiness cannot be told', async () => {
    const { w, resized } = resizing();
    w.requests.nodes = failing('NO_RESPONDERS', 'no responders for health.v1.nodes');
    const { result } = await w.step(machinesPhase('WORKER'), resized, provisioned({ addonsProfileId: 'prof-1' }));
    expect(result).toMatchObject({ outcome: 'progress', message: /to be Ready before removing an outdated one/ });
    expect(w.cloud.callsOf('deleteMachine')).toBe(0);
  });

  it('should not wait for Ready nodes before the add-ons (the CNI) are installed: none would be', async () => {
    const { w, resized } = resizing();
    await w.step(machinesPhase('WORKER'), resized, provisioned({ addonsProfileId: null }));
    expect(w.cloud.callsOf('deleteMachine')).toBe(1);
    expect(w.asked.nodes).toBe(0);
  });

  it('should add a control-plane node beside running ones only once their nodes are Ready', async () => {
    const w = world();
    const first = w.cloud.add({ name: 'control-plane-aaaaa', pool: 'control-plane', zone: 'local-1a' });
    w.notReady.add(first.name);
    const three = spec({
      nodePools: [{ ...pools()[0]!, count: 3, availabilityZones: ['local-1a', 'local-1b'] }, pools()[1]!],
    });
    const status = provisioned({ addonsProfileId: 'prof-1', initMachine: first.name, apiEndpoint: '10.0.0.10:6443' });
    const held = await w.step(machinesPhase('CONTROL_PLANE'), three, status);
    expect(held.result).toMatchObject({
      outcome: 'progress',
      message: 'waiting for node control-plane-aaaaa to be Ready before adding the next',
    });
    expect(w.cloud.callsOf('createMachine')).toBe(0);
    w.notReady.clear();
    await w.step(machinesPhase('CONTROL_PLANE'), three, held.status);
    expect(w.cloud.callsOf('createMachine')).toBe(1);
  });

  it('should note exactly one MachineCreated per machine when createMachine is called again for an open intent', async () => {
    const w = world();
    const definition = spec({ nodePools: pools({ count: 1, availabilityZones: ['local-1a'] }) });
    // The cloud makes the machine but does not list it for a while: the intent stays open.
    w.cloud.beforeCreate = (input) => void w.cloud.unlisted.add(input.machineName);
    let status = provisioned();
    for (let attempt = 0; attempt < 3; attempt++)
      ({ status } = await w.step(machinesPhase('WORKER'), definition, status));
    expect(w.cloud.callsOf('createMachine')).toBe(3);
    expect(w.cloud.machines.size).toBe(1);
    expect(status.intents).toEqual([expect.objectContaining({ announced: true })]);

    w.cloud.unlisted.clear();
    const [machine] = w.cloud.machines.values();
    machine!.state = 'running';
    const { result, status: settled } = await w.step(machinesPhase('WORKER'), definition, status);
    expect(result).toMatchObject({ outcome: 'done', reason: 'WorkersReady' });
    expect(settled.intents).toEqual([]);
    expect(w.written.filter((e) => e.reason === 'MachineCreated')).toEqual([
      {
        severity: 'NORMAL',
        reason: 'MachineCreated',
        message: `created worker machine ${machine!.id} (m5.large) in local-1a`,
        object: `machine/${machine!.name}`,
      },
    ]);
  });

  it('should note MachineDeleted once, through status.announcedRemovals, when the removal is retried', async () => {
    const w = world();
    const definition = spec({ nodePools: pools({ count: 1 }) });
    w.cloud.add({ name: 'workers-aaaaa', pool: 'workers', zone: 'local-1a' });
    const newest = w.cloud.add({ name: 'workers-bbbbb', pool: 'workers', zone: 'local-1a' });
    w.cloud.failNext('deleteMachine', 'TRANSIENT', 'Internal server error.');

    const first = await w.step(machinesPhase('WORKER'), definition, provisioned());
    expect(first.result).toMatchObject({
      outcome: 'failed',
      reason: 'WorkersFailed',
      code: 'TRANSIENT',
      message: 'Internal server error.',
    });
    // The event went out with the status written before the cloud was asked.
    expect(w.persisted.at(-1)?.announcedRemovals).toEqual([newest.id]);
    const second = await w.step(machinesPhase('WORKER'), definition, first.status);
    expect(second.result).toMatchObject({ outcome: 'progress', reason: 'AddingWorkers' });

    expect(w.cloud.callsOf('deleteMachine')).toBe(2);
    expect(w.written.filter((e) => e.reason === 'MachineDeleted')).toEqual([
      {
        severity: 'NORMAL',
        reason: 'MachineDeleted',
        message: `deleting worker machine ${newest.id} (m5.large) in local-1a`,
        object: 'machine/workers-bbbbb',
      },
    ]);
  });
});

describe('Installing Add-ons', () => {
  it.each<{
    name: string;
    status?: Partial<ClusterStatus>;
    given?: (w: World) => void;
    expected: Expected;
    installed: string | null;
  }>([
    {
      name: 'should be done without asking the agent when the profile is installed already',
      status: { addonsProfileId: 'prof-1' },
      expected: {
        outcome: 'done',
        reason: 'AddonsInstalled',
        message: 'every pack of the profile is installed',
        events: [],
      },
      installed: 'prof-1',
    },
    {
      name: 'should install the CNI, CSI and add-on packs and note each',
      expected: {
        outcome: 'done',
        reason: 'AddonsInstalled',
        message: 'every pack of the profile is installed',
        events: ['AddonInstalled', 'AddonInstalled'],
      },
      installed: 'prof-1',
    },
    {
      name: "should wait while the cluster's agent is not connected",
      given: (w) => (w.requests.applyPacks = failing('NO_RESPONDERS', 'no responders')),
      expected: { outcome: 'progress', reason: 'WaitingForAgent', events: [] },
      installed: null,
    },
    {
      name: 'should fail as TRANSIENT with the first pack that failed',
      given: (w) =>
        (w.requests.applyPacks = async () => ({
          installed: [],
          failed: [{ name: 'calico', version: '3.28.0', message: 'image pull backoff' }],
        })),
      expected: {
        outcome: 'failed',
        reason: 'AddonFailed',
        code: 'TRANSIENT',
        message: 'calico 3.28.0: image pull backoff',
        events: [],
      },
      installed: null,
    },
    {
      name: 'should fail as TRANSIENT when the agent does not answer in time',
      given: (w) => (w.requests.applyPacks = failing('TIMEOUT', 'agent.v1.c1.apply-packs timed out')),
      expected: { outcome: 'failed', reason: 'AddonsFailed', code: 'TRANSIENT', events: [] },
      installed: null,
    },
  ])('$name', async ({ status, given, expected, installed }) => {
    const w = world();
    given?.(w);
    const { result, status: after } = await w.step(addonsPhase, spec(), provisioned(status));
    expectResult(result, w, expected);
    expect(after.addonsProfileId).toBe(installed);
  });
});

describe('Deleting Cluster', () => {
  it.each<{
    name: string;
    status?: Partial<ClusterStatus>;
    given?: (w: World) => void;
    expected: Expected;
    deleted: number;
    networkDeleted: boolean;
  }>([
    {
      name: 'should delete every machine, noting MachineDeleted each, and wait for them to terminate',
      given: (w) => {
        w.cloud.add({ name: 'control-plane-aaaaa', pool: 'control-plane', zone: 'local-1a' });
        w.cloud.add({ name: 'workers-bbbbb', pool: 'workers', zone: 'local-1a' });
      },
      expected: {
        outcome: 'progress',
        reason: 'DeletingMachines',
        message: 'waiting for 2 machine(s) to terminate',
        events: ['MachineDeleted', 'MachineDeleted'],
      },
      deleted: 2,
      networkDeleted: false,
    },
    {
      name: 'should wait for terminating machines without deleting or announcing them again',
      given: (w) =>
        void w.cloud.add({ name: 'workers-bbbbb', pool: 'workers', zone: 'local-1a', state: 'terminating' }),
      expected: {
        outcome: 'progress',
        reason: 'DeletingMachines',
        message: 'waiting for 1 machine(s) to terminate',
        events: [],
      },
      deleted: 0,
      networkDeleted: false,
    },
    {
      name: 'should delete the network once no machine is left, noting NetworkDeleted',
      expected: {
        outcome: 'done',
        reason: 'Deleted',
        message: 'every machine and network resource is deleted',
        events: ['NetworkDeleted'],
      },
      deleted: 0,
      networkDeleted: true,
    },
    {
      name: 'should delete the network even when none is on record (one half made), and be done',
      status: { network: null },
      expected: { outcome: 'done', reason: 'Deleted', events: [] },
      deleted: 0,
      networkDeleted: true,
    },
    {
      name: "should fail with the cloud's code and words while machines still use the network",
      given: (w) => w.cloud.failNext('deleteNetwork', 'TRANSIENT', 'The vpc has dependencies and cannot be deleted.'),
      expected: {
        outcome: 'failed',
        reason: 'DeletionFailed',
        code: 'TRANSIENT',
        message: 'The vpc has dependencies and cannot be deleted.',
        events: [],
      },
      deleted: 0,
      networkDeleted: true,
    },
  ])('$name', async ({ status, given, expected, deleted, networkDeleted }) => {
    const w = world();
    given?.(w);
    const { result, status: after } = await w.step(
      deletionPhase,
      spec({ deletionRequested: true }),
      provisioned({ intents: [intent()], ...status }),
    );
    expectResult(result, w, expected);
    expect(w.cloud.callsOf('deleteMachine')).toBe(deleted);
    expect(w.cloud.callsOf('deleteNetwork')).toBe(networkDeleted ? 1 : 0);
    expect(after.intents).toEqual([]);
    if (expected.outcome === 'done') expect(after.network).toBeNull();
  });
});

describe('a reconcile step over milestones already reached', () => {
  const steady = (w: World) => {
    w.cloud.add({ name: 'control-plane-aaaaa', pool: 'control-plane', zone: 'local-1a' });
    w.cloud.add({ name: 'workers-aaaaa', pool: 'workers', zone: 'local-1a' });
    w.cloud.add({ name: 'workers-bbbbb', pool: 'workers', zone: 'local-1b' });
  };
  const conditionOf = (status: ClusterStatus, type: string) => status.conditions.find((c) => c.type === type);

  it('should keep a reached milestone when the cloud cannot be observed, noting the cloud error as a warning', async () => {
    const w = world();
    steady(w);
    const scope = w.scopeOf(spec(), provisioned());
    expect(await reconcileStep(w.deps, scope, () => new Date())).toEqual({ kind: 'converged' });
    const reached = structuredClone(scope.status);

    w.cloud.failNext('describeMachines', 'RATE_LIMITED', 'Request limit exceeded.');
    const again = w.scopeOf(spec(), reached);
    expect(await reconcileStep(w.deps, again, () => new Date())).toEqual({ kind: 'failed' });
    expect(conditionOf(again.status, 'Adding Control Plane Node')).toMatchObject({ status: 'TRUE', failed: false });
    expect(again.events).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        reason: 'ControlPlaneFailed',
        message: expect.stringMatching(/could not be checked \(RATE_LIMITED\): Request limit exceeded/),
      }),
    ]);
  });

  it('should fail a reached milestone that could not be checked three steps running, and reach it again once it can', async () => {
    const w = world();
    steady(w);
    const scope = w.scopeOf(spec(), provisioned());
    await reconcileStep(w.deps, scope, () => new Date());
    let status = structuredClone(scope.status);
    for (let attempt = 1; attempt <= 3; attempt++) {
      w.cloud.failNext(
        'describeMachines',
        'UNAUTHORIZED',
        'AWS was not able to validate the provided access credentials',
      );
      const step = w.scopeOf(spec(), status);
      expect(await reconcileStep(w.deps, step, () => new Date())).toEqual({ kind: 'failed' });
      status = structuredClone(step.status);
      expect(conditionOf(status, 'Adding Control Plane Node')).toMatchObject(
        attempt < 3
          ? { status: 'TRUE', failed: false }
          : { status: 'FALSE', failed: true, code: 'UNAUTHORIZED', message: expect.stringMatching(/validate/) },
      );
    }
    const recovered = w.scopeOf(spec(), status);
    expect(await reconcileStep(w.deps, recovered, () => new Date())).toEqual({ kind: 'converged' });
    expect(conditionOf(recovered.status, 'Adding Control Plane Node')).toMatchObject({ status: 'TRUE', failed: false });
  });

  it('should count only steps that failed a check: failures of another kind before do not make one fail the milestone', async () => {
    const w = world();
    steady(w);
    const scope = w.scopeOf(spec(), provisioned());
    await reconcileStep(w.deps, scope, () => new Date());
    // Many steps failed on something else (a quota), then one check fails.
    w.cloud.failNext('describeMachines', 'RATE_LIMITED', 'Request limit exceeded.');
    const step = w.scopeOf(spec(), { ...structuredClone(scope.status), failures: 5 });
    expect(await reconcileStep(w.deps, step, () => new Date())).toEqual({ kind: 'failed' });
    expect(conditionOf(step.status, 'Adding Control Plane Node')).toMatchObject({ status: 'TRUE', failed: false });
  });

  it('should unset a reached milestone when a change it found cannot be made, with the cloud error', async () => {
    const w = world();
    steady(w);
    const scope = w.scopeOf(spec(), provisioned());
    await reconcileStep(w.deps, scope, () => new Date());
    // A worker died: replacing it fails on the quota.
    w.cloud.machines.delete([...w.cloud.machines.values()].find((m) => m.name === 'workers-bbbbb')!.id);
    w.cloud.failNext(
      'createMachine',
      'QUOTA_EXCEEDED',
      'You have requested more vCPU capacity than your current vCPU limit.',
    );
    const again = w.scopeOf(spec(), structuredClone(scope.status));
    expect(await reconcileStep(w.deps, again, () => new Date())).toEqual({ kind: 'failed' });
    expect(conditionOf(again.status, 'Adding Worker Nodes')).toMatchObject({
      status: 'FALSE',
      failed: true,
      code: 'QUOTA_EXCEEDED',
    });
  });
});
