import { readFileSync } from 'node:fs';
import {
  ClusterEventsDocument,
  type ClusterEventsQuery,
  ClustersDocument,
  createFleetgraphClient,
} from '@fleetgraph/client';
import { parse } from 'graphql';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followCluster } from './examples/follow-cluster.js';
import { type Platform, seed, startPlatform, startTcpProxy } from './src/index.js';

/**
 * The integration examples in examples/, run as an integrator would run them, against a real
 * platform that runs trusted documents only (the client's manifest: the examples use nothing
 * else); their connection is dropped under them to show that they resume.
 */
describe('integration examples', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  let editor: string; // a project admin: webhooks are the admins

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 25 },
      // The example's webhook receiver listens on loopback.
      env: { TRUSTED_DOCUMENTS: 'enforce', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' },
    });
    editor = await platform.token(seed.user(tenant, { [project]: 'admin' }));
  }, 120_000);

  afterAll(async () => {
    await platform?.stop();
  });

  it('follow-cluster: creates a cluster, follows its events to RUNNING resuming after its connection is dropped, without gap or duplicate, and receives the signed webhook delivery', async () => {
    // The example talks to the gateway through a proxy that drops every connection at the first
    // event, as a network would.
    const gateway = new URL(platform.gatewayUrl);
    const proxy = await startTcpProxy(gateway);
    let dropped = false;
    const resumes: (string | null)[] = [];
    const { clusterId, events, running } = await followCluster({
      url: `${proxy.origin}${gateway.pathname}`,
      token: editor,
      projectId: project,
      onEvent: () => {
        if (dropped) return;
        dropped = true;
        proxy.drop();
        proxy.restore();
      },
      onResume: (_error, after) => resumes.push(after),
    });
    proxy.close();

    expect(resumes).toEqual([events[0]!.cursor]);
    expect(events.at(-1)?.reason).toBe('PhaseRunning');
    expect(running).toMatchObject({ type: 'CLUSTER_PHASE', data: { clusterId, phase: 'RUNNING', projectId: project } });
    const client = createFleetgraphClient({ url: platform.gatewayUrl, token: editor });
    const truth: string[] = [];
    for (let after: string | null = null; ; ) {
      const { cluster }: ClusterEventsQuery = await client.request(ClusterEventsDocument, {
        id: clusterId,
        first: 100,
        after,
      });
      truth.push(...(cluster?.events.nodes.map((e) => e.cursor) ?? []));
      if (!cluster?.events.pageInfo.hasNextPage) break;
      after = cluster.events.pageInfo.endCursor;
    }
    const seen = events.map((e) => e.cursor);
    expect(seen).toEqual(truth.slice(0, seen.length));
  }, 120_000);

  it('should run trusted documents only: by hash alone or whole, and refuse any other on HTTP and graphql-ws', async () => {
    const trusted = createFleetgraphClient({ url: platform.gatewayUrl, token: editor, persisted: true });
    const { clusters } = await trusted.request(ClustersDocument, { projectId: project, first: 5 });
    expect(clusters.nodes.length).toBeGreaterThan(0);

    const other = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        authorization: `Bearer ${editor}`,
      },
      body: JSON.stringify({ query: '{ clusters { nodes { id } } }' }),
    });
    expect(other.status).toBe(400);
    expect(((await other.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'PERSISTED_QUERY_NOT_IN_LIST',
    );

    const ws = createFleetgraphClient({ url: platform.gatewayUrl, token: editor, webSocketImpl: WebSocket });
    const strange = parse('subscription Strange($id: ID!) { clusterEvents(clusterId: $id) { cursor } }');
    const error = await ws
      .subscribe(strange, { id: clusters.nodes[0]!.id })
      .next()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    await ws.close();
    expect(error).toMatchObject({ code: 'PERSISTED_QUERY_NOT_IN_LIST' });
  });

  it("should serve /metrics on every process, with every fleetgraph_ metric of deploy/observability's dashboard and alerts, and no tenant or id in a label", async () => {
    // After the scenarios above: a cluster provisioned, a webhook delivered, operations run.
    const scraped = new Map<string, string>();
    for (const [name, process] of platform.services) {
      const response = await fetch(new URL('/metrics', process.url));
      expect(response.status, name).toBe(200);
      const text = await response.text();
      expect(text, name).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(text, name).toContain('# TYPE fleetgraph_http_request_duration_seconds histogram');
      scraped.set(name, text);
    }
    expect([...scraped.keys()].sort()).toEqual([
      'clusters',
      'gateway',
      'health',
      'images',
      'local-cloud',
      'logs',
      'profiles',
    ]);
    // The series names each process exposes, from its families' types (a histogram's _bucket, _sum, _count).
    const series = new Set<string>();
    for (const text of scraped.values())
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm))
        for (const suffix of type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''])
          series.add(`${name}${suffix}`);
    const read = (file: string) => readFileSync(new URL(`../deploy/observability/${file}`, import.meta.url), 'utf8');
    const used = new Set(
      [read('grafana-dashboard.json'), read('alerts.yaml')].flatMap((t) => t.match(/\bfleetgraph_[a-z0-9_]+/g) ?? []),
    );
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !series.has(name))).toEqual([]);

    // What the scenarios did is counted, by bounded labels.
    const sample = (process: string, pattern: RegExp) =>
      [...scraped.get(process)!.matchAll(new RegExp(`^${pattern.source} (\\S+)$`, 'gm'))].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    expect(sample('clusters', /fleetgraph_orchestrator_phases_total\{phase="WORKERS",result="done"\}/)).toBeGreaterThan(
      0,
    );
    expect(
      sample(
        'clusters',
        /fleetgraph_cloud_call_duration_seconds_count\{cloud="LOCAL",operation="createMachine",outcome="ok"\}/,
      ),
    ).toBeGreaterThan(0);
    expect(
      sample('clusters', /fleetgraph_webhook_delivery_attempts_total\{event="CLUSTER_PHASE",result="delivered"\}/),
    ).toBeGreaterThan(0);
    // Trusted documents enforced: operation names are the manifest's (the example's Clusters query).
    expect(
      sample(
        'gateway',
        /fleetgraph_gateway_operation_duration_seconds_count\{operation_name="Clusters",operation_type="query",outcome="ok"\}/,
      ),
    ).toBeGreaterThan(0);
    expect(
      sample(
        'gateway',
        /fleetgraph_gateway_subgraph_request_duration_seconds_count\{subgraph="clusters",outcome="ok"\}/,
      ),
    ).toBeGreaterThan(0);
    expect(sample('health', /fleetgraph_health_report_lag_seconds_count/)).toBeGreaterThan(0);
    for (const [name, text] of scraped) expect(text.includes(tenant) || text.includes(project), name).toBe(false);
  });
});
