import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEV_INTERNAL_SECRET,
  DEV_JWT_SECRET,
  generateNatsKeys,
  serviceCredentials,
  signBearer,
  SUBGRAPHS,
  subgraphUrlVariable,
  type Claims,
} from '@fleetgraph/kit';
import { freePort, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { localCloudAdmin } from '@fleetgraph/local-cloud';
import { startProcess, type ServiceProcess } from './processes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: unknown[] }[];
}

export interface Platform {
  gatewayUrl: string;
  natsUrl: string;
  /** The current nats-server (a new one after `restartNats`). */
  readonly nats: NatsServer;
  /** Stops nats-server, waits `downMs`, and starts it again on the same port with the same JetStream storage. */
  restartNats(downMs: number): Promise<void>;
  services: Map<string, ServiceProcess>;
  /** The local cloud's URL and admin API (quota, faults). */
  localCloudUrl: string;
  localCloud: ReturnType<typeof localCloudAdmin>;
  /** The environment every service was started with (NATS_URL, DATA_DIR, secrets, ...), less each one's own NATS credentials. */
  env: NodeJS.ProcessEnv;
  /** NATS credentials of a process of the platform named `name` (every connection authenticates). */
  credentials(name: string): Promise<string>;
  /** `env` with the NATS credentials of a process named `name`: what a process started by a test needs. */
  envFor(name: string): Promise<NodeJS.ProcessEnv>;
  /** A bearer token for the claims, signed with the platform's JWT secret. */
  token(claims: Claims, expiresIn?: string | number): Promise<string>;
  /** POSTs an operation to the gateway. */
  graphql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  stop(): Promise<void>;
}

/**
 * Starts a real platform for a test suite: its own nats-server on a free port, every subgraph
 * service and the gateway as built processes (`pnpm build` first), each with PORT=0, in a
 * fresh DATA_DIR.
 */
export interface PlatformOptions {
  /** Extra environment for every service. */
  env?: NodeJS.ProcessEnv;
  /** The local cloud's speed factor and vCPU quota. @default speed 1000, quota 256 */
  localCloud?: { speed?: number; vcpuLimit?: number };
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fleetgraph-e2e-'));
  const natsDir = join(dataDir, 'nats');
  await mkdir(natsDir);
  // NATS authenticates every connection, as in production: each process has its own user.
  const security = generateNatsKeys();
  let nats = await startNatsServer({ storeDir: natsDir, security });
  const credentials = (name: string) => serviceCredentials(security, name);
  const envFor = async (name: string): Promise<NodeJS.ProcessEnv> => ({
    ...env,
    NATS_CREDENTIALS: await credentials(name),
  });
  const env: NodeJS.ProcessEnv = {
    NATS_URL: nats.url,
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
  const services = new Map<string, ServiceProcess>();
  const stopAll = async () => {
    await Promise.all([...services.values()].map((s) => s.stop()));
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // The local cloud runs beside the platform, as a real cloud is outside it.
    const cloud = await startProcess('local-cloud', `${root}services/local-cloud/dist/main.js`, {
      ...(await envFor('local-cloud')),
      DATA_DIR: join(dataDir, 'local-cloud'),
      LOCAL_CLOUD_SPEED: String(options.localCloud?.speed ?? 1000),
      LOCAL_CLOUD_VCPU_LIMIT: String(options.localCloud?.vcpuLimit ?? 256),
    });
    services.set('local-cloud', cloud);
    env.LOCAL_CLOUD_URL = cloud.url;
    // Services that simulate work on the local cloud (image builds) run at its speed.
    env.LOCAL_CLOUD_SPEED = String(options.localCloud?.speed ?? 1000);
    // The gateway's address is chosen first, so that services can hand out links to it (log downloads).
    const gatewayPort = await freePort();
    env.PUBLIC_URL ??= `http://127.0.0.1:${gatewayPort}/graphql`;
    // Every start is awaited, failed or not, so that a failure leaves no process running.
    // The clusters service mints its clusters' agents' credentials: it holds the account key.
    const own = async (name: string) => ({
      ...(await envFor(name)),
      ...(name === 'clusters' ? { NATS_ACCOUNT_SEED: security.accountSeed } : {}),
    });
    const outcomes = await Promise.allSettled(
      SUBGRAPHS.map(async (s) => startProcess(s.name, `${root}services/${s.name}/dist/main.js`, await own(s.name))),
    );
    const started = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    for (const s of started) services.set(s.name, s);
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    const urls = Object.fromEntries(started.map((s) => [subgraphUrlVariable(s.name), s.url]));
    const gateway = await startProcess('gateway', `${root}gateway/dist/main.js`, {
      ...(await envFor('gateway')),
      ...urls,
      PORT: String(gatewayPort),
    });
    services.set('gateway', gateway);
    await waitReady(gateway.url);
  } catch (error) {
    await stopAll();
    throw error;
  }
  const gatewayUrl = services.get('gateway')!.url;
  const localCloudUrl = services.get('local-cloud')!.url;
  return {
    gatewayUrl,
    localCloudUrl,
    localCloud: localCloudAdmin(localCloudUrl),
    natsUrl: nats.url,
    get nats() {
      return nats;
    },
    async restartNats(downMs) {
      await nats.stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      nats = await startNatsServer({ storeDir: natsDir, port: nats.port, security });
    },
    services,
    env,
    credentials,
    envFor,
    token: (claims, expiresIn) => signBearer(claims, env.AUTH_JWT_SECRET!, expiresIn),
    graphql: (query, variables, token) => postGraphQL(gatewayUrl, query, variables, token),
    stop: stopAll,
  };
}

/** POSTs an operation to a gateway; its status and its GraphQL body. */
export async function postGraphQL<T = Record<string, any>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string,
  signal?: AbortSignal,
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    ...(signal ? { signal } : {}),
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, 'status'>;
  return { status: response.status, ...body };
}

async function waitReady(graphqlUrl: string, timeoutMs = 60_000): Promise<void> {
  const url = new URL('/readyz', graphqlUrl);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
      last = await response.text();
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gateway not ready after ${timeoutMs} ms: ${last}`);
}
