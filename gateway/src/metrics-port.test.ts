import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv } from './env.js';
import { startWidgetsPlatform, type WidgetsPlatform } from './subscriptions/widgets.fixture.js';

/** /metrics on a port of its own (METRICS_PORT): the public port no longer tells operation names and counts. */
describe('the gateway metrics port', () => {
  let platform: WidgetsPlatform;

  beforeAll(async () => {
    platform = await startWidgetsPlatform({}, { metricsPort: 0 });
  });

  afterAll(async () => {
    await platform?.stop();
  });

  it('should serve /metrics on the metrics port only', async () => {
    const { gateway } = platform;
    const publicMetrics = new URL('/metrics', gateway.url);
    expect(new URL(gateway.metricsUrl).port).not.toBe(publicMetrics.port);
    // An operation, counted by name.
    const token = await platform.token({ sub: 'metrics', tenantId: 't', projects: {} });
    const answer = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'query Counted { __typename }' }),
    });
    expect(answer.status).toBe(200);

    const scraped = await fetch(gateway.metricsUrl);
    expect(scraped.status).toBe(200);
    const text = await scraped.text();
    expect(text).toContain('operation_name="Counted"');
    expect(text).toMatch(/^fleetgraph_subscription_connections \d/m);
    const refused = await fetch(publicMetrics);
    expect(refused.status).toBe(404);
    expect(await refused.text()).toBe('');
    // Only /metrics there.
    expect((await fetch(new URL('/graphql', gateway.metricsUrl))).status).toBe(404);
  });

  it('should read METRICS_PORT, unset by default (/metrics on PORT)', () => {
    const base = { INTERNAL_AUTH_SECRET: 'x'.repeat(32) };
    expect(readEnv({ ...base, METRICS_PORT: '9464' }).METRICS_PORT).toBe(9464);
    expect(readEnv(base).METRICS_PORT).toBeUndefined();
    expect(() => readEnv({ ...base, METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
  });
});
