import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failoverFetch, subgraphUrls } from './supergraph.js';

describe("a subgraph's replicas", () => {
  let alive: Server;
  let aliveUrl: string;
  let deadUrl: string;
  const served: string[] = [];

  beforeAll(async () => {
    alive = createServer((req, res) => {
      served.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((resolve) => alive.listen(0, '127.0.0.1', resolve));
    aliveUrl = `http://127.0.0.1:${(alive.address() as AddressInfo).port}/graphql`;
    // A port that was just free: nothing listens there (connection refused).
    const gone = createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    deadUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/graphql`;
    await new Promise((resolve) => gone.close(resolve));
  });
  afterAll(() => new Promise((resolve) => alive.close(resolve)));

  it('should read a comma-separated list of replicas, or the composed URL', () => {
    expect(
      subgraphUrls('profiles', 'http://a/graphql', { PROFILES_URL: ' http://b/graphql , http://c/graphql ' }),
    ).toEqual(['http://b/graphql', 'http://c/graphql']);
    expect(subgraphUrls('profiles', 'http://a/graphql', {})).toEqual(['http://a/graphql']);
    expect(() => subgraphUrls('profiles', undefined, {})).toThrow(/PROFILES_URL/);
  });

  it('should send a request that cannot reach one replica to the next, and leave the dead one out for a while', async () => {
    const attempts: string[] = [];
    const tracing: typeof fetch = (url, init) => {
      attempts.push(String(url));
      return fetch(url, init);
    };
    let now = 0;
    const send = failoverFetch([deadUrl, aliveUrl], { fetch: tracing, downForMs: 5_000, now: () => now });
    for (let i = 0; i < 4; i++)
      expect(await (await send(deadUrl, { method: 'POST', body: `{"n":${i}}` })).text()).toBe('ok');
    expect(served).toHaveLength(4);
    // Tried once, then left out while it is believed down.
    expect(attempts.filter((url) => url === deadUrl)).toHaveLength(1);
    now = 6_000;
    await send(deadUrl, { method: 'POST', body: '{}' });
    await send(deadUrl, { method: 'POST', body: '{}' });
    expect(attempts.filter((url) => url === deadUrl)).toHaveLength(2);
  });

  it('should fail as fetch does when no replica can be reached', async () => {
    await expect(
      failoverFetch([deadUrl, deadUrl.replace('/graphql', '/other')])(deadUrl, { method: 'POST' }),
    ).rejects.toThrow(TypeError);
  });
});
