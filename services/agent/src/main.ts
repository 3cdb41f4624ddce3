/**
 * The agent of one real cluster, as its Deployment runs it (`node services/agent/dist/main.js`):
 * reads its Secret from the environment, watches the cluster's Kubernetes API, connects to the
 * platform's NATS as its own user (renewing its JWT), and runs its parts until SIGTERM.
 */
import {
  ConfigError,
  createLogger,
  exitOnStartupFailure,
  onShutdown,
  startTracing,
  type Logger,
} from '@fleetgraph/kit/core';
import { startAgent } from './agent.js';
import { connectAgent } from './connection.js';
import { loadAgentEnv, type AgentEnv } from './env.js';
import { currentNamespace, keepCredentialsInSecret, KubernetesSource, loadKubeConfig } from './kubernetes-source.js';
import { logsPart } from './logs/logs.part.js';
import { reportsPart } from './reports.js';
import { SimulatedSource } from './simulated.js';
import type { AgentSource } from './source.js';

interface OpenedSource {
  source: AgentSource;
  /** Where renewed credentials are kept for a restart; none outside a cluster. */
  keepCredentials?: (creds: string) => Promise<void>;
  close(): Promise<void>;
}

/** The source AGENT_SOURCE names: the cluster's Kubernetes API (watched), or a small simulated cluster. */
async function openSource(env: AgentEnv, log: Logger): Promise<OpenedSource> {
  if (env.source === 'simulated') {
    const startedAt = new Date().toISOString();
    const source = new SimulatedSource({
      nodes: () => [
        {
          name: 'simulated-cp-1',
          role: 'CONTROL_PLANE',
          pool: 'control-plane',
          zone: 'local-1a',
          instanceType: 't3.medium',
          vcpus: 2,
          memoryMiB: 4096,
          privateIp: '10.0.0.10',
          runningSince: startedAt,
        },
      ],
    });
    return { source, close: async () => undefined };
  }
  const { kubeConfig, inCluster } = loadKubeConfig();
  const source = new KubernetesSource({ kubeConfig });
  log.info({ server: kubeConfig.getCurrentCluster()?.server, inCluster }, 'watching the cluster');
  await source.start();
  const secret =
    inCluster && env.credentialsSecret
      ? { namespace: currentNamespace(kubeConfig), name: env.credentialsSecret }
      : null;
  return {
    source,
    ...(secret ? { keepCredentials: keepCredentialsInSecret(kubeConfig, secret) } : {}),
    close: () => source.stop(),
  };
}

async function main(): Promise<void> {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('agent');
  let env: AgentEnv;
  try {
    env = loadAgentEnv();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`agent: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger('agent', env.logLevel);
  const { clusterId, tenantId } = env;
  let opened: OpenedSource;
  try {
    opened = await openSource(env, log);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`agent: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const connection = await connectAgent({
    url: env.natsUrl,
    clusterId,
    log,
    credentials: env.credentials,
    renewal: { ...(opened.keepCredentials ? { onRenewed: opened.keepCredentials } : {}) },
  });
  log.info(
    {
      clusterId,
      tenantId,
      source: env.source,
      credentialsExpireAt: connection.credentials?.expiresAt?.toISOString() ?? null,
    },
    'agent connected',
  );
  const agent = startAgent({
    bus: connection.bus,
    log,
    clusterId,
    tenantId,
    source: opened.source,
    parts: [logsPart, reportsPart({ intervalMs: env.reportIntervalMs })],
  });

  // NATS refusing the agent for good (its JWT expired unrenewed) ends the process: its
  // Deployment restarts it, visibly, rather than leaving a silent agent.
  const watchdog = setInterval(() => {
    if (!connection.bus.closed) return;
    log.fatal({ clusterId, renewal: connection.renewal?.state ?? null }, 'the NATS connection is closed for good');
    process.exit(1);
  }, 5_000);
  watchdog.unref();

  onShutdown(log, [
    async () => clearInterval(watchdog),
    () => agent.stop(),
    () => connection.close(),
    () => opened.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('agent')));
