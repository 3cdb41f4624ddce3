import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Claims,
  DEV_INTERNAL_SECRET,
  DEV_JWT_SECRET,
  SUBGRAPHS,
  signBearer,
  subgraphUrlVariable,
} from '@fleetgraph/kit';
import { type NatsCluster, startNatsCluster } from '@fleetgraph/kit/testing';
import { type GraphQLResponse, postGraphQL } from './platform.js';
import { type ServiceProcess, startProcess } from './processes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface ScaledPlatformOptions {
  /** Replicas of every subgraph service. @default 2 */
  replicas?: number;
  /** Gateways, each over every replica. @default 2 */
  gateways?: number;
  /** The local cloud's speed factor. @default 25 */
  speed?: number;
  /** Extra environment for every process. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The platform as an operator scales it, on one machine: a three-node NATS cluster (JetStream
 * streams on three nodes), `replicas` processes of every service sharing its store (SQLite in WAL
 * mode across processes, as MongoDB would be shared), `gateways` gateways each given every
 * replica's URL, and the local cloud.
 */
export interface ScaledPlatform {
  nats: NatsCluster;
  /** Gateways, in start order. */
  gateways: ServiceProcess[];
  /** Every replica of every service, by service name. */
  replicas: Map<string, ServiceProcess[]>;
  localCloudUrl: string;
  token(claims: Claims, expiresIn?: string | number): Promise<string>;
  /**
   * POSTs an operation to the first gateway that answers, as a client given every gateway's
   * address would (a balancer's job in production).
   */
  graphql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  /** Gateways whose process still runs. */
  liveGateways(): ServiceProcess[];
  stop(): Promise<void>;
}

const running = (p: ServiceProcess) => p.child.exitCode === null && p.child.signalCode === null;

export async function startScaledPlatform(options: ScaledPlatformOptions = {}): Promise<ScaledPlatform> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fleetgraph-scaled-'));
  const nats = await startNatsCluster({ size: 3 });
  const processes: ServiceProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const env: NodeJS.ProcessEnv = {
    NATS_URL: nats.url,
    NATS_STREAM_REPLICAS: '3',
    DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'info',
    NODE_ENV: 'test',
    AUTH_JWT_SECRET: DEV_JWT_SECRET,
    INTERNAL_AUTH_SECRET: DEV_INTERNAL_SECRET,
    MONGODB_URI: '',
    // Suites send from one address, with few callers, faster than any caller would: no rate limits
    // (gateway/src/rate-limits/ tests them).
    RATE_LIMIT_PER_MINUTE: '0',
    RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
    ...options.env,
  };
  const own = async (name: string, service: string) => ({
    ...env,
    NATS_CREDENTIALS: await nats.credentials(name),
    ...(service === 'clusters' ? { NATS_ACCOUNT_SEED: nats.security.accountSeed } : {}),
  });
  const replicas = new Map<string, ServiceProcess[]>();
  const gateways: ServiceProcess[] = [];
  try {
    const cloud = await startProcess('local-cloud', `${root}services/local-cloud/dist/main.js`, {
      ...(await own('local-cloud', 'local-cloud')),
      DATA_DIR: join(dataDir, 'local-cloud'),
      LOCAL_CLOUD_SPEED: String(options.speed ?? 25),
      LOCAL_CLOUD_VCPU_LIMIT: '1024',
    });
    processes.push(cloud);
    env.LOCAL_CLOUD_URL = cloud.url;
    env.LOCAL_CLOUD_SPEED = String(options.speed ?? 25);
    // Replicas start one service at a time: each service's first replica creates its store's tables.
    for (const { name } of SUBGRAPHS) {
      const started: ServiceProcess[] = [];
      for (let i = 1; i <= (options.replicas ?? 2); i++) {
        const replica = await startProcess(
          `${name}-${i}`,
          `${root}services/${name}/dist/main.js`,
          await own(`${name}-${i}`, name),
        );
        processes.push(replica);
        started.push(replica);
      }
      replicas.set(name, started);
    }
    const urls = Object.fromEntries(
      [...replicas].map(([name, list]) => [subgraphUrlVariable(name), list.map((r) => r.url).join(',')]),
    );
    for (let i = 1; i <= (options.gateways ?? 2); i++) {
      const gateway = await startProcess(`gateway-${i}`, `${root}gateway/dist/main.js`, {
        ...(await own(`gateway-${i}`, 'gateway')),
        ...urls,
      });
      processes.push(gateway);
      gateways.push(gateway);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const liveGateways = () => gateways.filter(running);
  return {
    nats,
    gateways,
    replicas,
    localCloudUrl: processes[0]!.url,
    token: (claims, expiresIn) => signBearer(claims, env.AUTH_JWT_SECRET!, expiresIn),
    liveGateways,
    async graphql(query, variables, token) {
      let failure: unknown;
      for (const gateway of liveGateways()) {
        try {
          return await postGraphQL(gateway.url, query, variables, token, AbortSignal.timeout(15_000));
        } catch (error) {
          failure = error;
        }
      }
      throw failure ?? new Error('no gateway runs');
    },
    stop,
  };
}
