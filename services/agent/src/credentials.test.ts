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
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { agentPermissions, agentReport, renewAgentCredentials, type AgentReport } from '@fleetgraph/schema';
import { decode } from '@nats-io/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from './agent.js';
import { connectAgent, type AgentConnection } from './connection.js';
import { AgentCredentials, CredentialsError, parseCredentials } from './credentials.js';
import { reportsPart } from './reports.js';
import { SimulatedSource } from './simulated.js';

const log = createLogger('credentials-test', 'silent');
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A cluster's agent credentials, as the clusters service mints them (confined to the cluster's subjects). */
const mint = (keys: NatsKeys, clusterId: string, ttlSeconds: number, seed?: string) =>
  confinedCredentials(keys, { name: `agent-${clusterId}`, permissions: agentPermissions(clusterId) }, ttlSeconds, seed);

describe('parseCredentials', () => {
  const keys = generateNatsKeys();

  it('should read the JWT, its key, and when it was issued and expires', async () => {
    const minted = await mint(keys, 'cls-parse', 600);
    const parsed = parseCredentials(minted.creds);
    expect(parsed).toMatchObject({
      jwt: minted.jwt,
      seed: minted.seed,
      publicKey: minted.publicKey,
      expiresAt: minted.expiresAt,
    });
    expect(parsed.issuedAt!.getTime()).toBeLessThanOrEqual(minted.expiresAt.getTime() - 599_000);
  });

  it('should refuse what is not a credentials file, and a seed of another key', async () => {
    expect(() => parseCredentials('NATS_CREDENTIALS=changeme')).toThrow(CredentialsError);
    const a = await mint(keys, 'cls-a', 600);
    const b = await mint(keys, 'cls-b', 600);
    expect(() => parseCredentials(a.creds.replace(a.seed, b.seed))).toThrow(/the seed is not the key of the user JWT/);
    expect(() => parseCredentials(a.creds.replace(a.jwt, `${a.jwt.slice(0, -4)}AAAA`))).toThrow(/does not decode/);
  });

  it('should keep the seed and refuse a renewed JWT for another key', async () => {
    const first = await mint(keys, 'cls-keep', 600);
    const credentials = new AgentCredentials(first.creds);
    const renewed = await mint(keys, 'cls-keep', 1200, first.seed);
    credentials.replaceJwt(renewed.jwt);
    expect(parseCredentials(credentials.current())).toMatchObject({
      jwt: renewed.jwt,
      seed: first.seed,
      expiresAt: renewed.expiresAt,
    });
    const stranger = await mint(keys, 'cls-keep', 600);
    expect(() => credentials.replaceJwt(stranger.jwt)).toThrow(/for another key/);
    expect(credentials.jwt).toBe(renewed.jwt);
  });
});

/**
 * Renewal against a real nats-server with decentralised JWT authentication: the platform side is
 * a fake clusters service that mints renewed JWTs with the kit, as the real one does.
 */
describe('agent credentials renewal against a real nats-server', () => {
  let keys: NatsKeys;
  let nats: NatsServer;
  let platform: Bus;
  /** Each cluster's key, as the platform knows it; clusters not here are deleted (NOT_FOUND). */
  const seeds = new Map<string, string>();
  const asked: { clusterId: string; publicKey: string }[] = [];
  const renewedTtlSeconds = 4;
  const agents: RunningAgent[] = [];
  const connections: AgentConnection[] = [];

  beforeAll(async () => {
    keys = generateNatsKeys();
    nats = await startNatsServer({ security: keys });
    platform = await createBus({
      url: nats.url,
      name: 'clusters',
      log,
      credentials: await serviceCredentials(keys, 'clusters'),
    });
    platform.serve(renewAgentCredentials, async ({ clusterId, publicKey }) => {
      asked.push({ clusterId, publicKey });
      const seed = seeds.get(clusterId);
      if (!seed) throw new BusError('NOT_FOUND', `cluster ${clusterId} is not managed here`);
      const renewed = await mint(keys, clusterId, renewedTtlSeconds, seed);
      if (renewed.publicKey !== publicKey) throw new BusError('BAD_REQUEST', 'not the key of this cluster');
      return { jwt: renewed.jwt, expiresAt: renewed.expiresAt.toISOString() };
    });
    await platform.flush();
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(connections.map((c) => c.close()));
    await platform?.close();
    await nats?.stop();
  });

  /** Every report of a cluster from now on, as the platform receives them. */
  function collectReports(clusterId: string): AgentReport[] {
    const received: AgentReport[] = [];
    rawNats(platform).connection.subscribe(agentReport.subjectOf({ clusterId }), {
      callback: (_error, message) => received.push(JSON.parse(decoder.decode(message.data)) as AgentReport),
    });
    return received;
  }

  it('should renew its JWT before it expires, reconnect with the renewed one once NATS closes the old, and keep reporting', async () => {
    const clusterId = 'cls-renew';
    const boot = await mint(keys, clusterId, 3);
    seeds.set(clusterId, boot.seed);
    const reports = collectReports(clusterId);
    await platform.flush();

    const connection = await connectAgent({ url: nats.url, clusterId, log, credentials: boot.creds });
    connections.push(connection);
    const statuses: string[] = [];
    connection.bus.onStatus((status) => statuses.push(status));
    agents.push(
      startAgent({
        bus: connection.bus,
        log,
        clusterId,
        tenantId: 't1',
        source: new SimulatedSource({ speed: 1000 }),
        parts: [reportsPart({ intervalMs: 200 })],
      }),
    );

    // NATS closes the connection of the boot JWT when it expires; the client reconnects.
    await until(
      'a reconnect after the boot JWT expired',
      () => statuses.includes('reconnect') && Date.now() > boot.expiresAt.getTime(),
      10_000,
    );
    expect(statuses.slice(0, 2)).toEqual(['disconnect', 'reconnect']);
    expect(connection.renewal!.renewals).toBeGreaterThanOrEqual(1);
    expect(asked.filter((a) => a.clusterId === clusterId).every((a) => a.publicKey === boot.publicKey)).toBe(true);

    // Same key, a JWT that outlives the boot one: the only one NATS lets the reconnect in with.
    const now = parseCredentials(connection.credentials!.current());
    expect(now.seed).toBe(boot.seed);
    expect(now.jwt).not.toBe(boot.jwt);
    expect(decode(now.jwt).sub).toBe(boot.publicKey);
    expect(now.expiresAt!.getTime()).toBeGreaterThan(boot.expiresAt.getTime());

    // Reports keep coming, sent after the boot JWT expired, on a connection that is up.
    const afterExpiry = () => reports.filter((r) => Date.parse(r.sentAt) > boot.expiresAt.getTime() + 500);
    await until('reports sent after the boot JWT expired', () => afterExpiry().length >= 3);
    expect(connection.bus.connected).toBe(true);
    const seqs = reports.map((r) => r.seq);
    expect(seqs.at(-1)).toBeGreaterThan(seqs.length / 2);
  });

  it('should stop renewing once the platform says the cluster is deleted, and be refused after its JWT expires', async () => {
    const clusterId = 'cls-deleted';
    const boot = await mint(keys, clusterId, 2);
    // Not in `seeds`: the platform answers NOT_FOUND.
    const connection = await connectAgent({ url: nats.url, clusterId, log, credentials: boot.creds });
    connections.push(connection);
    await until('the renewal to give up', () => connection.renewal!.state === 'cluster-deleted', 5_000);
    expect(asked.filter((a) => a.clusterId === clusterId)).toHaveLength(1);
    expect(connection.credentials!.jwt).toBe(boot.jwt);

    // Once the JWT expired, NATS closes the connection and refuses it back.
    await until('the connection to be refused', () => connection.bus.closed, 10_000);
    expect(asked.filter((a) => a.clusterId === clusterId)).toHaveLength(1);
  });
});
