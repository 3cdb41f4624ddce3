import { randomBytes } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  seed,
  SpanKinds,
  startOtlpReceiver,
  startPlatform,
  type OtlpReceiver,
  type Platform,
  type ReceivedSpan,
} from './src/index.js';

/**
 * Traces across the processes (issue 16): every process of the platform exports its spans over
 * OTLP/HTTP (JSON) to a receiver in this test, through its real exporter. The test starts the
 * trace itself (a `traceparent` on createCluster), so it knows the trace id to look for.
 */
describe('one trace from the client to the cloud call', () => {
  let platform: Platform;
  let receiver: OtlpReceiver;
  const tenant = seed.tenant();
  const project = seed.project();
  let editor: string;
  let profileId: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    platform = await startPlatform({
      localCloud: { speed: 1000 },
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        RECONCILE_PROGRESS_MS: '100',
        RECONCILE_POLL_MS: '50',
      },
    });
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    const created = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project) },
      editor,
    );
    profileId = created.data!.createClusterProfile.profile.id;
  });

  afterAll(async () => {
    await platform?.stop();
    await receiver?.stop();
  });

  /** Waits until the spans of the trace satisfy `found` (spans are exported in batches, every 100 ms here). */
  async function spansOf<T>(traceId: string, found: (spans: ReceivedSpan[]) => T | undefined): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const result = found(receiver.spans.filter((s) => s.traceId === traceId));
      if (result !== undefined) return result;
      if (Date.now() > deadline) {
        const names = receiver.spans.filter((s) => s.traceId === traceId).map((s) => `${s.service}: ${s.name}`);
        throw new Error(`the trace never had what was looked for; it has:\n${names.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('should follow createCluster from the gateway to the subgraph, over NATS to the orchestrator, the cloud and a subscriber', async () => {
    const traceId = randomBytes(16).toString('hex');
    const clientSpanId = randomBytes(8).toString('hex');
    const response = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${editor}`,
        traceparent: `00-${traceId}-${clientSpanId}-01`,
      },
      body: JSON.stringify({
        query: `mutation CreateCluster($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code } } }`,
        variables: {
          input: {
            projectId: project,
            name: 'traced',
            profileId,
            cloud: { type: 'LOCAL', region: 'local-1' },
            nodePools: [{ name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' }],
          },
        },
      }),
    });
    const body = (await response.json()) as { data: { createCluster: { cluster: { id: string } } } };
    const clusterId = body.data.createCluster.cluster.id;

    // A subscriber of the cluster's conditions, until it runs: its events are published by the steps.
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${editor}` },
      retryAttempts: 0,
    });
    try {
      const updates = client.iterate<{ clusterConditions: { phase: string } }>({
        query: `subscription ClusterConditions($id: ID!) { clusterConditions(clusterId: $id) { phase } }`,
        variables: { id: clusterId },
      });
      for await (const update of updates) if (update.data?.clusterConditions.phase === 'RUNNING') break;
    } finally {
      await client.dispose();
    }

    const one = (spans: ReceivedSpan[], service: string, name: string, parent?: ReceivedSpan) =>
      spans.find((s) => s.service === service && s.name === name && (!parent || s.parentSpanId === parent.spanId));

    // The gateway: its server span continues the client's, Apollo Gateway's spans, the fetch to the subgraph.
    const gateway = await spansOf(traceId, (spans) => {
      const server = one(spans, 'gateway', 'POST /graphql');
      const request = server && one(spans, 'gateway', 'gateway.request', server);
      const fetch = one(spans, 'gateway', 'POST clusters');
      return server && request && fetch && { server, fetch };
    });
    expect(gateway.server.parentSpanId).toBe(clientSpanId);
    expect(gateway.server.kind).toBe(SpanKinds.server);
    expect(gateway.server.attributes['graphql.operation.name']).toBe('CreateCluster');
    expect(gateway.fetch.kind).toBe(SpanKinds.client);

    // The clusters subgraph, continuing the gateway's fetch, asking the profiles service over NATS.
    const subgraph = await spansOf(traceId, (spans) => {
      const server = one(spans, 'clusters', 'POST /graphql', gateway.fetch);
      const ask = one(spans, 'clusters', 'request profiles.v1.get');
      const answer = ask && one(spans, 'profiles', 'process profiles.v1.get', ask);
      return server && answer && { server };
    });
    expect(subgraph.server.attributes['http.response.status_code']).toBe(200);

    // The orchestrator's steps, in the same trace, each milestone with the cluster, the phase and the result;
    // the images service over NATS; the cloud calls, by operation and SDK call, with their region.
    const provisioning = await spansOf(traceId, (spans) => {
      const steps = spans.filter((s) => s.service === 'clusters' && s.name === 'reconcile');
      const image = one(spans, 'clusters', 'reconcile Customizing Image');
      const resolve = one(spans, 'clusters', 'request images.v1.resolve');
      const resolved = resolve && one(spans, 'images', 'process images.v1.resolve', resolve);
      const network = one(spans, 'clusters', 'LOCAL ensureNetwork');
      const sdk = network && spans.find((s) => s.name.startsWith('EC2 ') && s.parentSpanId === network.spanId);
      const machine = one(spans, 'clusters', 'LOCAL createMachine');
      const converged = steps.find((s) => s.attributes['fleetgraph.reconcile.result'] === 'converged');
      return steps.length && image && resolved && network && sdk && machine && converged
        ? { steps, image, network, sdk, converged }
        : undefined;
    });
    for (const step of provisioning.steps) expect(step.attributes['fleetgraph.cluster.id']).toBe(clusterId);
    expect(provisioning.image.attributes).toMatchObject({
      'fleetgraph.cluster.id': clusterId,
      'fleetgraph.reconcile.phase': 'Customizing Image',
      'fleetgraph.reconcile.result': 'done',
    });
    expect(provisioning.network.attributes).toMatchObject({
      'cloud.region': 'local-1',
      'fleetgraph.cloud.operation': 'ensureNetwork',
    });
    expect(provisioning.sdk.attributes).toMatchObject({ 'rpc.service': 'EC2', 'cloud.region': 'local-1' });
    expect(provisioning.converged.attributes['fleetgraph.cluster.phase_after']).toBe('RUNNING');

    // One event followed from its publish (the relay, continuing a step) to its delivery at the gateway.
    const delivery = await spansOf(traceId, (spans) => {
      for (const publish of spans.filter(
        (s) => s.service === 'clusters' && s.name === 'publish clusters.v1.conditions',
      )) {
        const delivered = spans.find(
          (s) =>
            s.service === 'gateway' &&
            s.name === 'process CLUSTER_STATE' &&
            s.parentSpanId === publish.spanId &&
            Number(s.attributes['fleetgraph.subscription.deliveries']) >= 1,
        );
        if (delivered) return { publish, delivered };
      }
      return undefined;
    });
    expect(delivery.publish.kind).toBe(SpanKinds.producer);
    expect(delivery.publish.attributes['messaging.destination.name']).toBe(
      `clusters.v1.conditions.${tenant}.${clusterId}`,
    );
    expect(delivery.delivered.kind).toBe(SpanKinds.consumer);

    // The gateway's access lines: the request (its trace, operation, caller; never the token) and the connection.
    const gatewayLines = () =>
      platform.services.get('gateway')!.output.flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
    // The connection's line is written once the gateway has seen it close, a moment after dispose().
    const closedBy = Date.now() + 10_000;
    while (
      !gatewayLines().some((l) => l.msg === 'graphql-ws connection' && l.tenantId === tenant) &&
      Date.now() < closedBy
    )
      await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = gatewayLines();
    const access = lines.find((l) => l.msg === 'http request' && l.traceId === traceId);
    expect(access).toMatchObject({
      method: 'POST',
      path: '/graphql',
      status: 200,
      operationName: 'CreateCluster',
      tenantId: tenant,
      spanId: gateway.server.spanId,
    });
    expect(typeof access!.caller).toBe('string');
    expect(typeof access!.durationMs).toBe('number');
    const connection = lines.find((l) => l.msg === 'graphql-ws connection' && l.tenantId === tenant);
    expect(connection).toMatchObject({ operationNames: ['ClusterConditions'], subscribes: 1 });
    expect(platform.services.get('gateway')!.output.join('\n')).not.toContain(editor);
  });
});
