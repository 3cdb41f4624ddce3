import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Identity, INTERNAL_IDENTITY_HEADER } from '@fleetgraph/kit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SubgraphSource } from './subgraph-source.js';

/** A subgraph that answers each request after `delayMs`, with what it was sent, and counts them. */
function startSubgraph(delayMs: number) {
  const received: { identity: string | undefined; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const identity = req.headers[INTERNAL_IDENTITY_HEADER] as string | undefined;
      received.push({ identity, body });
      setTimeout(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: { n: received.length, identity: identity ?? null } }));
      }, delayMs);
    });
  });
  return { server, received };
}

describe('requests to subgraphs', () => {
  const subgraph = startSubgraph(150);
  let url: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => subgraph.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(subgraph.server.address() as AddressInfo).port}/graphql`;
  });
  afterAll(() => new Promise<void>((resolve) => subgraph.server.close(() => resolve())));

  const source = (shareInflight = true) =>
    new SubgraphSource({
      name: 'test',
      urls: [url],
      // A token per caller's claims, as createInternalIdentitySigner gives per verified credential.
      sign: async (identity) => `token:${JSON.stringify(identity.claims)}`,
      shareInflight,
    });
  const ask = (s: SubgraphSource, identity: Identity | undefined, query: string, variables = {}) =>
    s.process({
      kind: 'incoming operation',
      request: { query, variables },
      context: { identity, requestId: 'r' },
      incomingRequestContext: {},
    } as never) as Promise<{ data: { n: number; identity: string | null } }>;
  const viewer = new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'viewer' } });
  const sameClaims = new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'viewer' } });
  const admin = new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'admin' } });
  const foreign = new Identity({ sub: 'u1', tenantId: 't2', projects: { p1: 'viewer' } });

  it('should send identical queries of one caller in flight once, each reading the answer as its own', async () => {
    const s = source();
    const before = subgraph.received.length;
    const answers = await Promise.all([
      ask(s, viewer, 'query A { a }'),
      ask(s, viewer, 'query A { a }'),
      ask(s, sameClaims, 'query A { a }'),
    ]);
    expect(subgraph.received.length - before).toBe(1);
    expect(new Set(answers.map((a) => a.data.n)).size).toBe(1);
    // Each its own object: what one caller's execution does to it, the others never see.
    expect(answers[0]).not.toBe(answers[1]);
    expect(answers[0]!.data).not.toBe(answers[1]!.data);
    // Once answered, nothing is kept: the same query is sent again.
    await ask(s, viewer, 'query A { a }');
    expect(subgraph.received.length - before).toBe(2);
  });

  it('should never share across tenants, roles, documents, variables, mutations, or when told not to', async () => {
    const s = source();
    const before = subgraph.received.length;
    const answers = await Promise.all([
      ask(s, viewer, 'query A { a }'),
      ask(s, admin, 'query A { a }'),
      ask(s, foreign, 'query A { a }'),
      ask(s, viewer, 'query B { a }'),
      ask(s, viewer, 'query A { a }', { x: 1 }),
      ask(s, viewer, 'mutation M { m }'),
      ask(s, viewer, 'mutation M { m }'),
    ]);
    expect(subgraph.received.length - before).toBe(7);
    // Each caller's answer came with its own identity.
    expect(answers.slice(0, 3).map((a) => JSON.parse(a.data.identity!.slice('token:'.length)))).toEqual([
      viewer.claims,
      admin.claims,
      foreign.claims,
    ]);
    const off = source(false);
    const offBefore = subgraph.received.length;
    await Promise.all([ask(off, viewer, 'query A { a }'), ask(off, viewer, 'query A { a }')]);
    expect(subgraph.received.length - offBefore).toBe(2);
  });

  it("should send no identity for the gateway's own requests, and share none of them", async () => {
    const s = source();
    const before = subgraph.received.length;
    const answers = await Promise.all([ask(s, undefined, 'query A { a }'), ask(s, undefined, 'query A { a }')]);
    expect(subgraph.received.length - before).toBe(2);
    expect(answers.map((a) => a.data.identity)).toEqual([null, null]);
  });
});
