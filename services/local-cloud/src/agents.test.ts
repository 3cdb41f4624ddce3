/**
 * The local cloud's simulated agents against a real nats-server with decentralised JWT
 * authentication: each cluster's agent starts from the Secret in its first control-plane node's
 * user data and connects as its own NATS user, renewing its JWT with a fake clusters service.
 */
import { parseCredentials } from '@fleetgraph/agent';
import { createLocalProvider, type CloudProvider, type CreateMachineInput } from '@fleetgraph/clouds';
import { eventually } from '@fleetgraph/clouds/testing';
import {
  BusError,
  confinedCredentials,
  createBus,
  createLogger,
  generateNatsKeys,
  serviceCredentials,
  type Bus,
  type NatsKeys,
} from '@fleetgraph/kit/core';
import { createSqliteStore, type Store } from '@fleetgraph/kit/store';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { agentPermissions, agentReport, renewAgentCredentials, type AgentReport } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedAgents } from './agents.js';
import { startLocalCloud, type LocalCloud } from './local-cloud.js';
import { FIRST_SEED_IMAGE, nodeUserData } from './testing.js';

const log = createLogger('agents-test', 'silent');
const decoder = new TextDecoder();

describe("the local cloud's simulated agents, each its own NATS user", () => {
  let keys: NatsKeys;
  let nats: NatsServer;
  let platform: Bus;
  let store: Store;
  let cloud: LocalCloud;
  let provider: CloudProvider;
  const running: SimulatedAgents[] = [];
  /** Each cluster's agent key, as the platform knows it. */
  const seeds = new Map<string, string>();
  const reportInterval = process.env.AGENT_REPORT_INTERVAL_MS;

  beforeAll(async () => {
    process.env.AGENT_REPORT_INTERVAL_MS = '200';
    keys = generateNatsKeys();
    nats = await startNatsServer({ security: keys });
    platform = await createBus({
      url: nats.url,
      name: 'clusters',
      log,
      credentials: await serviceCredentials(keys, 'clusters'),
    });
    platform.serve(renewAgentCredentials, async ({ clusterId, publicKey }) => {
      const seed = seeds.get(clusterId);
      if (!seed) throw new BusError('NOT_FOUND', `cluster ${clusterId} is not managed here`);
      const renewed = await confinedCredentials(
        keys,
        { name: `agent-${clusterId}`, permissions: agentPermissions(clusterId) },
        4,
        seed,
      );
      if (renewed.publicKey !== publicKey) throw new BusError('BAD_REQUEST', 'not the key of this cluster');
      return { jwt: renewed.jwt, expiresAt: renewed.expiresAt.toISOString() };
    });
    await platform.flush();
    store = createSqliteStore({ file: ':memory:' });
    cloud = await startLocalCloud({ store, speed: 1000 });
    provider = createLocalProvider({ endpoint: cloud.url, maxAttempts: 1 });
  });
  afterAll(async () => {
    if (reportInterval === undefined) delete process.env.AGENT_REPORT_INTERVAL_MS;
    else process.env.AGENT_REPORT_INTERVAL_MS = reportInterval;
    await Promise.all(running.map((a) => a.stop()));
    await provider?.close();
    await cloud?.close();
    await store?.close();
    await platform?.close();
    await nats?.stop();
  });

  /** Agents following the cloud, as the local cloud's main runs them. */
  function follow(options: { tagBus?: Bus } = {}): SimulatedAgents {
    const agents = new SimulatedAgents({
      log,
      speed: 1000,
      credentials: cloud.agentCredentials,
      retryBaseMs: 100,
      ...options,
    });
    running.push(agents);
    agents.follow(cloud.machineEvents);
    return agents;
  }

  /** Every report of a cluster from now on, as the platform receives them. */
  function collectReports(clusterId: string): AgentReport[] {
    const received: AgentReport[] = [];
    rawNats(platform).connection.subscribe(agentReport.subjectOf({ clusterId }), {
      callback: (_error, message) => received.push(JSON.parse(decoder.decode(message.data)) as AgentReport),
    });
    return received;
  }

  const clusterMachine = (
    clusterId: string,
    name: string,
    role: CreateMachineInput['role'],
    userData?: string,
  ): CreateMachineInput => ({
    clientToken: `${clusterId}-${name}`,
    clusterId,
    pool: role === 'CONTROL_PLANE' ? 'control-plane' : 'workers',
    machineName: name,
    role,
    region: 'local-1',
    zone: 'local-1a',
    instanceType: 't3.medium',
    imageId: FIRST_SEED_IMAGE.id,
    tags: { 'fleetgraph:tenant': 'tenant-1' },
    ...(userData ? { userData } : {}),
  });

  const nodesOf = (report: AgentReport | undefined) => (report?.nodes ?? []).map((n) => n.name).sort();

  it("should start a cluster's agent from the Secret in its first node's user data, with its nodes, and renew its credentials", async () => {
    const clusterId = 'cls-userdata';
    const boot = await confinedCredentials(
      keys,
      { name: `agent-${clusterId}`, permissions: agentPermissions(clusterId) },
      3,
    );
    seeds.set(clusterId, boot.seed);
    const reports = collectReports(clusterId);
    await platform.flush();
    const agents = follow();

    const agent = { natsUrl: nats.url, clusterId, tenantId: 'tenant-1', natsCredentials: boot.creds };
    await provider.createMachine(
      clusterMachine(clusterId, 'cp-1', 'CONTROL_PLANE', nodeUserData({ kind: 'init', nodeName: 'cp-1', agent })),
    );
    await provider.createMachine(
      clusterMachine(clusterId, 'w-1', 'WORKER', nodeUserData({ kind: 'join', nodeName: 'w-1' })),
    );
    await eventually(async () => nodesOf(reports.at(-1)).length === 2, 10_000, 'a report with both nodes');
    expect(nodesOf(reports.at(-1))).toEqual(['cp-1', 'w-1']);
    expect(reports.at(-1)).toMatchObject({ clusterId, tenantId: 'tenant-1', source: 'simulated' });
    expect(agents.agentOf(clusterId)).toBe('user-data');

    // Past the boot JWT's expiry it still reports: it renewed, and kept the renewed credentials.
    await eventually(
      async () => reports.filter((r) => Date.parse(r.sentAt) > boot.expiresAt.getTime() + 500).length >= 2,
      10_000,
      'reports after the boot JWT expired',
    );
    const kept = parseCredentials(cloud.agentCredentials.get(clusterId)!);
    expect(kept.publicKey).toBe(boot.publicKey);
    expect(kept.expiresAt!.getTime()).toBeGreaterThan(boot.expiresAt.getTime());

    // A restarted cloud's agent presents the renewed credentials: the boot ones expired.
    await agents.stop();
    const restarted = new SimulatedAgents({ log, speed: 1000, credentials: cloud.agentCredentials, retryBaseMs: 100 });
    running.push(restarted);
    const since = Date.now();
    for (const machine of cloud.runningMachines()) restarted.up(machine, new Date().toISOString());
    await eventually(
      async () => reports.some((r) => Date.parse(r.sentAt) > since && r.seq === 0),
      10_000,
      'the restarted agent reporting',
    );
  });

  it('should keep starting agents from tags for clusters whose machines have no user data, on the shared bus', async () => {
    const clusterId = 'cls-tags';
    const reports = collectReports(clusterId);
    await platform.flush();
    const tagBus = await createBus({
      url: nats.url,
      name: 'local-cloud-agents',
      log,
      credentials: await serviceCredentials(keys, 'local-cloud'),
    });
    const agents = follow({ tagBus });
    try {
      await provider.createMachine(clusterMachine(clusterId, 'cp-1', 'CONTROL_PLANE'));
      await eventually(async () => nodesOf(reports.at(-1)).length === 1, 10_000, 'a report from the tag-started agent');
      expect(agents.agentOf(clusterId)).toBe('tags');
    } finally {
      await agents.stop();
      await tagBus.close();
    }
  });
});
