import { simulatedAgentParts, SimulatedSource, startAgent, type RunningAgent, type SimulatedNode } from '@fleetgraph/agent';
import type { Bus, Logger } from '@fleetgraph/kit';
import type { MachineEvents, MachineInfo } from './simulator.js';

/** Tags the platform puts on machines (see @fleetgraph/clouds TagKeys). */
const TAG = { cluster: 'fleetgraph:cluster', pool: 'fleetgraph:pool', machine: 'fleetgraph:machine', role: 'fleetgraph:role', tenant: 'fleetgraph:tenant' } as const;

interface ClusterAgent {
  agent: RunningAgent;
  nodes: Map<string, SimulatedNode>;
}

export interface SimulatedAgentsOptions {
  bus: Bus;
  log: Logger;
  /** The local cloud's speed factor: agents' simulated durations are divided by it too. */
  speed: number;
}

/**
 * Runs the simulated management agent of every cluster that has running machines in this
 * local cloud, as a real cluster runs its agent: it starts with the cluster's first running
 * machine and stops when its last machine is terminated. Its nodes are the cluster's
 * running machines.
 */
export class SimulatedAgents {
  private readonly clusters = new Map<string, ClusterAgent>();

  constructor(private readonly options: SimulatedAgentsOptions) {}

  /** Follows the cloud's machine changes; returns the function that stops following. */
  follow(events: MachineEvents): () => void {
    return events.on((change) => (change.type === 'running' ? this.up(change.machine, change.at) : this.down(change.machine)));
  }

  /** A machine that runs (also used at start for machines already running). */
  up(machine: MachineInfo, at: string): void {
    const clusterId = machine.tags[TAG.cluster];
    const tenantId = machine.tags[TAG.tenant];
    if (!clusterId || !tenantId) return; // not a cluster machine (an image builder, say)
    let cluster = this.clusters.get(clusterId);
    if (!cluster) {
      const nodes = new Map<string, SimulatedNode>();
      const source = new SimulatedSource({ speed: this.options.speed, nodes: () => [...nodes.values()] });
      const agent = startAgent({ bus: this.options.bus, log: this.options.log, clusterId, tenantId, source, parts: simulatedAgentParts });
      cluster = { agent, nodes };
      this.clusters.set(clusterId, cluster);
      this.options.log.info({ clusterId }, 'simulated agent started');
    }
    cluster.nodes.set(machine.id, {
      name: machine.tags[TAG.machine] ?? machine.id,
      role: machine.tags[TAG.role] === 'CONTROL_PLANE' ? 'CONTROL_PLANE' : 'WORKER',
      pool: machine.tags[TAG.pool] ?? '',
      zone: machine.zone,
      instanceType: machine.instanceType,
      vcpus: machine.vcpus,
      memoryMiB: machine.memoryMiB,
      privateIp: machine.privateIp ?? null,
      runningSince: at,
    });
  }

  down(machine: MachineInfo): void {
    const clusterId = machine.tags[TAG.cluster];
    const cluster = clusterId ? this.clusters.get(clusterId) : undefined;
    if (!cluster || !clusterId) return;
    cluster.nodes.delete(machine.id);
    if (cluster.nodes.size === 0) {
      this.clusters.delete(clusterId);
      void cluster.agent.stop();
      this.options.log.info({ clusterId }, 'simulated agent stopped');
    }
  }

  /** The clusters with a running agent. */
  get size(): number {
    return this.clusters.size;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.agent.stop()));
    this.clusters.clear();
  }
}
