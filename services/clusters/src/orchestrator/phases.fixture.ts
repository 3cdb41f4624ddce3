import {
  CloudError,
  type CloudErrorCode,
  type CloudProvider,
  type ClusterNetwork,
  type CreateMachineInput,
  type EnsureNetworkInput,
  type Machine,
} from '@fleetgraph/clouds';
import { BusError, createLogger, type BusErrorCode } from '@fleetgraph/kit';
import type { ImageMessage, ProfileMessage } from '@fleetgraph/schema';
import type { ClusterSpec, NodePool } from '../domain/cluster.js';
import type { MachineIntent } from '../domain/machines.js';
import { initialStatus, type ClusterStatus } from '../domain/status.js';
import type { EventNote, Phase, PhaseResult, ReconcileDeps, Scope } from './phases.js';
import type { ClusterRequests } from './ports.js';

/**
 * In-memory ports for the phase tests (phases.test.ts): a cloud that implements the clouds'
 * provider interface, stand-ins for the profiles and images services and the cluster's agent,
 * and builders of specs and statuses.
 */

export type Operation = 'ensureNetwork' | 'deleteNetwork' | 'createMachine' | 'describeMachines' | 'deleteMachine';

/** A cloud in memory: machines are records, made once per client token; failures are queued per operation. */
export class MemoryCloud implements CloudProvider {
  readonly type = 'LOCAL' as const;
  readonly machines = new Map<string, Machine>();
  readonly calls: { operation: Operation; input: unknown }[] = [];
  /** Machines the cloud made but does not list yet (its describe lags, as real clouds' do). */
  readonly unlisted = new Set<string>();
  /** What `createMachine` checks before making a machine: whether its intent is on record. */
  beforeCreate: (input: CreateMachineInput) => void = () => {};
  /** Why machines made from now on end before they run (EC2 answers the same dead instance for their token); none when unset. */
  launchFailure: string | undefined;
  private readonly byToken = new Map<string, Machine>();
  private readonly failures = new Map<Operation, CloudError[]>();
  private serial = 0;

  /** The next call of `operation` fails with the cloud's code and words. */
  failNext(operation: Operation, code: CloudErrorCode, message: string): void {
    this.failures.set(operation, [
      ...(this.failures.get(operation) ?? []),
      new CloudError({ code, message, cloud: 'LOCAL', operation }),
    ]);
  }

  add(machine: Partial<Machine> & Pick<Machine, 'name' | 'pool' | 'zone'>): Machine {
    const made: Machine = {
      id: `i-${++this.serial}`,
      clusterId: 'c1',
      role: machine.pool === 'control-plane' ? 'CONTROL_PLANE' : 'WORKER',
      region: 'local-1',
      instanceType: 'm5.large',
      imageId: 'ami-1',
      state: 'running',
      launchedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, this.serial)).toISOString(),
      tags: {},
      ...machine,
    };
    this.machines.set(made.id, made);
    return made;
  }

  private call(operation: Operation, input: unknown): void {
    this.calls.push({ operation, input });
    const failure = this.failures.get(operation)?.shift();
    if (failure) throw failure;
  }

  callsOf(operation: Operation): number {
    return this.calls.filter((c) => c.operation === operation).length;
  }

  async ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    this.call('ensureNetwork', input);
    return network(input.zones);
  }

  async deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    this.call('deleteNetwork', input);
  }

  async createMachine(input: CreateMachineInput): Promise<Machine> {
    this.call('createMachine', input);
    this.beforeCreate(input);
    let machine = this.byToken.get(input.clientToken);
    if (!machine) {
      machine = this.add({
        name: input.machineName,
        pool: input.pool,
        role: input.role,
        zone: input.zone,
        instanceType: input.instanceType,
        imageId: input.imageId,
        state: this.launchFailure ? 'terminated' : 'pending',
        ...(this.launchFailure ? { stateReason: this.launchFailure } : {}),
      });
      this.byToken.set(input.clientToken, machine);
    }
    return { ...machine };
  }

  async describeMachines(input: { clusterId: string }): Promise<Machine[]> {
    this.call('describeMachines', input);
    return [...this.machines.values()]
      .filter((m) => m.clusterId === input.clusterId && m.state !== 'terminated' && !this.unlisted.has(m.name))
      .map((m) => ({ ...m }));
  }

  async deleteMachine(_region: string, machineId: string): Promise<void> {
    this.call('deleteMachine', machineId);
    const machine = this.machines.get(machineId);
    if (machine) machine.state = 'terminating';
  }

  regions = unused;
  instanceTypes = unused;
  quota = unused;
  describeImage = unused;
  findImages = unused;
  copyImage = unused;
  createImageFromMachine = unused;
  deleteImage = unused;
  describeMachine = unused;
  close = async () => {};
}

async function unused(): Promise<never> {
  throw new Error('not used by the phases');
}

export const network = (zones: readonly string[], networkId = 'vpc-1'): ClusterNetwork => ({
  clusterId: 'c1',
  region: 'local-1',
  networkId,
  cidr: '10.0.0.0/16',
  controlPlane: {
    role: 'CONTROL_PLANE',
    securityGroupId: 'sg-cp',
    subnets: zones.map((zone, i) => ({ id: `subnet-cp-${i}`, zone, cidr: `10.0.${i}.0/24` })),
  },
  workers: {
    role: 'WORKER',
    securityGroupId: 'sg-w',
    subnets: zones.map((zone, i) => ({ id: `subnet-w-${i}`, zone, cidr: `10.0.${16 * (i + 1)}.0/20` })),
  },
});

export const profile = (layers: ProfileMessage['layers'] = defaultLayers): ProfileMessage => ({
  id: 'prof-1',
  tenantId: 't1',
  projectId: 'p1',
  name: 'base',
  version: '1.0.0',
  description: null,
  cloud: 'LOCAL',
  createdAt: '2026-01-01T00:00:00.000Z',
  layers,
});
export const defaultLayers: ProfileMessage['layers'] = [
  { type: 'OS', name: 'ubuntu', version: '22.04' },
  { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
  { type: 'CNI', name: 'calico', version: '3.28.0' },
  { type: 'ADDON', name: 'prometheus', version: '1.0.0' },
];

export const image = (overrides: Partial<ImageMessage> = {}): ImageMessage => ({
  id: 'img-1',
  tenantId: 'public',
  signature: 'sig',
  os: 'ubuntu',
  osVersion: '22.04',
  kubernetesVersion: '1.30',
  cloud: 'LOCAL',
  region: 'local-1',
  source: 'OUT_OF_BOX',
  status: 'READY',
  artifactId: 'ami-1',
  ansibleRoles: [],
  message: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  ...overrides,
});

export const pools = (workers: Partial<NodePool> = {}): NodePool[] => [
  { name: 'control-plane', role: 'CONTROL_PLANE', count: 1, instanceType: 'm5.large', availabilityZones: ['local-1a'] },
  {
    name: 'workers',
    role: 'WORKER',
    count: 2,
    instanceType: 'm5.large',
    availabilityZones: ['local-1a', 'local-1b'],
    ...workers,
  },
];

export const spec = (overrides: Partial<ClusterSpec> = {}): ClusterSpec => ({
  id: 'c1',
  tenantId: 't1',
  projectId: 'p1',
  name: 'demo',
  profileId: 'prof-1',
  cloud: { type: 'LOCAL', region: 'local-1', credentialRef: null },
  nodePools: pools(),
  generation: 1,
  deletionRequested: false,
  createdAt: '2026-01-01T00:00:00.000Z',
  ...overrides,
});

/** A status well into provisioning: image resolved, network made. */
export const provisioned = (overrides: Partial<ClusterStatus> = {}): ClusterStatus => ({
  ...initialStatus({ id: 'c1', tenantId: 't1' }, new Date('2026-01-01T00:00:00.000Z')),
  phase: 'PROVISIONING',
  imageId: 'ami-1',
  imageProfileId: 'prof-1',
  network: network(['local-1a', 'local-1b']),
  ...overrides,
});

export const intent = (overrides: Partial<MachineIntent> = {}): MachineIntent => ({
  token: 'token-1',
  name: 'workers-aaaaa',
  pool: 'workers',
  role: 'WORKER',
  zone: 'local-1a',
  instanceType: 'm5.large',
  imageId: 'ami-1',
  ...overrides,
});

export const failing = (code: BusErrorCode, message: string) => async (): Promise<never> => {
  throw new BusError(code, message);
};

/** The ports of one test, and what went through them. */
export function world() {
  const cloud = new MemoryCloud();
  const asked = { profile: 0, resolveImage: 0, applyPacks: 0, nodes: 0 };
  /** Machines whose node is not Ready yet (by name); every other running machine's is. */
  const notReady = new Set<string>();
  const requests: { [K in keyof ClusterRequests]: ClusterRequests[K] } = {
    profile: async () => profile(),
    resolveImage: async () => image(),
    applyPacks: async ({ packs }) => ({
      installed: packs.map((p) => ({ name: p.name, version: p.version })),
      failed: [],
    }),
    nodes: async () => ({
      observedAt: new Date().toISOString(),
      nodes: [...cloud.machines.values()]
        .filter((m) => m.state === 'running')
        .map((m) => ({ name: m.name, ready: !notReady.has(m.name) })),
    }),
  };
  const counted: ClusterRequests = {
    profile: (r) => {
      asked.profile++;
      return requests.profile(r);
    },
    resolveImage: (r) => {
      asked.resolveImage++;
      return requests.resolveImage(r);
    },
    applyPacks: (r) => {
      asked.applyPacks++;
      return requests.applyPacks(r);
    },
    nodes: (r) => {
      asked.nodes++;
      return requests.nodes(r);
    },
  };
  /** Events written with the status by `persist` (announced, whatever happens to the step), then those of the result. */
  const written: EventNote[] = [];
  const persisted: ClusterStatus[] = [];
  const deps: ReconcileDeps = {
    providers: { get: () => cloud },
    requests: counted,
    log: createLogger('phases-test', 'silent'),
    pollMs: 1000,
  };
  const scopeOf = (definition: ClusterSpec, status: ClusterStatus): Scope => {
    const scope: Scope = {
      spec: definition,
      status: structuredClone(status),
      events: [],
      persist: async () => {
        persisted.push(structuredClone(scope.status));
        written.push(...scope.events.splice(0));
      },
    };
    return scope;
  };
  /** Runs a phase as one step would, then carries its status over to the next step. */
  const step = async (
    phase: Phase,
    definition: ClusterSpec,
    status: ClusterStatus,
  ): Promise<{ result: PhaseResult; status: ClusterStatus }> => {
    const scope = scopeOf(definition, status);
    const result = await phase(deps, scope);
    written.push(...scope.events);
    return { result, status: scope.status };
  };
  const reasons = () => written.map((e) => e.reason);
  return { cloud, requests, asked, notReady, deps, written, persisted, step, reasons, scopeOf };
}

export type World = ReturnType<typeof world>;
