import { ErrorCodes } from '@fleetgraph/kit/core';
import { auditServer } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ids, startWidgetsPlatform, type WidgetsPlatform } from './subscriptions/widgets.fixture.js';

/**
 * GraphQL over HTTP, as the specification says, on a real gateway (with the widgets fixture
 * subgraph): graphql-http's audit suite, the status of each kind of error in both media types,
 * the codes clients receive, and the request id of every answer.
 */
const JSON_TYPE = 'application/json';
const GRAPHQL_RESPONSE = 'application/graphql-response+json';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The audits the gateway does not pass, all MAYs (see gateway/README.md, GraphQL over HTTP): GET
 * requests need a header that proves they are no cross-site request (`apollo-require-preflight`,
 * or a JSON content-type), which the audit's GETs do not send.
 */
const MAY_NOT_PASSED = {
  '5A70': 'MAY accept application/x-www-form-urlencoded formatted GET requests',
  D6D5: 'MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/graphql-response+json',
  '6A70': 'MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/json',
};

describe('GraphQL over HTTP', () => {
  let platform: WidgetsPlatform;
  let url: string;
  let token: string;
  /** Every code an answer of these tests carried. */
  const codes = new Set<string>();

  beforeAll(async () => {
    platform = await startWidgetsPlatform();
    url = platform.gateway.url;
    token = await platform.token({ sub: 'auditor', tenantId: ids.tenant(), projects: {} });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const authorized = (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };

  async function post(body: unknown, accept: string, headers: Record<string, string> = {}) {
    const response = await authorized(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const json = (await response.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] };
    for (const error of json.errors ?? []) codes.add(String(error.extensions?.code));
    return {
      status: response.status,
      type: response.headers.get('content-type'),
      code: json.errors?.[0]?.extensions?.code,
      hasData: 'data' in json,
    };
  }

  it("should pass every MUST and SHOULD of graphql-http's audit suite", async () => {
    const results = await auditServer({ url, fetchFn: authorized });
    const failed = results.filter((r) => r.status !== 'ok');
    expect(Object.fromEntries(failed.map((r) => [r.id, r.name]))).toEqual(MAY_NOT_PASSED);
    expect(results.length).toBeGreaterThan(50);
  });

  const aliases = `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
  it.each([
    { what: 'a syntax error', body: { query: '{ widget(id: "x") { id }' }, code: 'GRAPHQL_PARSE_FAILED' },
    { what: 'an unknown field', body: { query: '{ nothing }' }, code: 'GRAPHQL_VALIDATION_FAILED' },
    {
      what: 'a variable that does not coerce',
      body: { query: 'query ($id: ID!) { widget(id: $id) { id } }' },
      code: 'BAD_USER_INPUT',
    },
    { what: 'an operation over a limit', body: { query: aliases }, code: 'QUERY_LIMIT_EXCEEDED' },
    {
      what: 'a document over the token limit',
      body: { query: `{ ${'__typename '.repeat(1000)}}` },
      code: 'QUERY_LIMIT_EXCEEDED',
    },
    {
      what: 'an unknown operation name',
      body: { query: '{ __typename }', operationName: 'Other' },
      code: 'BAD_REQUEST',
    },
  ])(
    'should answer $what ($code) without data, 400 in graphql-response+json and 200 in json',
    async ({ body, code }) => {
      expect(await post(body, GRAPHQL_RESPONSE)).toEqual({
        status: 400,
        type: `${GRAPHQL_RESPONSE}; charset=utf-8`,
        code,
        hasData: false,
      });
      expect(await post(body, JSON_TYPE)).toEqual({
        status: 200,
        type: `${JSON_TYPE}; charset=utf-8`,
        code,
        hasData: false,
      });
    },
  );

  it.each([
    { what: 'a body that is not JSON', body: '{"query": ', status: 400, code: 'BAD_REQUEST' },
    { what: 'a body without a query', body: { variables: {} }, status: 400, code: 'BAD_REQUEST' },
    {
      what: 'a subscription, which is served elsewhere',
      body: { query: 'subscription { widgetEvents(widgetId: "w") { n } }' },
      status: 400,
      code: 'BAD_REQUEST',
    },
    {
      what: 'a persisted query sent by its hash alone',
      body: { extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } },
      status: 200,
      code: 'PERSISTED_QUERY_NOT_FOUND',
    },
  ])('should answer $what $status ($code) in both media types', async ({ body, status, code }) => {
    for (const accept of [GRAPHQL_RESPONSE, JSON_TYPE])
      expect({ accept, ...(await post(body, accept)) }).toMatchObject({ accept, status, code });
  });

  it('should answer a request without credentials 401 UNAUTHENTICATED, and only with codes of the registry', async () => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    const json = (await response.json()) as { errors: { extensions: { code: string } }[] };
    expect([response.status, json.errors[0]!.extensions.code]).toEqual([401, 'UNAUTHENTICATED']);
    codes.add(json.errors[0]!.extensions.code);
    // Every code the tests above received (they run first, in order).
    expect([...codes].filter((code) => !(code in ErrorCodes))).toEqual([]);
    expect(codes.size).toBeGreaterThanOrEqual(7);
  });

  it('should echo a request id that looks like one, and give every other answer a new one', async () => {
    const answer = async (path: string, requestId?: string) =>
      (await fetch(new URL(path, url), { headers: requestId ? { 'x-request-id': requestId } : {} })).headers.get(
        'x-request-id',
      );
    expect(await answer('/graphql', '01J9ZK5W3Q-trace.id:42')).toBe('01J9ZK5W3Q-trace.id:42');
    for (const [path, sent] of [
      ['/healthz', undefined],
      ['/graphql', 'two words'],
      ['/graphql', 'x'.repeat(129)],
      ['/nowhere', undefined],
    ] as const)
      expect({ path, sent, id: await answer(path, sent) }).toEqual({ path, sent, id: expect.stringMatching(UUID) });

    // The answer to a WebSocket upgrade too.
    const upgraded = await new Promise<string | undefined>((resolve, reject) => {
      const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', {
        headers: { 'x-request-id': 'upgrade-1' },
      });
      socket.once('upgrade', (response) => {
        resolve(response.headers['x-request-id'] as string | undefined);
        socket.close();
      });
      socket.once('error', reject);
    });
    expect(upgraded).toBe('upgrade-1');
  });
});
