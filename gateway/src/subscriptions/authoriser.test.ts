import { createLogger, Identity } from '@fleetgraph/kit/core';
import { describe, expect, it } from 'vitest';
import { batchedQuery, createAuthoriser, type AuthorizeResult, type QueryAuthorizedBinding } from './authoriser.js';
import { parse } from './graphql.js';

const log = createLogger('authoriser-test', 'silent');
const QUERY = 'query Authorize_widgetEvents($widgetId: ID!) { widget(id: $widgetId) { id } }';
const binding = {
  field: 'widgetEvents',
  authorize: {
    query: QUERY,
    variables: ['widgetId'],
    responseKey: 'widget',
    entity: 'widget',
    question: '($widgetId: ID!) { widget(id: $widgetId) { id } }',
  },
} as unknown as QueryAuthorizedBinding;
const live = { live: true };
const viewer = new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'viewer' } });
const other = new Identity({ sub: 'u2', tenantId: 't1', projects: { p1: 'viewer' } });

/** A query path that knows widgets w0..w99 but w13 (and fails on w66), answering aliases as the gateway would. */
function fakePath() {
  const asked: { query: string; variables: Record<string, unknown>; identity: Identity }[] = [];
  async function authorize(
    query: string,
    variables: Record<string, unknown>,
    identity: Identity,
  ): Promise<AuthorizeResult> {
    asked.push({ query, variables, identity });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const data: Record<string, unknown> = {};
    const errors: { message: string; extensions?: Record<string, unknown>; path?: string[] }[] = [];
    for (const [name, id] of Object.entries(variables)) {
      const alias = name === 'widgetId' ? 'widget' : `a${name.split('__')[1]}`;
      if (id === 'w66') {
        data[alias] = null;
        errors.push({ message: 'boom', extensions: { code: 'INTERNAL_SERVER_ERROR' }, path: [alias] });
      } else data[alias] = id === 'w13' || !/^w\d+$/.test(String(id)) ? null : { id };
    }
    return { data, ...(errors.length ? { errors } : {}) };
  }
  return { asked, authorize };
}

describe('subscription authorisations', () => {
  it('should print a batched query that is the same question asked under aliases', () => {
    const printed = batchedQuery(QUERY, 3);
    expect(printed.replace(/\s+/g, ' ')).toBe(
      'query Authorize_widgetEvents_batch($widgetId__0: ID!, $widgetId__1: ID!, $widgetId__2: ID!) { a0: widget(id: $widgetId__0) { id } a1: widget(id: $widgetId__1) { id } a2: widget(id: $widgetId__2) { id } }',
    );
    expect(() => parse(printed)).not.toThrow();
  });

  it("should answer a caller's questions of one kind 15 to a query, each with its own verdict", async () => {
    const path = fakePath();
    const authoriser = createAuthoriser({ authorize: path.authorize, log, timeoutMs: 1_000 });
    const ids = Array.from({ length: 40 }, (_, i) => `w${i}`);
    const verdicts = await Promise.all(
      ids.map((id) => authoriser.authorise(live, binding, { widgetId: id }, viewer, 'r')),
    );
    expect(path.asked.map((a) => Object.keys(a.variables).length)).toEqual([15, 15, 10]);
    expect(verdicts.map((v, i) => (v ? `${ids[i]}: ${v.message}` : null)).filter(Boolean)).toEqual([
      'w13: widget not found',
    ]);
  });

  it('should never put two callers in one query, and tell a failed service from an unknown widget', async () => {
    const path = fakePath();
    const authoriser = createAuthoriser({ authorize: path.authorize, log, timeoutMs: 1_000 });
    const asks = [
      authoriser.authorise(live, binding, { widgetId: 'w1' }, viewer, 'r'),
      authoriser.authorise(live, binding, { widgetId: 'w66' }, viewer, 'r'),
      authoriser.authorise(live, binding, { widgetId: 'nope' }, viewer, 'r'),
      authoriser.authorise(live, binding, { widgetId: 'w2' }, other, 'r'),
    ];
    const [w1, w66, nope, w2] = await Promise.all(asks);
    expect([w1, w2]).toEqual([undefined, undefined]);
    expect(w66?.extensions.code).toBe('SERVICE_UNAVAILABLE');
    expect(nope?.message).toBe('widget not found');
    expect(path.asked.map((a) => [a.identity.userId, Object.keys(a.variables).length])).toEqual([
      ['u1', 3],
      ['u2', 1],
    ]);
  });

  it('should remember a granted answer for its time only, and a refusal never', async () => {
    let clock = 0;
    const path = fakePath();
    const authoriser = createAuthoriser({
      authorize: path.authorize,
      log,
      timeoutMs: 1_000,
      rememberMs: 1_000,
      now: () => clock,
    });
    const ask = (id: string) => authoriser.authorise(live, binding, { widgetId: id }, viewer, 'r');
    expect(await ask('w1')).toBeUndefined();
    expect((await ask('w13'))?.message).toBe('widget not found');
    expect(await ask('w1')).toBeUndefined();
    expect((await ask('w13'))?.message).toBe('widget not found');
    expect([path.asked.length, authoriser.remembered]).toEqual([3, 1]);
    clock += 1_001;
    expect(await ask('w1')).toBeUndefined();
    expect(path.asked.length).toBe(4);
  });

  it('should ask nothing for callers who left while their question waited', async () => {
    const path = fakePath();
    const authoriser = createAuthoriser({ authorize: path.authorize, log, timeoutMs: 1_000 });
    const gone = { live: false };
    const verdict = await authoriser.authorise(gone, binding, { widgetId: 'w1' }, viewer, 'r');
    expect(verdict?.extensions.code).toBe('UNAUTHENTICATED');
    expect(path.asked).toEqual([]);
  });
  it('should let questions that come one by one while a query runs wait for each other, and ask at once when idle', async () => {
    const path = fakePath();
    const authoriser = createAuthoriser({ authorize: path.authorize, log, timeoutMs: 1_000 });
    const ask = (id: string) => authoriser.authorise(live, binding, { widgetId: id }, viewer, 'r');
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    // Idle: the first question goes out in the next turn of the event loop, alone.
    const first = ask('w0');
    await turn();
    expect(path.asked.map((a) => Object.keys(a.variables).length)).toEqual([1]);
    // While it runs (5 ms), questions read one per turn, as from many sockets, wait for each other.
    const later: Promise<unknown>[] = [];
    for (let i = 1; i <= 6; i++) {
      later.push(ask(`w${i}`));
      await turn();
    }
    await Promise.all([first, ...later]);
    // One query of six here; a machine stalled for 10 ms between two turns may split it, never
    // into six queries of one (as before the window).
    expect(path.asked[0]!.variables).toEqual({ widgetId: 'w0' });
    expect(path.asked.slice(1).reduce((n, a) => n + Object.keys(a.variables).length, 0)).toBe(6);
    expect(path.asked.length).toBeLessThanOrEqual(3);
  });
});
