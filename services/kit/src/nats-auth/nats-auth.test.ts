import { connect, credsAuthenticator, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '../testing/nats-server.js';
import {
  confinedCredentials,
  confinedPermissions,
  generateNatsKeys,
  serviceCredentials,
  subjectsOverlap,
  type NatsKeys,
} from './nats-auth.js';

describe('subjectsOverlap', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['a.*.c', 'a.b.>', true],
    ['a.*.d', 'a.b.c', false],
    ['>', 'x', true],
    ['_INBOX_a.>', 'agent.v1.a.report', false],
  ])('%s and %s: %s', (a, b, overlap) => {
    expect(subjectsOverlap(a, b)).toBe(overlap);
    expect(subjectsOverlap(b, a)).toBe(overlap);
  });
});

/** As the contract confines a cluster's agent (schema/src/contracts/agent.ts agentSubjects). */
const agentInboxPrefix = (clusterId: string) => `_INBOX_${clusterId}`;
const agentConfinement = (clusterId: string) => ({
  publish: [`agent.v1.${clusterId}.report`, `agent.v1.${clusterId}.credentials`, `agent.v1.${clusterId}.logs.*.data`],
  subscribe: [`agent.v1.${clusterId}.collect-logs`, `agent.v1.${clusterId}.logs.*.control`],
  inboxPrefix: agentInboxPrefix(clusterId),
});
const agentCredentials = (keys: NatsKeys, clusterId: string, ttl: number, seed?: string) =>
  confinedCredentials(
    keys,
    { name: `agent-${clusterId}`, permissions: confinedPermissions(agentConfinement(clusterId)) },
    ttl,
    seed,
  );

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Decentralised JWT authentication against a real nats-server 2.9: who may connect, publish and listen where. */
describe('NATS security', () => {
  let keys: NatsKeys;
  let nats: NatsServer;
  const connections: NatsConnection[] = [];

  const as = async (creds: string, extra: { inboxPrefix?: string } = {}) => {
    const nc = await connect({
      servers: nats.url,
      authenticator: credsAuthenticator(encoder.encode(creds)),
      reconnect: false,
      ...extra,
    });
    connections.push(nc);
    return nc;
  };
  /** The permission violations the server reported to a connection (nats.js gives their code only). */
  const violations = (nc: NatsConnection) => {
    const seen: string[] = [];
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'error') seen.push(String(status.data));
    })();
    return seen;
  };
  /** Subscribes, and resolves with the server's refusal of the subscription, if any. */
  const refusal = (nc: NatsConnection, subject: string) =>
    new Promise<string | null>((resolve) => {
      nc.subscribe(subject, { callback: (error) => resolve(error ? String((error as NatsError).message) : null) });
      setTimeout(() => resolve(null), 1_000);
    });

  beforeAll(async () => {
    keys = generateNatsKeys();
    nats = await startNatsServer({ security: keys });
  });
  afterAll(async () => {
    for (const nc of connections) await nc.close().catch(() => {});
    await nats?.stop();
  });

  it('should refuse a client without credentials, and one with credentials of another operator', async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
    const stranger = await serviceCredentials(generateNatsKeys(), 'stranger');
    await expect(
      connect({ servers: nats.url, reconnect: false, authenticator: credsAuthenticator(encoder.encode(stranger)) }),
    ).rejects.toThrow(/Authorization Violation/i);
  });

  it('should let a service connect as its own user, with JetStream', async () => {
    const nc = await as(await serviceCredentials(keys, 'clusters'));
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'AUTHTEST', subjects: ['authtest.>'] });
    const ack = await nc.jetstream().publish('authtest.one', encoder.encode('{}'));
    expect(ack.seq).toBe(1);
  });

  it('should let an agent publish its own reports and answer its own commands, nothing of another cluster or of the services', async () => {
    const service = await as(await serviceCredentials(keys, 'health'));
    const agentA = await as((await agentCredentials(keys, 'clsA', 600)).creds, {
      inboxPrefix: agentInboxPrefix('clsA'),
    });
    const errors = violations(agentA);

    const received: string[] = [];
    service.subscribe('agent.v1.*.report', { callback: (_e, m) => received.push(m.subject) });
    service.subscribe('clusters.v1.get', { callback: (_e, m) => received.push(m.subject) });
    await service.flush();
    agentA.publish('agent.v1.clsA.report', encoder.encode('{}'));
    agentA.publish('agent.v1.clsB.report', encoder.encode('{}'));
    agentA.publish('clusters.v1.get', encoder.encode('{}'));
    await agentA.flush();
    await sleep(200);
    expect(received).toEqual(['agent.v1.clsA.report']);
    expect(errors.filter((e) => e === 'PERMISSIONS_VIOLATION').length).toBeGreaterThanOrEqual(2);

    // Commands: A answers its own; B's and the services' subjects are refused to A.
    agentA.subscribe('agent.v1.clsA.collect-logs', { callback: (_e, m) => m.respond(encoder.encode('ok')) });
    await agentA.flush();
    const reply = await service.request('agent.v1.clsA.collect-logs', encoder.encode('{}'), { timeout: 2000 });
    expect(new TextDecoder().decode(reply.data)).toBe('ok');
    expect(await refusal(agentA, 'agent.v1.clsB.collect-logs')).toMatch(
      /Permissions Violation for Subscription to "agent\.v1\.clsB\.collect-logs"/,
    );
    expect(await refusal(agentA, 'clusters.v1.get')).toMatch(
      /Permissions Violation for Subscription to "clusters\.v1\.get"/,
    );
  });

  it('should not let an agent listen on the inboxes where services get their replies', async () => {
    const agent = await as((await agentCredentials(keys, 'clsC', 600)).creds, {
      inboxPrefix: agentInboxPrefix('clsC'),
    });
    expect(await refusal(agent, '_INBOX.>')).toMatch(/Permissions Violation for Subscription to "_INBOX\.>"/);
    expect(await refusal(agent, `${agentInboxPrefix('clsC')}.x`)).toBeNull();
  });

  it('should not let an agent publish elsewhere by answering a message of its own', async () => {
    // NATS lets a client answer once any message it receives: one that could hear what it
    // published would name any subject as the reply and answer itself there.
    const service = await as(await serviceCredentials(keys, 'clusters'));
    const agent = await as((await agentCredentials(keys, 'clsE', 600)).creds, {
      inboxPrefix: agentInboxPrefix('clsE'),
    });
    const errors = violations(agent);
    const forged: string[] = [];
    service.subscribe('clusters.v1.events.>', { callback: (_e, m) => forged.push(m.subject) });
    await service.flush();
    for (const subject of [
      'agent.v1.clsE.collect-logs',
      'agent.v1.clsE.logs.s1.control',
      `${agentInboxPrefix('clsE')}.x`,
    ]) {
      agent.subscribe(subject, { callback: (_e, m) => m.respond(encoder.encode('{"forged":true}')) });
      await agent.flush();
      agent.publish(subject, encoder.encode('{}'), { reply: 'clusters.v1.events.victim.cls_B' });
    }
    await agent.flush();
    await sleep(300);
    expect(forged).toEqual([]);
    expect(errors.filter((e) => e === 'PERMISSIONS_VIOLATION').length).toBeGreaterThanOrEqual(3);
  });

  it('should refuse to confine a client to subjects where it hears what it publishes', () => {
    expect(() =>
      confinedPermissions({
        publish: ['agent.v1.a.>'],
        subscribe: ['agent.v1.a.collect-logs'],
        inboxPrefix: '_INBOX_a',
      }),
    ).toThrow(/may not hear what it publishes: agent\.v1\.a\.> and agent\.v1\.a\.collect-logs/);
    expect(() => confinedPermissions({ publish: ['_INBOX_a.*'], subscribe: [], inboxPrefix: '_INBOX_a' })).toThrow(
      /may not hear/,
    );
    expect(confinedPermissions(agentConfinement('a')).pub?.allow).toHaveLength(3);
  });

  it('should refuse an agent whose credentials expired, and renew them for the same key', async () => {
    const short = await agentCredentials(keys, 'clsD', 1);
    await sleep(2100);
    await expect(
      connect({ servers: nats.url, reconnect: false, authenticator: credsAuthenticator(encoder.encode(short.creds)) }),
    ).rejects.toThrow(/Authorization Violation|expired/i);
    const renewed = await agentCredentials(keys, 'clsD', 600, short.seed);
    expect(renewed.seed).toBe(short.seed);
    const nc = await as(renewed.creds, { inboxPrefix: agentInboxPrefix('clsD') });
    expect(nc.isClosed()).toBe(false);
  });
});

/** Tests run NATS as it runs everywhere: authenticating every connection. */
describe('startNatsServer', () => {
  it('should authenticate by default: no client without credentials of its keys', async () => {
    const nats = await startNatsServer();
    try {
      await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
      const nc = await connect({
        servers: nats.url,
        reconnect: false,
        authenticator: credsAuthenticator(encoder.encode(await nats.credentials('tester'))),
      });
      await nc.flush();
      await nc.close();
      // Keys of its own, generated for it: not another server's.
      const other = await serviceCredentials(generateNatsKeys(), 'tester');
      await expect(
        connect({ servers: nats.url, reconnect: false, authenticator: credsAuthenticator(encoder.encode(other)) }),
      ).rejects.toThrow(/Authorization Violation/i);
    } finally {
      await nats.stop();
    }
  });
});
