import { BusError, createBus, createLogger, type Bus } from '@fleetgraph/kit/core';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { agentReport, agentReportSchema, simulateAgent, type AgentReport } from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from './agent.js';
import type { ObservationSource } from './observe/observation.js';
import { reportsPart } from './reports.js';
import { SimulatedSource, type SimulatedNode } from './simulated.js';

const log = createLogger('reports-test', 'silent');
const decoder = new TextDecoder();

const node = (name: string, role: SimulatedNode['role'] = 'WORKER'): SimulatedNode => ({
  name,
  role,
  pool: '',
  zone: 'local-1a',
  instanceType: 't3.medium',
  vcpus: 2,
  memoryMiB: 4096,
  privateIp: '10.0.0.5',
  runningSince: '2025-01-01T00:00:00.000Z',
});

describe('the reports part against a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;
  const agents: RunningAgent[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await createBus({
      url: nats.url,
      name: 'agent-test',
      log,
      credentials: await nats.credentials('agent-test'),
    });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await bus?.close();
    await nats?.stop();
  });

  /** The next `count` reports of a cluster, parsed (not validated: the test checks them). */
  async function reports(clusterId: string, count: number, timeoutMs = 5_000): Promise<AgentReport[]> {
    const received: AgentReport[] = [];
    const subscription = rawNats(bus).connection.subscribe(agentReport.subjectOf({ clusterId }), {
      max: count,
      timeout: timeoutMs,
    });
    for await (const message of subscription) received.push(JSON.parse(decoder.decode(message.data)) as AgentReport);
    return received;
  }

  it('should send a valid report with the tenant, nodes and services every interval', async () => {
    const waiting = reports('cls-a', 3);
    const source = new SimulatedSource({ speed: 1000, nodes: () => [node('cp-1', 'CONTROL_PLANE'), node('w-1')] });
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-a',
        tenantId: 'tenant-a',
        source,
        parts: [reportsPart({ intervalMs: 150 })],
      }),
    );
    const received = await waiting;
    for (const report of received) expect(agentReportSchema.safeParse(report).success).toBe(true);
    expect(received.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(received[0]).toMatchObject({
      schemaVersion: 1,
      clusterId: 'cls-a',
      tenantId: 'tenant-a',
      source: 'simulated',
      intervalMs: 150,
      services: [],
      problems: [],
    });
    expect(received[0]!.nodes!.map((n) => [n.name, n.pool])).toEqual([
      ['cp-1', 'control-plane'],
      ['w-1', 'workers'],
    ]);
    const gap = Date.parse(received[2]!.sentAt) - Date.parse(received[1]!.sentAt);
    expect(gap).toBeGreaterThanOrEqual(100);
  });

  it('should play faults asked for over NATS, for its own tenant only', async () => {
    const source = new SimulatedSource({ speed: 1000, nodes: () => [node('w-1'), node('w-2')] });
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-b',
        tenantId: 'tenant-b',
        source,
        parts: [reportsPart({ intervalMs: 100 })],
      }),
    );
    await reports('cls-b', 1);

    await expect(
      bus.request(simulateAgent, { clusterId: 'cls-b', tenantId: 'tenant-x', faults: { silent: true } }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const answer = await bus.request(simulateAgent, {
      clusterId: 'cls-b',
      tenantId: 'tenant-b',
      faults: { memoryPressure: ['w-2'], randomFaults: false },
    });
    expect(answer.faults).toMatchObject({ memoryPressure: ['w-2'], silent: false, randomFaults: false });
    const [pressured] = await reports('cls-b', 1);
    expect(
      pressured!.nodes!.find((n) => n.name === 'w-2')!.conditions.find((c) => c.type === 'MemoryPressure')!.status,
    ).toBe('TRUE');

    await bus.request(simulateAgent, { clusterId: 'cls-b', tenantId: 'tenant-b', faults: { silent: true } });
    await expect(reports('cls-b', 1, 600)).rejects.toThrow(/timeout/i);
    await bus.request(simulateAgent, {
      clusterId: 'cls-b',
      tenantId: 'tenant-b',
      reset: true,
      faults: { randomFaults: false },
    });
    const [back] = await reports('cls-b', 1);
    expect(back!.nodes!.every((n) => n.conditions.find((c) => c.type === 'MemoryPressure')!.status === 'FALSE')).toBe(
      true,
    );
  });

  it('should send compact reports while only numbers change, a full one on any other change (twice) and every few', async () => {
    const source = new SimulatedSource({ speed: 1000, nodes: () => [node('w-1'), node('w-2')] });
    const waiting = reports('cls-e', 9);
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-e',
        tenantId: 'tenant-e',
        source,
        parts: [reportsPart({ intervalMs: 100, fullEvery: 4 })],
      }),
    );
    const kinds: string[] = [];
    // After the 4th report, w-2 comes under memory pressure: a change.
    const sub = rawNats(bus).connection.subscribe(agentReport.subjectOf({ clusterId: 'cls-e' }), { max: 4 });
    void (async () => {
      for await (const _ of sub);
      await bus.request(simulateAgent, {
        clusterId: 'cls-e',
        tenantId: 'tenant-e',
        faults: { memoryPressure: ['w-2'] },
      });
    })();
    for (const report of await waiting) {
      expect(agentReportSchema.safeParse(report).error?.issues).toBeUndefined();
      kinds.push(report.nodes ? 'full' : report.usage ? 'compact' : 'bare');
      if (report.usage) expect(report.usage.map((u) => u.name)).toEqual(['w-1', 'w-2']);
    }
    expect(kinds.slice(0, 4)).toEqual(['full', 'full', 'compact', 'compact']);
    // Then a full one for the change (within a report or two of it), repeated once, then compact again.
    const change = kinds.indexOf('full', 4);
    expect(change).toBeGreaterThanOrEqual(4);
    expect(kinds.slice(change, change + 3)).toEqual(['full', 'full', 'compact']);
  });

  it('should report a node that joins at once, in full, not at the next interval', async () => {
    const nodes = [node('cp-1', 'CONTROL_PLANE')];
    const source = new SimulatedSource({ speed: 1000, nodes: () => [...nodes] });
    const first = reports('cls-j', 1);
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-j',
        tenantId: 'tenant-j',
        source,
        parts: [reportsPart({ intervalMs: 60_000 })],
      }),
    );
    expect((await first)[0]!.nodes!.map((n) => n.name)).toEqual(['cp-1']);

    // Well before the next interval (a minute away).
    const next = reports('cls-j', 1, 3_000);
    nodes.push(node('w-1'), node('w-2'));
    // A burst (two machines running within a moment) makes one report.
    source.changed();
    source.changed();
    const [joined] = await next;
    expect(joined!.nodes!.map((n) => n.name)).toEqual(['cp-1', 'w-1', 'w-2']);
    await expect(reports('cls-j', 1, 600)).rejects.toThrow(/timeout/i);
  });

  it('should still send the heartbeat, with the reason, when observing fails', async () => {
    const failing: ObservationSource = {
      kind: 'kubernetes',
      observe: () => Promise.reject(new Error('connect ECONNREFUSED 10.96.0.1:443')),
    };
    const waiting = reports('cls-c', 1);
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-c',
        tenantId: 'tenant-c',
        source: new SimulatedSource(),
        parts: [reportsPart({ intervalMs: 100, observations: () => failing })],
      }),
    );
    const [heartbeat] = await waiting;
    expect(heartbeat).toMatchObject({
      source: 'kubernetes',
      nodes: null,
      services: null,
      problems: ['observe: connect ECONNREFUSED 10.96.0.1:443'],
    });
    expect(agentReportSchema.safeParse(heartbeat).success).toBe(true);
  });

  it('should not answer simulate requests when its observations are real', async () => {
    const real: ObservationSource = {
      kind: 'kubernetes',
      observe: async () => ({ nodes: [], services: [], problems: [] }),
    };
    agents.push(
      startAgent({
        bus,
        log,
        clusterId: 'cls-d',
        tenantId: 'tenant-d',
        source: new SimulatedSource(),
        parts: [reportsPart({ intervalMs: 100, observations: () => real })],
      }),
    );
    const error = await bus
      .request(
        simulateAgent,
        { clusterId: 'cls-d', tenantId: 'tenant-d', faults: { silent: true } },
        { timeoutMs: 500 },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusError);
    expect((error as BusError).code).toBe('NO_RESPONDERS');
  });
});
