import {
  connectAgent,
  CredentialsError,
  parseCredentials,
  simulatedAgentParts,
  SimulatedSource,
  startAgent,
  type AgentConnection,
  type AgentConnectionOptions,
  type RunningAgent,
  type SimulatedNode,
} from '@fleetgraph/agent';
import type { Bus, Logger } from '@fleetgraph/kit/core';
import { CLUSTER_TAGS, clusterOf, readUserData, type AgentSecret } from './bootstrap.js';
import type { AgentCredentialsStore } from './local-cloud.js';
import type { MachineEvents, MachineInfo } from './simulator.js';

/**
 * A cluster's running agent: started from the agent manifest in its first node's user data, or
 * (before user data) from tags.
 */
interface ClusterAgent {
  from: 'user-data' | 'tags';
  stop(): Promise<void>;
}

interface Cluster {
  tenantId: string;
  /** Its running machines, as nodes. */
  nodes: Map<string, SimulatedNode>;
  /** Its simulated cluster (installed packs included), kept when its agent is replaced. */
  source: SimulatedSource;
  agent: ClusterAgent | null;
}

export interface SimulatedAgentsOptions {
  log: Logger;
  /** The local cloud's speed factor: agents' simulated durations are divided by it too. */
  speed: number;
  /**
   * The bus of agents started from tags alone: a cluster whose machines have no user data
   * (`LOCAL_CLOUD_REQUIRE_USER_DATA=false`) gets its agent on it. @default none: such a cluster
   * runs no agent
   */
  tagBus?: Bus;
  /** Where renewed credentials are kept, so that a restarted cloud's agents present them. @default in memory */
  credentials?: AgentCredentialsStore;
  /** Connects an agent started from user data. @default connectAgent: its own connection, credentials renewed */
  connect?: (options: AgentConnectionOptions) => Promise<AgentConnection>;
  /** The first wait before a failed connection is tried again, doubled each time up to 30 s. @default 1000 */
  retryBaseMs?: number;
}

function memoryStore(): AgentCredentialsStore {
  const kept = new Map<string, string>();
  return { get: (clusterId) => kept.get(clusterId), put: async (clusterId, creds) => void kept.set(clusterId, creds) };
}

/**
 * Runs the simulated management agent of every cluster that has running machines in this
 * local cloud, as a real cluster runs its agent: it starts once the machine that carries its
 * manifest (the first control-plane node: a `write_files` entry at
 * `BOOTSTRAP_PATHS.agentManifest`, holding the agent's Secret) runs, connects to the NATS its
 * Secret names with the credentials it holds (its own NATS user, renewed before they expire),
 * and stops when the cluster's last machine is terminated. Its nodes are the cluster's running
 * machines (tagged with its cluster id), whichever started first.
 *
 * Machines without user data (the platform before it wrote any) start their cluster's agent
 * from their tags, on `tagBus`, when there is one.
 */
export class SimulatedAgents {
  private readonly clusters = new Map<string, Cluster>();
  private readonly credentials: AgentCredentialsStore;

  constructor(private readonly options: SimulatedAgentsOptions) {
    this.credentials = options.credentials ?? memoryStore();
  }

  /** Follows the cloud's machine changes; returns the function that stops following. */
  follow(events: MachineEvents): () => void {
    return events.on((change) =>
      change.type === 'running' ? this.up(change.machine, change.at) : this.down(change.machine),
    );
  }

  /** A machine that runs (also used at start for machines already running). */
  up(machine: MachineInfo, at: string): void {
    const owner = clusterOf(machine.tags);
    if (!owner) return; // not a cluster machine (an image builder, say)
    const { clusterId, tenantId } = owner;
    let cluster = this.clusters.get(clusterId);
    if (!cluster) {
      const nodes = new Map<string, SimulatedNode>();
      cluster = {
        tenantId,
        nodes,
        source: new SimulatedSource({ speed: this.options.speed, nodes: () => [...nodes.values()] }),
        agent: null,
      };
      this.clusters.set(clusterId, cluster);
    }
    cluster.nodes.set(machine.id, {
      name: machine.tags[CLUSTER_TAGS.machine] ?? machine.id,
      role: machine.tags[CLUSTER_TAGS.role] === 'CONTROL_PLANE' ? 'CONTROL_PLANE' : 'WORKER',
      pool: machine.tags[CLUSTER_TAGS.pool] ?? '',
      zone: machine.zone,
      instanceType: machine.instanceType,
      vcpus: machine.vcpus,
      memoryMiB: machine.memoryMiB,
      privateIp: machine.privateIp ?? null,
      runningSince: at,
    });
    cluster.source.changed();

    const boot = readUserData(machine.userData);
    if (boot.ok && boot.agent) {
      if (cluster.agent?.from === 'user-data') return; // a control-plane node of a cluster whose agent runs already
      if (boot.agent.clusterId !== clusterId)
        this.options.log.warn(
          { clusterId, secretClusterId: boot.agent.clusterId, machineId: machine.id },
          "the agent's Secret names another cluster than the machine's tags",
        );
      this.replace(clusterId, cluster, this.fromUserData(clusterId, boot.agent));
    } else if (!boot.ok && boot.missing && !cluster.agent && this.options.tagBus) {
      this.replace(clusterId, cluster, this.fromTags(clusterId, this.options.tagBus));
    }
  }

  down(machine: MachineInfo): void {
    const clusterId = clusterOf(machine.tags)?.clusterId;
    const cluster = clusterId ? this.clusters.get(clusterId) : undefined;
    if (!cluster || !clusterId) return;
    cluster.nodes.delete(machine.id);
    cluster.source.changed();
    if (cluster.nodes.size === 0) {
      this.clusters.delete(clusterId);
      if (cluster.agent) {
        void cluster.agent.stop();
        this.options.log.info({ clusterId }, 'simulated agent stopped');
      }
    }
  }

  /** The clusters with a running machine. */
  get size(): number {
    return this.clusters.size;
  }

  /** How a cluster's agent was started, if it has one. */
  agentOf(clusterId: string): 'user-data' | 'tags' | null {
    return this.clusters.get(clusterId)?.agent?.from ?? null;
  }

  async stop(): Promise<void> {
    const running = [...this.clusters.values()].flatMap((c) => (c.agent ? [c.agent.stop()] : []));
    this.clusters.clear();
    await Promise.all(running);
  }

  private replace(
    clusterId: string,
    cluster: Cluster,
    next: (source: SimulatedSource, tenantId: string) => ClusterAgent,
  ): void {
    const previous = cluster.agent;
    cluster.agent = next(cluster.source, cluster.tenantId);
    if (previous) void previous.stop();
    this.options.log.info(
      { clusterId, from: cluster.agent.from, replaced: previous?.from ?? null },
      'simulated agent started',
    );
  }

  /** Today's agent of a cluster without user data: on the shared bus, named by the machine's tags. */
  private fromTags(clusterId: string, bus: Bus) {
    return (source: SimulatedSource, tenantId: string): ClusterAgent => {
      const agent = startAgent({ bus, log: this.options.log, clusterId, tenantId, source, parts: simulatedAgentParts });
      return { from: 'tags', stop: () => agent.stop() };
    };
  }

  /**
   * An agent as the manifest in the user data starts it: its own NATS connection, with the
   * Secret's URL and credentials (or the renewed ones kept for that key, when they last longer).
   * A connection that fails is tried again, with a backoff, until the agent is stopped.
   */
  private fromUserData(clusterId: string, secret: AgentSecret) {
    return (source: SimulatedSource): ClusterAgent => {
      const { log } = this.options;
      const connect = this.options.connect ?? connectAgent;
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      let failures = 0;
      let connection: AgentConnection | undefined;
      let agent: RunningAgent | undefined;
      let attempt: Promise<void> = Promise.resolve();

      const start = async () => {
        if (stopped) return;
        try {
          const opened = await connect({
            url: secret.natsUrl,
            clusterId: secret.clusterId,
            log,
            ...this.credentialsFor(clusterId, secret),
            renewal: { onRenewed: (creds) => this.credentials.put(clusterId, creds) },
          });
          if (stopped) return void (await opened.close());
          connection = opened;
          agent = startAgent({
            bus: opened.bus,
            log,
            clusterId: secret.clusterId,
            tenantId: secret.tenantId,
            source,
            parts: simulatedAgentParts,
          });
          failures = 0;
        } catch (error) {
          // Unusable credentials, or a cluster id no subject can carry: no retry makes them work.
          if (error instanceof CredentialsError || error instanceof TypeError) {
            log.error({ err: error, clusterId }, "the agent's Secret cannot be used; the agent does not run");
            return;
          }
          failures++;
          const retryMs = Math.min(30_000, (this.options.retryBaseMs ?? 1_000) * 2 ** Math.min(failures - 1, 10));
          log.warn(
            { err: error, clusterId, natsUrl: secret.natsUrl, retryMs },
            'simulated agent could not connect to NATS; retrying',
          );
          timer = setTimeout(() => (attempt = start()), retryMs);
          timer.unref();
        }
      };
      attempt = start();
      return {
        from: 'user-data',
        async stop() {
          stopped = true;
          clearTimeout(timer);
          await attempt;
          await agent?.stop();
          await connection?.close();
        },
      };
    };
  }

  /** The Secret's credentials, or the renewed ones kept for the same key when they expire later. */
  private credentialsFor(clusterId: string, secret: AgentSecret): { credentials?: string } {
    if (!secret.natsCredentials) return {};
    const kept = this.credentials.get(clusterId);
    if (!kept) return { credentials: secret.natsCredentials };
    try {
      const boot = parseCredentials(secret.natsCredentials);
      const renewed = parseCredentials(kept);
      const later = (renewed.expiresAt?.getTime() ?? Infinity) > (boot.expiresAt?.getTime() ?? Infinity);
      return { credentials: renewed.publicKey === boot.publicKey && later ? kept : secret.natsCredentials };
    } catch {
      return { credentials: secret.natsCredentials };
    }
  }
}
