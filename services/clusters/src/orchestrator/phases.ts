import { randomUUID } from 'node:crypto';
import { BusError, type Logger } from '@fleetgraph/kit';
import { isCloudError, type Machine } from '@fleetgraph/clouds';
import type { NodeRole, ProfileMessage } from '@fleetgraph/schema';
import type { ClusterSpec } from '../domain/cluster.js';
import { isBroken, planPool, wantedIntents, type MachineIntent, type ObservedMachine } from '../domain/machines.js';
import type { ClusterStatus } from '../domain/status.js';
import type { CloudProviders, ClusterRequests, NodeBootstrapper } from './ports.js';

/** What the phases work with: ports only. */
export interface ReconcileDeps {
  providers: CloudProviders;
  /** The profiles and images services and the cluster's agent. */
  requests: ClusterRequests;
  /** Machines' user data (bootstrap/); absent, machines get none (tests of the phases alone). */
  bootstrap?: NodeBootstrapper;
  log: Logger;
  /** How long to wait before looking again at something in progress. */
  pollMs: number;
}

/** A note for the cluster's event stream. */
export interface EventNote {
  severity: 'NORMAL' | 'WARNING';
  reason: string;
  message: string;
  object: string | null;
}

/** What one reconcile step works on: the definition, a draft of the status, what it observed. */
export interface Scope {
  spec: ClusterSpec;
  status: ClusterStatus;
  events: EventNote[];
  /** Writes the status draft now (intents must be stored before the cloud is called). */
  persist(): Promise<void>;
  profile?: ProfileMessage;
  machines?: Machine[];
}

export type PhaseResult =
  | { outcome: 'done'; reason: string; message: string }
  | { outcome: 'progress'; reason: string; message: string; requeueMs?: number }
  /** `check`: it failed while observing, before it found anything to change. */
  | { outcome: 'failed'; reason: string; message: string; code: string; check?: boolean };

export type Phase = (deps: ReconcileDeps, scope: Scope) => Promise<PhaseResult>;

const done = (reason: string, message: string): PhaseResult => ({ outcome: 'done', reason, message });
const progress = (reason: string, message: string, requeueMs?: number): PhaseResult => ({
  outcome: 'progress',
  reason,
  message,
  requeueMs,
});

/** A failure as a phase result: cloud errors keep the cloud's words and code; bus errors are transient. */
export function failure(error: unknown, reason: string): Extract<PhaseResult, { outcome: 'failed' }> {
  if (isCloudError(error)) return { outcome: 'failed', reason, message: error.message, code: error.code };
  if (error instanceof BusError) {
    const code = error.code === 'BAD_REQUEST' || error.code === 'NOT_FOUND' ? 'INVALID_CONFIGURATION' : 'TRANSIENT';
    return { outcome: 'failed', reason, message: error.message, code };
  }
  return { outcome: 'failed', reason, message: (error as Error)?.message ?? String(error), code: 'TRANSIENT' };
}

async function loadProfile(deps: ReconcileDeps, scope: Scope): Promise<ProfileMessage> {
  scope.profile ??= await deps.requests.profile({
    tenantId: scope.spec.tenantId,
    projectId: scope.spec.projectId,
    id: scope.spec.profileId,
  });
  return scope.profile;
}

async function observeMachines(deps: ReconcileDeps, scope: Scope): Promise<Machine[]> {
  const { spec } = scope;
  scope.machines ??= await deps.providers
    .get(spec.cloud.type, spec.cloud.region)
    .describeMachines({ clusterId: spec.id, region: spec.cloud.region });
  return scope.machines;
}

/** Customizing Image: the images service resolves (copies, builds) the profile's OS image. */
export const imagePhase: Phase = async (deps, scope) => {
  const { spec, status } = scope;
  if (status.imageId && status.imageProfileId === spec.profileId)
    return done('ImageReady', `image ${status.imageId} is ready`);
  try {
    const profile = await loadProfile(deps, scope);
    const os = profile.layers.find((l) => l.type === 'OS');
    const kubernetes = profile.layers.find((l) => l.type === 'KUBERNETES');
    if (!os || !kubernetes)
      return {
        outcome: 'failed',
        reason: 'InvalidProfile',
        message: 'the profile has no OS or Kubernetes layer',
        code: 'INVALID_CONFIGURATION',
      };
    const image = await deps.requests.resolveImage({
      tenantId: spec.tenantId,
      projectId: spec.projectId,
      clusterId: spec.id,
      cloud: spec.cloud.type,
      region: spec.cloud.region,
      credentialRef: spec.cloud.credentialRef,
      os,
      kubernetes,
    });
    if (image.status === 'READY' && image.artifactId) {
      status.imageId = image.artifactId;
      // Catalogue and customised images have Kubernetes; a user's own image has it when the profile says so.
      status.imageHasKubernetes = image.source !== 'BRING_YOUR_OWN' || os.skipK8sInstall === true;
      status.imageProfileId = spec.profileId;
      scope.events.push({
        severity: 'NORMAL',
        reason: 'ImageReady',
        message:
          `image ${image.artifactId} ` +
          `(${image.os} ${image.osVersion}, Kubernetes ${image.kubernetesVersion}) is ready`,
        object: `image/${image.id}`,
      });
      return done('ImageReady', `image ${image.artifactId} is ready`);
    }
    if (image.status === 'FAILED')
      return {
        outcome: 'failed',
        reason: 'ImageFailed',
        message: image.message ?? 'the image build failed',
        code: 'INVALID_CONFIGURATION',
      };
    return progress(
      `Image${image.status[0]}${image.status.slice(1).toLowerCase()}`,
      image.message ?? `image ${image.id} is ${image.status.toLowerCase()}`,
    );
  } catch (error) {
    return failure(error, 'ImageUnavailable');
  }
};

/** Creating Infrastructure: the cluster's network and security groups, over every zone its pools use. */
export const infrastructurePhase: Phase = async (deps, scope) => {
  const { spec, status } = scope;
  const zones = [...new Set(spec.nodePools.flatMap((p) => p.availabilityZones))].sort();
  const covered =
    status.network && zones.every((z) => status.network!.workers.subnets.some((s) => s.zone === z || s.zone === null));
  if (covered) return done('InfrastructureReady', `network ${status.network!.networkId} is ready`);
  try {
    const provider = deps.providers.get(spec.cloud.type, spec.cloud.region);
    status.network = await provider.ensureNetwork({ clusterId: spec.id, region: spec.cloud.region, zones });
    scope.events.push({
      severity: 'NORMAL',
      reason: 'NetworkReady',
      message:
        `network ${status.network.networkId} ` + `with control-plane and worker security groups in ${zones.join(', ')}`,
      object: `network/${status.network.networkId}`,
    });
    return done('InfrastructureReady', `network ${status.network.networkId} is ready`);
  } catch (error) {
    return failure(error, 'InfrastructureFailed');
  }
};

const SUFFIX = 'abcdefghijklmnopqrstuvwxyz0123456789';
const suffix = () => Array.from({ length: 5 }, () => SUFFIX[Math.floor(Math.random() * SUFFIX.length)]).join('');

/** Adding Control Plane Node / Adding Worker Nodes: machines of the role's pools, rolled to the definition. */
export const machinesPhase =
  (role: NodeRole): Phase =>
  async (deps, scope) => {
    const { spec, status } = scope;
    const pools = spec.nodePools.filter((p) => p.role === role);
    const what = role === 'CONTROL_PLANE' ? 'control-plane' : 'worker';
    const failed = role === 'CONTROL_PLANE' ? 'ControlPlaneFailed' : 'WorkersFailed';
    try {
      const provider = deps.providers.get(spec.cloud.type, spec.cloud.region);
      let machines: Machine[];
      try {
        machines = await observeMachines(deps, scope);
      } catch (error) {
        return { ...failure(error, failed), check: true };
      }
      const observed: ObservedMachine[] = machines.map((m) => ({
        id: m.id,
        name: m.name,
        pool: m.pool,
        zone: m.zone,
        instanceType: m.instanceType,
        imageId: m.imageId,
        state: m.state,
        ...(m.stateReason ? { stateReason: m.stateReason } : {}),
        launchedAt: m.launchedAt,
      }));
      const byName = new Map(machines.map((m) => [m.name, m]));
      const poolNames = new Set(spec.nodePools.map((p) => p.name));
      // Every node but the first joins through the first control-plane node's address.
      const init = status.initMachine ? byName.get(status.initMachine) : undefined;
      if (!status.apiEndpoint && init?.privateIp) status.apiEndpoint = `${init.privateIp}:6443`;
      // Intents whose machine is visible are fulfilled (announced now if the call that made it
      // never returned); those of removed pools are dropped (a machine made for one anyway is
      // tagged with its pool and removed below).
      for (const intent of status.intents) {
        const machine = byName.get(intent.name);
        if (machine && !intent.announced) announceCreated(scope, intent, machine.id);
      }
      status.intents = status.intents.filter((i) => !byName.has(i.name) && poolNames.has(i.pool));
      // Intents made for an earlier definition that it no longer wants are dropped (wantedIntents).
      const wanted = wantedIntents(
        spec.nodePools,
        status.imageId!,
        observed,
        status.intents,
        spec.generation,
        status.initMachine ?? undefined,
      );
      for (const dropped of status.intents.filter((i) => !wanted.includes(i))) forgetIntent(status, dropped);

      // The first control-plane node is the API endpoint (no load balancer yet): never replaced.
      const keep = role === 'CONTROL_PLANE' ? (status.initMachine ?? undefined) : undefined;
      const planAll = (ready?: (name: string) => boolean) =>
        pools.map((pool) => ({ pool, plan: planPool(pool, status.imageId!, observed, status.intents, keep, ready) }));
      let plans = planAll();
      // An outdated machine goes only once its replacements' nodes are Ready (the health service
      // knows from the agent's reports); unknown readiness holds the removal back.
      // Only once the add-ons (the CNI among them) are installed: before, no node is Ready.
      if (status.addonsProfileId !== null && plans.some(({ plan }) => plan.kind === 'act' && plan.gated))
        plans = planAll(await nodeReadiness(deps, scope));
      const created: MachineIntent[] = [];
      for (const { pool, plan } of plans) {
        if (plan.kind !== 'act') continue;
        for (const { zone } of plan.create) {
          created.push({
            token: randomUUID(),
            name: `${pool.name}-${suffix()}`,
            pool: pool.name,
            role,
            zone,
            instanceType: pool.instanceType,
            imageId: status.imageId!,
            generation: spec.generation,
          });
        }
      }
      const waitingForEndpoint =
        created.length > 0 && deps.bootstrap !== undefined && !(await bootstrapIntents(deps, scope, created));
      if (waitingForEndpoint) created.length = 0;
      if (created.length) {
        status.intents.push(...created);
        await scope.persist();
      }
      // Every open intent of the role is (re)sent: the client token makes a repeat harmless. Each
      // on its own: one the cloud refuses does not hold the others back.
      let refused: unknown;
      const stillborn: { intent: MachineIntent; machine: Machine }[] = [];
      for (const intent of status.intents.filter((i) => i.role === role)) {
        let machine: Machine;
        try {
          machine = await provider.createMachine({
            clientToken: intent.token,
            clusterId: spec.id,
            pool: intent.pool,
            machineName: intent.name,
            role,
            region: spec.cloud.region,
            zone: intent.zone,
            instanceType: intent.instanceType,
            imageId: intent.imageId,
            network: status.network ?? undefined,
            tags: { 'fleetgraph:tenant': spec.tenantId },
            ...(intent.userData && deps.bootstrap ? { userData: deps.bootstrap.open(intent.userData, spec.id) } : {}),
          });
        } catch (error) {
          refused ??= error;
          continue;
        }
        // Ended before it ever ran (the cloud could not start it): its client token would answer
        // the dead machine for ever, so the intent goes, and the plan makes a new one.
        if (machine.state === 'terminated' || machine.state === 'terminating') {
          forgetIntent(status, intent);
          stillborn.push({ intent, machine });
          scope.events.push({
            severity: 'WARNING',
            reason: 'MachineLaunchFailed',
            message: `${what} machine ${machine.id} (${intent.instanceType}) in ${intent.zone} ended before it ran: ${machine.stateReason ?? 'the cloud gave no reason'}`,
            object: `machine/${intent.name}`,
          });
          continue;
        }
        // Whichever attempt's call returns first announces it: exactly one event per machine.
        if (!intent.announced) announceCreated(scope, intent, machine.id);
      }
      // Machines of pools that no longer exist go too.
      const orphans = role === 'WORKER' ? observed.filter((m) => !poolNames.has(m.pool)) : [];
      const removals = [...plans.flatMap(({ plan }) => (plan.kind === 'act' ? plan.delete : [])), ...orphans];
      await removeMachines(
        deps,
        scope,
        removals,
        (m) => `deleting ${what} machine ${m.id} (${m.instanceType}) in ${m.zone}`,
      );

      if (refused) return failure(refused, failed);
      // A machine that died or would not boot is a failure of the step, in the cloud's words, so
      // that its replacement waits out the backoff rather than failing again at once.
      const dead = [
        ...stillborn.map(({ intent, machine }) => ({
          ...intent,
          id: machine.id,
          state: machine.state,
          stateReason: machine.stateReason,
        })),
        ...removals.filter(isBroken),
      ];
      if (dead.length > 0) {
        const first = dead[0]!;
        return {
          outcome: 'failed',
          reason: failed,
          code: 'TRANSIENT',
          message:
            `${what} machine ${first.id} (${first.instanceType}) in ${first.zone} is ${first.state}: ` +
            `${first.stateReason ?? 'the cloud gave no reason'}; it is replaced`,
        };
      }

      const waiting = plans.filter(({ plan }) => plan.kind !== 'done');
      if (waiting.length === 0 && !status.intents.some((i) => i.role === role) && removals.length === 0) {
        const total = pools.reduce((n, p) => n + p.count, 0);
        const kept = keep ? observed.find((m) => m.name === keep) : undefined;
        const pool = kept && pools.find((p) => p.name === kept.pool);
        const stale =
          kept && pool && (kept.instanceType !== pool.instanceType || kept.imageId !== status.imageId)
            ? `; the first (${kept.id}, the API endpoint) keeps its ${kept.instanceType} and image ${kept.imageId}: replacing it needs a load balancer, which is not made yet`
            : '';
        return done(
          `${role === 'CONTROL_PLANE' ? 'ControlPlane' : 'Workers'}Ready`,
          `${total} ${what} node(s) running${stale}`,
        );
      }
      const reasons = waiting.map(({ plan }) => (plan.kind === 'done' ? '' : plan.reason)).filter(Boolean);
      if (waitingForEndpoint) reasons.unshift("waiting for the first control-plane node's address");
      return progress(
        role === 'CONTROL_PLANE' ? 'AddingControlPlane' : 'AddingWorkers',
        reasons.join('; ') || `waiting for ${what} machines`,
      );
    } catch (error) {
      return failure(error, failed);
    }
  };

/** Which nodes of the cluster are Ready, as its agent last reported; none when that cannot be told. */
async function nodeReadiness(deps: ReconcileDeps, scope: Scope): Promise<(name: string) => boolean> {
  try {
    const { nodes } = await deps.requests.nodes({ clusterId: scope.spec.id });
    const ready = new Set(nodes.filter((n) => n.ready).map((n) => n.name));
    return (name) => ready.has(name);
  } catch (error) {
    deps.log.warn({ err: error, clusterId: scope.spec.id }, 'node readiness unknown: outdated machines are kept');
    return () => false;
  }
}

/**
 * Gives new intents their user data. The cluster's first control-plane node runs kubeadm init
 * (alone: the others need its address); every other node joins once that address is known.
 * @returns false when the intents must wait for the first node's address (nothing is changed)
 */
async function bootstrapIntents(deps: ReconcileDeps, scope: Scope, created: MachineIntent[]): Promise<boolean> {
  const { spec, status } = scope;
  const bootstrap = deps.bootstrap!;
  const first = !status.initMachine;
  if (!first && !status.apiEndpoint) return false;
  if (first) {
    if (created[0]!.role !== 'CONTROL_PLANE') return false;
    created.splice(1);
  }
  const profile = await loadProfile(deps, scope);
  const kubernetesVersion = profile.layers.find((l) => l.type === 'KUBERNETES')?.version;
  if (!kubernetesVersion) throw new TypeError('the profile has no Kubernetes layer');
  const now = new Date();
  if (!status.bootstrapToken || status.bootstrapToken.expiresAt <= now.toISOString()) {
    const { sealed, expiresAt } = bootstrap.newBootstrapToken(spec.id, now);
    status.bootstrapToken = { sealed, expiresAt };
  }
  const token = bootstrap.open(status.bootstrapToken.sealed, spec.id);
  for (const [i, intent] of created.entries()) {
    const kind = first && i === 0 ? 'init' : intent.role === 'CONTROL_PLANE' ? 'join-control-plane' : 'join-worker';
    intent.userData = await bootstrap.userData({
      spec,
      machineName: intent.name,
      pool: intent.pool,
      kind,
      kubernetesVersion,
      kubernetesPreinstalled: status.imageHasKubernetes ?? true,
      apiEndpoint: kind === 'init' ? null : status.apiEndpoint!,
      bootstrapToken: token,
    });
  }
  if (first) {
    status.initMachine = created[0]!.name;
    status.apiEndpoint = null;
  }
  return true;
}

/** Drops an open intent; the first control-plane node's drops who runs kubeadm init with it. */
function forgetIntent(status: ClusterStatus, intent: MachineIntent): void {
  status.intents = status.intents.filter((i) => i !== intent);
  if (status.initMachine === intent.name) {
    status.initMachine = null;
    status.apiEndpoint = null;
  }
}

function announceCreated(scope: Scope, intent: MachineIntent, machineId: string): void {
  const what = intent.role === 'CONTROL_PLANE' ? 'control-plane' : 'worker';
  intent.announced = true;
  scope.events.push({
    severity: 'NORMAL',
    reason: 'MachineCreated',
    message: `created ${what} machine ${machineId} (${intent.instanceType}) in ${intent.zone}`,
    object: `machine/${intent.name}`,
  });
}

/**
 * Deletes machines, each announced by one MachineDeleted event: the events of those not
 * announced yet are stored with the status before the cloud is asked, so that a retried
 * attempt (a failed call, a crashed or replaced replica) does not announce a machine twice.
 */
async function removeMachines(
  deps: ReconcileDeps,
  scope: Scope,
  removals: readonly Pick<ObservedMachine, 'id' | 'name' | 'instanceType' | 'zone'>[],
  describe: (m: Pick<ObservedMachine, 'id' | 'instanceType' | 'zone'>) => string,
): Promise<void> {
  const { spec, status } = scope;
  const observed = new Set((scope.machines ?? []).map((m) => m.id));
  const announced = new Set((status.announcedRemovals ?? []).filter((id) => observed.has(id)));
  const fresh = removals.filter((m) => !announced.has(m.id));
  for (const machine of fresh) {
    announced.add(machine.id);
    scope.events.push({
      severity: 'NORMAL',
      reason: 'MachineDeleted',
      message: describe(machine),
      object: `machine/${machine.name}`,
    });
  }
  status.announcedRemovals = [...announced];
  if (fresh.length > 0) await scope.persist();
  const provider = deps.providers.get(spec.cloud.type, spec.cloud.region);
  for (const machine of removals) await provider.deleteMachine(spec.cloud.region, machine.id);
}

/** Installing Add-ons: the cluster's agent installs the profile's CNI, CSI and add-on packs. */
export const addonsPhase: Phase = async (deps, scope) => {
  const { spec, status } = scope;
  if (status.addonsProfileId === spec.profileId)
    return done('AddonsInstalled', 'every pack of the profile is installed');
  try {
    const profile = await loadProfile(deps, scope);
    const packs = profile.layers.filter((l) => l.type === 'CNI' || l.type === 'CSI' || l.type === 'ADDON');
    const reply = await deps.requests.applyPacks({
      clusterId: spec.id,
      tenantId: spec.tenantId,
      generation: spec.generation,
      packs,
    });
    if (reply.failed.length) {
      const first = reply.failed[0]!;
      return {
        outcome: 'failed',
        reason: 'AddonFailed',
        message: `${first.name} ${first.version}: ${first.message}`,
        code: 'TRANSIENT',
      };
    }
    status.addonsProfileId = spec.profileId;
    for (const pack of reply.installed)
      scope.events.push({
        severity: 'NORMAL',
        reason: 'AddonInstalled',
        message: `installed ${pack.name} ${pack.version}`,
        object: `pack/${pack.name}`,
      });
    // The same words as when they were installed before: the condition does not change on the next look.
    return done('AddonsInstalled', 'every pack of the profile is installed');
  } catch (error) {
    if (error instanceof BusError && error.code === 'NO_RESPONDERS')
      return progress('WaitingForAgent', "waiting for the cluster's agent to connect");
    return failure(error, 'AddonsFailed');
  }
};

/** Deleting Cluster: every machine, then the network (whatever of it exists). */
export const deletionPhase: Phase = async (deps, scope) => {
  const { spec, status } = scope;
  try {
    const provider = deps.providers.get(spec.cloud.type, spec.cloud.region);
    const machines = await observeMachines(deps, scope);
    status.intents = [];
    const alive = machines.filter((m) => m.state !== 'terminating' && m.state !== 'terminated');
    await removeMachines(deps, scope, alive, (m) => `deleting machine ${m.id}`);
    if (machines.length > 0)
      return progress('DeletingMachines', `waiting for ${machines.length} machine(s) to terminate`);
    // Always: a network half made (its creation failed midway, or the step that made it never
    // saved) is on no record, and the cloud finds its parts by the cluster's tags and names.
    await provider.deleteNetwork({ clusterId: spec.id, region: spec.cloud.region });
    if (status.network) {
      scope.events.push({
        severity: 'NORMAL',
        reason: 'NetworkDeleted',
        message: `deleted network ${status.network.networkId}`,
        object: `network/${status.network.networkId}`,
      });
      status.network = null;
    }
    return done('Deleted', 'every machine and network resource is deleted');
  } catch (error) {
    return failure(error, 'DeletionFailed');
  }
};
