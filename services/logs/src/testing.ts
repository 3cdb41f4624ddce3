import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  createLogsPart,
  SimulatedLogSource,
  SimulatedSource,
  startAgent,
  type LogSource,
  type LogsPartOptions,
  type RunningAgent,
  type SimulatedLogOptions,
  type SimulatedNode,
} from '@fleetgraph/agent';
import {
  BusError,
  createBus,
  createLogger,
  createSqliteStore,
  Identity,
  startSubgraphServer,
  type Bus,
  type Claims,
  type RunningServer,
  type Store,
} from '@fleetgraph/kit';
import { freePort, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { getCluster, type ClusterSummary } from '@fleetgraph/schema';
import { graphql, type ExecutionResult, type GraphQLSchema } from 'graphql';
import yauzl from 'yauzl';
import { FileBlobStore } from './adapters/file-blob-store.js';
import type { CollectionSettings } from './app/collections.js';
import { buildLogsSchema } from './schema/index.js';
import { startLogsService, type LogsService, type LogsServiceOptions } from './service.js';

/*
 * Test harness of the logs service: a real nats-server, the service in this process with its
 * HTTP server (download route) and its schema, a stand-in for the clusters service's
 * `clusters.v1.get`, and simulated agents started with the agent's own `startAgent`.
 */

export const TEST_DOWNLOAD_SECRET = 'logs-test-download-secret-of-enough-length';

let counter = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

/** A machine of a simulated cluster. */
export function simulatedNode(
  name: string,
  role: SimulatedNode['role'] = 'WORKER',
  overrides: Partial<SimulatedNode> = {},
): SimulatedNode {
  return {
    name,
    role,
    pool: role === 'CONTROL_PLANE' ? 'control-plane' : 'workers',
    zone: 'local-1a',
    instanceType: role === 'CONTROL_PLANE' ? 't3.medium' : 'm5.large',
    vcpus: 2,
    memoryMiB: role === 'CONTROL_PLANE' ? 4096 : 8192,
    privateIp: `10.0.0.${1 + (++counter % 250)}`,
    runningSince: new Date(Date.now() - 3 * 3600_000).toISOString(),
    ...overrides,
  };
}

/** Nodes of a small cluster: one control plane, `workers` workers. */
export const clusterNodes = (prefix: string, workers = 2) => [
  simulatedNode(`${prefix}-cp-0`, 'CONTROL_PLANE'),
  ...Array.from({ length: workers }, (_, i) => simulatedNode(`${prefix}-worker-${i}`)),
];

export interface Harness {
  nats: NatsServer;
  /** The bus of the test itself (clusters stand-in, raw agents, event consumers). */
  bus: Bus;
  store: Store;
  service: LogsService;
  schema: GraphQLSchema;
  server: RunningServer;
  /** The HTTP origin of the logs service. */
  origin: string;
  /** Makes a cluster known to `clusters.v1.get`. */
  addCluster(overrides?: Partial<ClusterSummary>): ClusterSummary;
  /** Starts a simulated agent for the cluster, with the logs part only; resolves once the NATS server knows its subscription. */
  startAgent(
    cluster: ClusterSummary,
    options?: {
      nodes?: SimulatedNode[];
      logs?: SimulatedLogOptions;
      source?: (simulated: SimulatedSource) => LogSource;
      part?: LogsPartOptions;
    },
  ): Promise<RunningAgent>;
  identity(claims: Omit<Claims, 'sub'>): Identity;
  gql<T = Record<string, any>>(
    identity: Identity,
    source: string,
    variables?: Record<string, unknown>,
  ): Promise<ExecutionResult<T>>;
  stop(): Promise<void>;
}

/** Starts the harness; settings override the collection defaults (small timeouts for tests). */
export async function startHarness(
  options: { settings?: Partial<CollectionSettings>; ttlSeconds?: number; service?: Partial<LogsServiceOptions> } = {},
): Promise<Harness> {
  const log = createLogger('logs-test', 'silent');
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'fleetgraph-logs-test-'));
  const bus = await createBus({
    url: nats.url,
    name: 'clusters',
    log,
    credentials: await nats.credentials('clusters'),
  });
  const serviceBus = await createBus({ url: nats.url, name: 'logs', log, credentials: await nats.credentials('logs') });
  const agentBus = await createBus({
    url: nats.url,
    name: 'agents',
    log,
    credentials: await nats.credentials('agents'),
  });
  const store = createSqliteStore({ file: join(dir, 'logs.sqlite') });
  const blobs = await FileBlobStore.open(join(dir, 'blobs'));

  const clusters = new Map<string, ClusterSummary>();
  bus.serve(getCluster, async ({ tenantId, id }) => {
    const cluster = clusters.get(id);
    if (!cluster || cluster.tenantId !== tenantId) throw new BusError('NOT_FOUND', `cluster ${id} not found`);
    return cluster;
  });

  // The server's port is chosen first, so that the links the service mints point at it.
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const settings: Partial<CollectionSettings> = {
    agentTimeoutMs: 1_000,
    idleTimeoutMs: 2_000,
    window: 4,
    chunkBytes: 16 * 1024,
    sweepMs: 3_600_000,
    ...options.settings,
  };
  const service = await startLogsService({
    store,
    bus: serviceBus,
    blobs,
    log,
    links: { secret: TEST_DOWNLOAD_SECRET, publicUrl: origin, ttlSeconds: options.ttlSeconds ?? 300 },
    settings,
    ...options.service,
  });
  const schema = await buildLogsSchema(service);
  const server = await startSubgraphServer({
    name: 'logs',
    schema,
    log,
    host: '127.0.0.1',
    port,
    internalSecret: 'logs-test-internal-secret',
    readiness: [],
    routes: service.routes,
  });

  const agents: RunningAgent[] = [];
  return {
    nats,
    bus,
    store,
    service,
    schema,
    server,
    origin,
    addCluster(overrides = {}) {
      const cluster: ClusterSummary = {
        id: unique('cls'),
        tenantId: 'tenant-a',
        projectId: 'project-a',
        name: unique('web'),
        phase: 'RUNNING',
        cloud: { type: 'LOCAL', region: 'local-1' },
        nodePools: [],
        ...overrides,
      };
      clusters.set(cluster.id, cluster);
      return cluster;
    },
    async startAgent(cluster, agentOptions = {}) {
      const nodes = agentOptions.nodes ?? clusterNodes(cluster.name);
      const simulated = new SimulatedSource({ nodes: () => nodes });
      const source = agentOptions.source?.(simulated) ?? new SimulatedLogSource(simulated, agentOptions.logs);
      const agent = startAgent({
        bus: agentBus,
        log,
        clusterId: cluster.id,
        tenantId: cluster.tenantId,
        source: simulated,
        parts: [createLogsPart({ source: () => source, creditTimeoutMs: 5_000, ...agentOptions.part })],
      });
      agents.push(agent);
      // The server has the agent's subscription once a round trip went through after it.
      await agentBus.flush();
      return agent;
    },
    identity: (claims) => new Identity({ sub: unique('user'), ...claims }),
    gql: (identity, source, variables) =>
      graphql({
        schema,
        source,
        variableValues: variables,
        contextValue: { identity, requestId: 'test', log },
      }) as Promise<ExecutionResult<never>>,
    async stop() {
      await Promise.allSettled(agents.map((a) => a.stop()));
      await service.stop();
      await server.close();
      await Promise.allSettled([bus.close(), serviceBus.close(), agentBus.close()]);
      await store.close();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `probe` returns a value, or fails after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Every entry of a zip, read as text (test archives are small). */
export async function unzip(archive: Buffer): Promise<Map<string, string>> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.fromBuffer(archive, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z!))),
  );
  const entries = new Map<string, string>();
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      zip.openReadStream(entry, async (err, stream) => {
        if (err || !stream) return reject(err);
        const chunks: Buffer[] = [];
        for await (const chunk of Readable.from(stream)) chunks.push(chunk as Buffer);
        entries.set(entry.fileName, Buffer.concat(chunks).toString('utf8'));
        zip.readEntry();
      });
    });
    zip.readEntry();
  });
  return entries;
}
