import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Identity,
  INTERNAL_IDENTITY_HEADER,
  signInternalIdentity,
  SUBGRAPHS,
  subgraphUrlVariable,
  type Claims,
} from '@fleetgraph/kit';
import autocannon from 'autocannon';
import { afterAll, it } from 'vitest';
import { seed, startPlatform, startProcess, type Platform, type ServiceProcess } from '../src/index.js';

/**
 * Fleetgraph's gateway against its peers (issue 18), over the same subgraphs: the platform's
 * subgraphs are started once, then four gateways, each its own process, take turns at the same
 * queries:
 *
 * - Fleetgraph's gateway (gateway/, as the platform starts it), called with a bearer token;
 * - stock @apollo/gateway + @apollo/server (gateway.apollo.mjs);
 * - Hive Gateway (@graphql-hive/gateway, gateway.hive.mjs) with its defaults;
 * - Hive Gateway with the deduplication of identical in-flight subgraph requests off.
 *
 * The peers know nothing of Fleetgraph's sign-in: their client sends a ready-made internal
 * identity header (`x-fleetgraph-identity`, the HS256 JWT Fleetgraph's gateway would sign for the
 * same caller, signed here with the platform's internal secret before each run: it lives 5
 * minutes), which they copy onto every subgraph request; the subgraphs check it as always.
 *
 * 20 clusters are seeded (and brought to RUNNING with a health). Before anything is timed, every
 * gateway must answer each query with byte-identical `data` (else the benchmark fails: that is
 * correctness, not timing). Then, for each of `ROUNDS` rounds, each query shape and each gateway
 * (the order rotated by one gateway each round): `WARMUP_S` of load, then `SECONDS` of load from
 * autocannon with `CONNECTIONS` connections (each sends its next request when the previous one is
 * answered). Each measured run counts answers per second, latency (p50/p95/p99, from every
 * answer), errors (connection errors and timeouts, non-2xx answers, and answers whose body
 * differs from the one checked before timing), and the CPU (/proc, user + system) the gateway's
 * process and the subgraphs' processes (clusters, profiles, health) used, per request sent: CPU
 * is read once the processes have gone quiet before and after the run, so requests still in
 * flight when the run stops are counted, both in the CPU and in the requests.
 *
 * Two query shapes: clusters with their profiles and health (three subgraphs), and the clusters
 * alone (one subgraph). Every request of a run is the same query, variables and caller: the best
 * case for Hive Gateway's deduplication of identical in-flight subgraph requests (on by default),
 * hence the peer with it off; the subgraphs' CPU per request tells how much it saved. Prints a table per shape of the medians over the rounds, with ratios to
 * Fleetgraph's gateway, and writes every figure to `.vitest/bench/gateway.json` (GATEWAY_BENCH_OUT
 * to change it). Asserts nothing about time. The machine is shared (2 cores): the gateways and
 * the subgraphs share them with the load generator (this process), so absolute figures move from
 * run to run; compare the ratios of one run.
 *
 *   pnpm build && npx vitest run --project bench test/bench/gateway.bench.ts
 *
 * GATEWAY_BENCH_ROUNDS (4), _SECONDS (10), _WARMUP_S (2), _CONNECTIONS (50) change the shape;
 * GATEWAY_BENCH_PROFILE=<dir> writes a CPU profile of the Fleetgraph gateway the bench starts
 * itself (in-flight sharing off) to <dir> when it stops.
 */
const env = process.env;
const ROUNDS = Number(env.GATEWAY_BENCH_ROUNDS ?? 4);
const SECONDS = Number(env.GATEWAY_BENCH_SECONDS ?? 10);
const WARMUP_S = Number(env.GATEWAY_BENCH_WARMUP_S ?? 2);
const CONNECTIONS = Number(env.GATEWAY_BENCH_CONNECTIONS ?? 50);
const CLUSTERS = 20;
const root = fileURLToPath(new URL('../../', import.meta.url));
const OUT = env.GATEWAY_BENCH_OUT ?? join(root, '.vitest/bench/gateway.json');
/** The subgraph processes whose CPU is counted (the first shape's three; the second uses the first alone). */
const SUBGRAPH_PROCESSES = ['clusters', 'profiles', 'health'];

interface Shape {
  name: string;
  subgraphs: string;
  query: string;
}

const SHAPES: Shape[] = [
  {
    name: 'clusters + profiles + health',
    subgraphs: 'clusters, profiles, health',
    query: `query Fleet($projectId: ID!) {
  clusters(projectId: $projectId, first: 20) {
    nodes { id name phase profile { name version layers { type name version } } health { status } }
  }
}`,
  },
  {
    name: 'clusters only',
    subgraphs: 'clusters',
    query: `query FleetPhases($projectId: ID!) {
  clusters(projectId: $projectId, first: 20) { nodes { id name phase } }
}`,
  },
];

interface Gateway {
  name: string;
  url: string;
  pid: number;
  /** The headers that authenticate a run's requests (the peers': an internal identity signed now). */
  headers(): Promise<Record<string, string>>;
  /** Set for the peers, which this benchmark starts and stops. */
  process?: ServiceProcess;
}

interface Run {
  round: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  answered: number;
  sent: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  gatewayCpuMs: number;
  subgraphCpuMs: number;
}

/** CPU seconds (user + system) of a process, from /proc (Linux; clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

/** Waits until the processes are idle (no CPU tick over 200 ms): the last requests of a run answered. */
async function quiet(pids: number[], maxMs = 5_000): Promise<void> {
  const total = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const deadline = Date.now() + maxMs;
  let last = total();
  while (Date.now() < deadline) {
    await sleep(200);
    const now = total();
    if (now - last < 0.005) return;
    last = now;
  }
}

let platform: Platform | undefined;
/** The claims every gateway's requests carry. */
let benchCaller: Claims | undefined;
let supergraphDir: string | undefined;
const peers: ServiceProcess[] = [];

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.stop()));
  await platform?.stop();
  if (supergraphDir) await rm(supergraphDir, { recursive: true, force: true });
});

/** The platform's supergraph (schema/supergraph.graphql, as its gateway reads it) with the running subgraphs' URLs. */
function runningSupergraph(platform: Platform): string {
  const sdl = readFileSync(join(root, 'schema/supergraph.graphql'), 'utf8');
  return sdl.replace(/@join__graph\(name: "([^"]+)", url: "[^"]*"\)/g, (_, name: string) => {
    const service = platform.services.get(name);
    if (!service) throw new Error(`no running subgraph ${name} for the supergraph`);
    return `@join__graph(name: "${name}", url: "${service.url}")`;
  });
}

/**
 * Another Fleetgraph gateway process over the platform's subgraphs, with `extra` settings (one
 * lever turned off, to measure what it is worth), called like the platform's own.
 */
async function startFleetgraphGateway(platform: Platform, name: string, extra: NodeJS.ProcessEnv): Promise<Gateway> {
  const urls = Object.fromEntries(
    SUBGRAPHS.map((s) => [subgraphUrlVariable(s.name), platform.services.get(s.name)!.url] as [string, string]),
  );
  const profile = env.GATEWAY_BENCH_PROFILE;
  const gateway = await startProcess(
    name,
    join(root, 'gateway/dist/main.js'),
    { ...(await platform.envFor('gateway')), ...urls, PORT: '0', ...extra },
    undefined,
    profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [],
  );
  peers.push(gateway);
  const token = await platform.token(benchCaller!);
  return {
    name,
    url: gateway.url,
    pid: gateway.child.pid!,
    headers: async () => ({ authorization: `Bearer ${token}` }),
    process: gateway,
  };
}

/** Creates a profile and CLUSTERS clusters in a project, and waits for them to run and have a health. */
async function seedClusters(platform: Platform, token: string, project: string): Promise<void> {
  const profile = await platform.graphql(
    `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
    { input: seed.profileInput(project) },
    token,
  );
  const profileId = profile.data!.createClusterProfile.profile.id as string;
  for (let i = 0; i < CLUSTERS; i++) {
    const created = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { message } } }`,
      {
        input: {
          projectId: project,
          name: `bench-${String(i).padStart(2, '0')}`,
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
    if (!created.data?.createCluster.cluster) throw new Error(`createCluster: ${JSON.stringify(created)}`);
  }
  // Every cluster RUNNING with a health that its agent reported (not UNKNOWN), so that the answers
  // stay the same through the runs: nothing periodic changes them (see the platform's env).
  const deadline = Date.now() + 240_000;
  for (;;) {
    const r = await platform.graphql(
      `query($p: ID!) { clusters(projectId: $p, first: 20) { nodes { phase health { status } } } }`,
      { p: project },
      token,
    );
    const nodes = (r.data?.clusters.nodes ?? []) as { phase: string; health: { status: string } }[];
    if (nodes.length === CLUSTERS && nodes.every((c) => c.phase === 'RUNNING' && c.health.status !== 'UNKNOWN')) return;
    if (Date.now() > deadline)
      throw new Error(`clusters not all RUNNING with a health after 240 s: ${JSON.stringify(r.data ?? r.errors)}`);
    await sleep(500);
  }
}

const body = (shape: Shape, project: string) =>
  JSON.stringify({ query: shape.query, variables: { projectId: project } });

/** One POST to a gateway: its status and body text. */
async function ask(gateway: Gateway, shape: Shape, project: string): Promise<{ status: number; text: string }> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...(await gateway.headers()) },
    body: body(shape, project),
  });
  return { status: response.status, text: await response.text() };
}

/**
 * Every gateway must answer the shape with byte-identical `data` (serialised as received: same
 * fields, same order, same values), without errors. Returns each gateway's whole answer, which
 * its runs expect of every request (their mismatches).
 */
async function checkSameData(gateways: Gateway[], shape: Shape, project: string): Promise<Map<string, string>> {
  const answers = new Map<string, string>();
  const data = new Map<string, string>();
  for (const gateway of gateways) {
    const { status, text } = await ask(gateway, shape, project);
    const parsed = JSON.parse(text) as { data?: { clusters?: { nodes?: unknown[] } }; errors?: unknown };
    if (status !== 200 || parsed.errors || !parsed.data)
      throw new Error(`${gateway.name} answered ${shape.name} with ${status}: ${text.slice(0, 2000)}`);
    if (parsed.data.clusters?.nodes?.length !== CLUSTERS)
      throw new Error(`${gateway.name} answered ${shape.name} with other than ${CLUSTERS} clusters: ${text}`);
    // A second answer must equal the first, for the runs to count answers that differ as mismatches.
    const again = await ask(gateway, shape, project);
    if (again.text !== text)
      throw new Error(`${gateway.name} answered ${shape.name} differently twice:\n${text}\n${again.text}`);
    answers.set(gateway.name, text);
    data.set(gateway.name, JSON.stringify(parsed.data));
  }
  const [first, ...others] = gateways;
  const reference = data.get(first!.name)!;
  for (const gateway of others) {
    if (data.get(gateway.name) !== reference)
      throw new Error(
        `${gateway.name} and ${first!.name} answer ${shape.name} with different data:\n${data.get(gateway.name)}\n${reference}`,
      );
  }
  // The whole bodies may differ beside `data` (other members, whitespace): said, not failed.
  const wholeBodies = new Set(answers.values()).size === 1;
  const outside = (text: string) => {
    const { data: _, ...rest } = JSON.parse(text) as Record<string, unknown>;
    const members = Object.keys(rest).length > 0 ? ` and ${JSON.stringify(rest)}` : '';
    return `${text.length} bytes: data${members}${text.length > JSON.stringify(JSON.parse(text)).length ? ' and whitespace' : ''}`;
  };
  console.log(
    `${shape.name}: every gateway answers the same data (${reference.length} bytes)${
      wholeBodies
        ? ', in byte-identical bodies'
        : `; the bodies: ${gateways.map((g) => `${g.name} ${outside(answers.get(g.name)!)}`).join('; ')}`
    }`,
  );
  return answers;
}

/** autocannon against one gateway for `seconds`; the answers' latencies go to `latencies`. */
async function load(
  gateway: Gateway,
  shape: Shape,
  project: string,
  seconds: number,
  expectBody: string,
  latencies: number[] = [],
): Promise<autocannon.Result> {
  const headers = { 'content-type': 'application/json', accept: 'application/json', ...(await gateway.headers()) };
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: gateway.url,
        method: 'POST',
        headers,
        body: body(shape, project),
        connections: CONNECTIONS,
        duration: seconds,
        expectBody,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
}

async function measure(
  gateway: Gateway,
  shape: Shape,
  project: string,
  expectBody: string,
  subgraphPids: number[],
  round: number,
): Promise<Run> {
  const all = [gateway.pid, ...subgraphPids];
  await load(gateway, shape, project, WARMUP_S, expectBody);
  await quiet(all);
  const gatewayBefore = cpuSeconds(gateway.pid);
  const subgraphsBefore = subgraphPids.map(cpuSeconds);
  const latencies: number[] = [];
  const result = await load(gateway, shape, project, SECONDS, expectBody, latencies);
  await quiet(all);
  const gatewayCpu = cpuSeconds(gateway.pid) - gatewayBefore;
  const subgraphCpu = subgraphPids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - subgraphsBefore[i]!, 0);
  latencies.sort((a, b) => a - b);
  // Every request sent was served, answered before the run stopped or not.
  const sent = Math.max(result.requests.sent, latencies.length);
  return {
    round,
    rps: latencies.length / result.duration,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    answered: latencies.length,
    sent,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches,
    gatewayCpuMs: (gatewayCpu * 1000) / sent,
    subgraphCpuMs: (subgraphCpu * 1000) / sent,
  };
}

interface Summary {
  gateway: string;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  /** Summed over the rounds: connection errors (timeouts among them), non-2xx answers and mismatched bodies. */
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  gatewayCpuMs: number;
  subgraphCpuMs: number;
  ratios: { rps: number; gatewayCpu: number; subgraphCpu: number; p50: number };
  rounds: Run[];
}

function summarise(name: string, runs: Run[]): Omit<Summary, 'ratios'> {
  const of = (key: keyof Run) => median(runs.map((run) => run[key]));
  const sum = (key: keyof Run) => runs.reduce((total, run) => total + run[key], 0);
  return {
    gateway: name,
    rps: of('rps'),
    p50: of('p50'),
    p95: of('p95'),
    p99: of('p99'),
    errors: sum('errors') + sum('non2xx') + sum('mismatches'),
    timeouts: sum('timeouts'),
    non2xx: sum('non2xx'),
    mismatches: sum('mismatches'),
    gatewayCpuMs: of('gatewayCpuMs'),
    subgraphCpuMs: of('subgraphCpuMs'),
    rounds: runs,
  };
}

function table(shape: Shape, summaries: Summary[]): string {
  const range = (runs: Run[], key: keyof Run, digits: number) => {
    const values = runs.map((run) => run[key]);
    return `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
  };
  const x = (ratio: number) => `${ratio.toFixed(2)}x`;
  const byName = (name: string) => summaries.find((s) => s.gateway === name);
  const [fleetgraph, apollo, hive] = ['Fleetgraph', 'stock @apollo/gateway', 'Hive Gateway (defaults)'].map(byName);
  const unshared = byName('Fleetgraph (sharing off)');
  const lines = [
    `${shape.name} (subgraphs: ${shape.subgraphs}): ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s each after ${WARMUP_S} s of warm-up, in rotation`,
    'Medians over the rounds (the range in brackets); errors summed over the rounds; CPU per request sent (subgraphs: clusters + profiles + health); ratios to Fleetgraph.',
    '| gateway | RPS | p50 ms | p95 ms | p99 ms | errors | gateway CPU ms/req | subgraph CPU ms/req | RPS ratio | gateway CPU ratio | subgraph CPU ratio |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...summaries.map(
      (s) =>
        `| ${s.gateway} | ${range(s.rounds, 'rps', 0)} | ${s.p50.toFixed(1)} | ${s.p95.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.errors} | ${range(s.rounds, 'gatewayCpuMs', 2)} | ${range(s.rounds, 'subgraphCpuMs', 2)} | ${x(s.ratios.rps)} | ${x(s.ratios.gatewayCpu)} | ${x(s.ratios.subgraphCpu)} |`,
    ),
    `Fleetgraph vs Hive Gateway (defaults): ${x(fleetgraph!.rps / hive!.rps)} the RPS, ${x(fleetgraph!.gatewayCpuMs / hive!.gatewayCpuMs)} the gateway CPU per request; Fleetgraph's gateway CPU per request vs stock @apollo/gateway: ${x(fleetgraph!.gatewayCpuMs / apollo!.gatewayCpuMs)}; with its in-flight sharing off: ${x(unshared!.gatewayCpuMs / apollo!.gatewayCpuMs)} the gateway CPU and ${x(unshared!.subgraphCpuMs / apollo!.subgraphCpuMs)} the subgraph CPU per request of stock @apollo/gateway.`,
  ];
  for (const s of summaries)
    if (s.errors > 0)
      lines.push(
        `${s.gateway}: ${s.errors - s.non2xx - s.mismatches} connection errors (${s.timeouts} timeouts), ${s.non2xx} non-2xx, ${s.mismatches} bodies other than the checked one`,
      );
  return lines.join('\n');
}

it(
  "prints the throughput, latency and CPU per request of Fleetgraph's gateway, stock @apollo/gateway and Hive Gateway",
  async () => {
    const load0 = loadavg();
    platform = await startPlatform({
      localCloud: { speed: 1000 },
      env: {
        // Fleetgraph's gateway limits each caller's requests a minute (RATE_LIMIT_PER_MINUTE, 600 by
        // default; anonymous callers 60): one caller sending hundreds a second would be refused with
        // 429s. No limits here, as the peers have none (the test kit's default too, said again).
        RATE_LIMIT_PER_MINUTE: '0',
        RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
        // Any operation accepted (the default), as the peers accept any.
        TRUSTED_DOCUMENTS: 'off',
        // Nothing periodic while measuring: no drift checks, no agent reports (whose health would
        // be late only after 3 hours), so that the answers do not change between the runs.
        RECONCILE_RESYNC_MS: '3600000',
        AGENT_REPORT_INTERVAL_MS: '3600000',
      },
    });
    const running = platform;
    const tenant = seed.tenant();
    const project = seed.project();
    const claims: Claims = seed.user(tenant, { [project]: 'viewer' });
    benchCaller = claims;
    const token = await running.token(seed.user(tenant, { [project]: 'editor' }));
    console.log(`platform started; seeding ${CLUSTERS} clusters`);
    await seedClusters(running, token, project);
    const viewerToken = await running.token(claims);
    const identity = new Identity(claims);
    const internalSecret = running.env.INTERNAL_AUTH_SECRET!;
    const peerHeaders = async () => ({
      [INTERNAL_IDENTITY_HEADER]: await signInternalIdentity(identity, internalSecret),
    });

    supergraphDir = await mkdtemp(join(tmpdir(), 'fleetgraph-gateway-bench-'));
    const supergraphPath = join(supergraphDir, 'supergraph.graphql');
    await writeFile(supergraphPath, runningSupergraph(running));
    const peerEnv = { SUPERGRAPH_PATH: supergraphPath, PORT: '0', NODE_ENV: running.env.NODE_ENV, NODE_OPTIONS: '' };
    const startPeer = async (name: string, script: string, extra: NodeJS.ProcessEnv = {}): Promise<Gateway> => {
      const peer = await startProcess(name, fileURLToPath(new URL(script, import.meta.url)), { ...peerEnv, ...extra });
      peers.push(peer);
      return { name, url: peer.url, pid: peer.child.pid!, headers: peerHeaders, process: peer };
    };
    const gateways: Gateway[] = [
      {
        name: 'Fleetgraph',
        url: running.gatewayUrl,
        pid: running.services.get('gateway')!.child.pid!,
        headers: async () => ({ authorization: `Bearer ${viewerToken}` }),
      },
      await startFleetgraphGateway(running, 'Fleetgraph (sharing off)', { SUBGRAPH_SHARE_INFLIGHT: 'off' }),
      await startPeer('stock @apollo/gateway', './gateway.apollo.mjs'),
      await startPeer('Hive Gateway (defaults)', './gateway.hive.mjs'),
      await startPeer('Hive Gateway (dedup off)', './gateway.hive.mjs', { HIVE_DEDUPLICATION: 'off' }),
    ];
    const subgraphPids = SUBGRAPH_PROCESSES.map((name) => running.services.get(name)!.child.pid!);

    // Correctness before any timing: the same data from every gateway.
    const expected = new Map<Shape, Map<string, string>>();
    for (const shape of SHAPES) expected.set(shape, await checkSameData(gateways, shape, project));

    const runs = new Map<string, Run[]>(
      SHAPES.flatMap((shape) => gateways.map((g) => [`${shape.name}/${g.name}`, []] as [string, Run[]])),
    );
    for (let round = 1; round <= ROUNDS; round++) {
      for (const shape of SHAPES) {
        // In rotation: each round starts one gateway further, so that none is always first or last.
        const order = gateways.map((_, i) => gateways[(i + round - 1) % gateways.length]!);
        for (const gateway of order) {
          const run = await measure(
            gateway,
            shape,
            project,
            expected.get(shape)!.get(gateway.name)!,
            subgraphPids,
            round,
          );
          runs.get(`${shape.name}/${gateway.name}`)!.push(run);
          console.log(
            `round ${round}/${ROUNDS}, ${shape.name}, ${gateway.name}: ${run.rps.toFixed(0)} RPS, p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms, gateway ${run.gatewayCpuMs.toFixed(2)} ms CPU/req, subgraphs ${run.subgraphCpuMs.toFixed(2)}, errors ${run.errors + run.non2xx + run.mismatches}`,
          );
        }
      }
    }

    const report = SHAPES.map((shape) => {
      const partial = gateways.map((g) => summarise(g.name, runs.get(`${shape.name}/${g.name}`)!));
      const base = partial[0]!;
      const summaries: Summary[] = partial.map((s) => ({
        ...s,
        ratios: {
          rps: s.rps / base.rps,
          gatewayCpu: s.gatewayCpuMs / base.gatewayCpuMs,
          subgraphCpu: s.subgraphCpuMs / base.subgraphCpuMs,
          p50: s.p50 / base.p50,
        },
      }));
      return { shape, summaries };
    });
    const load1 = loadavg();
    console.log(
      [
        `Gateway benchmark: ${availableParallelism()} cores, Node ${process.version}; load average ${load0[0]!.toFixed(2)} before, ${load1[0]!.toFixed(2)} after`,
        ...report.map(({ shape, summaries }) => table(shape, summaries)),
      ].join('\n\n'),
    );

    await mkdir(dirname(OUT), { recursive: true });
    await writeFile(
      OUT,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          cores: availableParallelism(),
          loadAverage: { before: load0, after: load1 },
          settings: {
            rounds: ROUNDS,
            seconds: SECONDS,
            warmupSeconds: WARMUP_S,
            connections: CONNECTIONS,
            clusters: CLUSTERS,
            subgraphProcesses: SUBGRAPH_PROCESSES,
          },
          shapes: report.map(({ shape, summaries }) => ({ ...shape, gateways: summaries })),
        },
        null,
        2,
      )}\n`,
    );
    console.log(`figures written to ${OUT}`);
  },
  // Set-up (a platform, 20 clusters, three peers), then every run with its warm-up and settling.
  300_000 + ROUNDS * SHAPES.length * 4 * (WARMUP_S + SECONDS + 12) * 1000,
);
