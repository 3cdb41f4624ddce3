import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createBus, createLogger, type Bus } from '@fleetgraph/kit';
import { rawNats } from '@fleetgraph/kit/testing';
import { createClient, type Client } from 'graphql-ws';
import { headers as natsHeaders } from 'nats';
import { afterAll, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startOtlpReceiver, startPlatform, type OtlpReceiver, type Platform } from '../src/index.js';

/**
 * What tracing costs (issue 16), in one run: four platforms side by side, tracing off (twice: the
 * second tells how far two identical platforms differ here), sampled at 10% and at 100%
 * (`parentbased_traceidratio`, exporting over OTLP/HTTP to a receiver in this process that only
 * counts), measured in turns, round after round, so that each sees the same machine. Two paths:
 *
 * - the query path: a nested query of clusters with their profiles, health and nodes through the
 *   gateway (the gateway, the clusters, profiles and health subgraphs), `QUERIES` at a time from
 *   `CONCURRENCY` clients: the CPU of those four processes per query (/proc), and p50/p99 latency;
 * - the subscription fan-out: `SUBSCRIBERS` graphql-ws subscriptions of `clusterConditions` over
 *   the platform's clusters, and conditions updates published to NATS at `RATE` a second with a
 *   `traceparent` sampled as often as the platform samples (as the clusters service's would be):
 *   the gateway's CPU per delivered event.
 *
 * Prints each configuration's figures (medians over the rounds) and their ratios to tracing off.
 * Asserts nothing about time.
 *
 *   npx vitest run --project bench test/bench/tracing.bench.ts
 *
 * TRACING_BENCH_ROUNDS (8), _QUERIES (200), _CONCURRENCY (4), _SUBSCRIBERS (400), _RATE (100
 * events/s), _WINDOW_S (3) change the shape.
 */
const env = process.env;
const ROUNDS = Number(env.TRACING_BENCH_ROUNDS ?? 8);
const QUERIES = Number(env.TRACING_BENCH_QUERIES ?? 200);
const CONCURRENCY = Number(env.TRACING_BENCH_CONCURRENCY ?? 4);
const SUBSCRIBERS = Number(env.TRACING_BENCH_SUBSCRIBERS ?? 400);
const RATE = Number(env.TRACING_BENCH_RATE ?? 100);
const WINDOW_MS = Number(env.TRACING_BENCH_WINDOW_S ?? 3) * 1000;
const CLUSTERS = 4;
const QUERY_PROCESSES = ['gateway', 'clusters', 'profiles', 'health'];

const CONFIGS = [
  { name: 'off', ratio: 0, env: {} },
  // The same as the first: how far two identical platforms differ on this machine (the noise).
  { name: 'off (control)', ratio: 0, env: {} },
  {
    name: 'sampled 10%',
    ratio: 0.1,
    env: { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  },
  { name: 'sampled 100%', ratio: 1, env: { OTEL_TRACES_SAMPLER: 'parentbased_always_on' } },
] as const;

const FLEET_QUERY = `query Fleet($projectId: ID!) {
  clusters(projectId: $projectId, first: 20) {
    nodes {
      id name phase
      conditions { type status }
      profile { id name version layers { type name version } }
      health { status stale lastHeartbeatAt }
      nodes { name role pool }
    }
  }
}`;

/** CPU seconds (user + system) of a process, from /proc (Linux; clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

interface Setup {
  name: string;
  ratio: number;
  platform: Platform;
  token: string;
  project: string;
  tenant: string;
  clusters: string[];
  publisher: Bus;
  clients: Client[];
  delivered: number;
  query: { cpuMs: number[]; p50: number[]; p99: number[] };
  fanOut: { cpuUsPerDelivery: number[]; deliveredPerS: number[] };
}

const setups: Setup[] = [];
let receiver: OtlpReceiver | undefined;

afterAll(async () => {
  for (const setup of setups) {
    for (const client of setup.clients) await client.dispose();
    await setup.publisher.close();
    await setup.platform.stop();
  }
  await receiver?.stop();
});

async function start(config: (typeof CONFIGS)[number]): Promise<Setup> {
  const platform = await startPlatform({
    localCloud: { speed: 1000 },
    env: {
      ...(config.ratio > 0 && { OTEL_EXPORTER_OTLP_ENDPOINT: receiver!.url, ...config.env }),
      // Nothing periodic while measuring: no drift checks, no agent reports.
      RECONCILE_RESYNC_MS: '3600000',
      AGENT_REPORT_INTERVAL_MS: '3600000',
    },
  });
  const tenant = seed.tenant();
  const project = seed.project();
  const token = await platform.token(seed.user(tenant, { [project]: 'editor' }));
  const profile = await platform.graphql(
    `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
    { input: seed.profileInput(project) },
    token,
  );
  const profileId = profile.data!.createClusterProfile.profile.id as string;
  const clusters: string[] = [];
  for (let i = 0; i < CLUSTERS; i++) {
    const created = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } } }`,
      {
        input: {
          projectId: project,
          name: `bench-${i}`,
          profileId,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: 2, instanceType: 't3.medium' },
          ],
        },
      },
      token,
    );
    clusters.push(created.data!.createCluster.cluster.id);
  }
  for (let i = 0; ; i++) {
    const r = await platform.graphql(
      `query($p: ID!) { clusters(projectId: $p) { nodes { phase } } }`,
      { p: project },
      token,
    );
    if (r.data!.clusters.nodes.every((c: { phase: string }) => c.phase === 'RUNNING')) break;
    if (i > 600) throw new Error(`${config.name}: clusters did not reach RUNNING`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const publisher = await createBus({
    url: platform.natsUrl,
    name: 'tracing-bench',
    log: createLogger('tracing-bench', 'silent'),
    credentials: await platform.credentials('tracing-bench'),
  });
  const setup: Setup = {
    name: config.name,
    ratio: config.ratio,
    platform,
    token,
    project,
    tenant,
    clusters,
    publisher,
    clients: [],
    delivered: 0,
    query: { cpuMs: [], p50: [], p99: [] },
    fanOut: { cpuUsPerDelivery: [], deliveredPerS: [] },
  };
  await subscribe(setup);
  return setup;
}

/** SUBSCRIBERS subscriptions, spread over the clusters, 50 per connection; resolves once each has its first event. */
async function subscribe(setup: Setup): Promise<void> {
  const perConnection = 50;
  let first = 0;
  let allFirst!: () => void;
  const ready = new Promise<void>((resolve) => (allFirst = resolve));
  for (let i = 0; i < SUBSCRIBERS; i += perConnection) {
    const client = createClient({
      url: setup.platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${setup.token}` },
      retryAttempts: 0,
    });
    setup.clients.push(client);
    for (let j = i; j < Math.min(SUBSCRIBERS, i + perConnection); j++) {
      let seen = false;
      client.subscribe(
        {
          query: `subscription($id: ID!) { clusterConditions(clusterId: $id) { clusterId phase conditions { type status } } }`,
          variables: { id: setup.clusters[j % setup.clusters.length] },
        },
        {
          next: () => {
            setup.delivered++;
            if (!seen) {
              seen = true;
              if (++first === SUBSCRIBERS) allFirst();
            }
          },
          error: (error) => console.error(`${setup.name}: subscription failed`, error),
          complete: () => {},
        },
      );
    }
  }
  await ready;
}

async function measureQueries(setup: Setup): Promise<void> {
  const pids = QUERY_PROCESSES.map((name) => setup.platform.services.get(name)!.child.pid!);
  const send = () =>
    fetch(setup.platform.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${setup.token}` },
      body: JSON.stringify({ query: FLEET_QUERY, variables: { projectId: setup.project } }),
    }).then(async (response) => {
      const body = (await response.json()) as { errors?: unknown };
      if (body.errors) throw new Error(`${setup.name}: ${JSON.stringify(body.errors)}`);
    });
  for (let i = 0; i < 20; i++) await send(); // warm
  const cpuBefore = pids.map(cpuSeconds);
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < QUERIES) {
        const started = performance.now();
        await send();
        latencies.push(performance.now() - started);
      }
    }),
  );
  const cpu = pids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpuBefore[i]!, 0);
  setup.query.cpuMs.push((cpu * 1000) / QUERIES);
  setup.query.p50.push(percentile(latencies, 0.5));
  setup.query.p99.push(percentile(latencies, 0.99));
}

async function measureFanOut(setup: Setup): Promise<void> {
  const { connection } = rawNats(setup.publisher);
  const gatewayPid = setup.platform.services.get('gateway')!.child.pid!;
  const encoder = new TextEncoder();
  let published = 0;
  const publish = () => {
    const clusterId = setup.clusters[published++ % setup.clusters.length]!;
    const h = natsHeaders();
    // As the clusters service would send it: a trace context sampled as often as the platform samples.
    if (setup.ratio > 0) {
      const sampled = Math.random() < setup.ratio ? '01' : '00';
      h.set('traceparent', `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${sampled}`);
    }
    connection.publish(
      `clusters.v1.conditions.${setup.tenant}.${clusterId}`,
      encoder.encode(JSON.stringify({ tenantId: setup.tenant, clusterId, phase: 'RUNNING', conditions: [] })),
      { headers: h },
    );
  };
  const run = async (ms: number) => {
    const started = performance.now();
    while (performance.now() - started < ms) {
      const due = Math.floor(((performance.now() - started) / 1000) * RATE);
      while (published < due + baseline) publish();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  let baseline = published;
  await run(1000); // warm
  baseline = published;
  const deliveredBefore = setup.delivered;
  const cpuBefore = cpuSeconds(gatewayPid);
  const started = performance.now();
  await run(WINDOW_MS);
  // What was published is delivered within moments.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const delivered = setup.delivered - deliveredBefore;
  const cpu = cpuSeconds(gatewayPid) - cpuBefore;
  setup.fanOut.cpuUsPerDelivery.push((cpu * 1e6) / delivered);
  setup.fanOut.deliveredPerS.push(delivered / ((performance.now() - started) / 1000));
}

it('prints the overhead of tracing on the query path and the subscription fan-out', async () => {
  receiver = await startOtlpReceiver({ keep: false });
  for (const config of CONFIGS) setups.push(await start(config));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const setup of setups) await measureQueries(setup);
    for (const setup of setups) await measureFanOut(setup);
    console.log(`round ${round} of ${ROUNDS} done (${receiver.count} spans received so far)`);
  }

  const [off] = setups;
  const ratio = (value: number, base: number) => (value / base).toFixed(2);
  const lines = [
    `Tracing overhead: ${ROUNDS} rounds; query path ${QUERIES} queries x ${CONCURRENCY} concurrent (CPU of ${QUERY_PROCESSES.join(', ')}); fan-out ${SUBSCRIBERS} subscribers over ${CLUSTERS} subjects, ${RATE} events/s for ${WINDOW_MS / 1000} s (gateway CPU)`,
    'Medians over the rounds, (the range in brackets); ratios to the first platform, tracing off.',
    '| tracing | query CPU ms | ratio | p50 ms | p99 ms | fan-out CPU µs/delivery | ratio | delivered/s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const range = (values: number[], digits: number) =>
    `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
  for (const setup of setups) {
    const cpu = median(setup.query.cpuMs);
    const fan = median(setup.fanOut.cpuUsPerDelivery);
    lines.push(
      `| ${setup.name} | ${range(setup.query.cpuMs, 2)} | ${ratio(cpu, median(off!.query.cpuMs))} | ${median(setup.query.p50).toFixed(1)} | ${median(setup.query.p99).toFixed(1)} | ${range(setup.fanOut.cpuUsPerDelivery, 1)} | ${ratio(fan, median(off!.fanOut.cpuUsPerDelivery))} | ${median(setup.fanOut.deliveredPerS).toFixed(0)} |`,
    );
  }
  lines.push(`spans received: ${receiver.count}`);
  console.log(lines.join('\n'));
});
