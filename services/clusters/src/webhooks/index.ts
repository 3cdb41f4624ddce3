import type { Bus, Logger, Store } from '@fleetgraph/kit';
import type { ClusterRepository } from '../adapters/cluster.repo.js';
import type { Sealer } from '../bootstrap/sealed.js';
import type { Env } from '../env.js';
import { createAddressPolicy } from './address-policy.js';
import { WebhookDispatcher } from './dispatcher.js';
import { startWebhookIntake, type WebhookIntake } from './intake.js';
import type { WebhookResolverDeps } from './webhook.resolver.js';
import { WebhookRepository } from './webhook.repo.js';

export interface WebhooksOptions {
  env: Pick<
    Env,
    | 'WEBHOOK_ALLOWED_CIDRS'
    | 'WEBHOOK_TIMEOUT_MS'
    | 'WEBHOOK_BACKOFF_BASE_MS'
    | 'WEBHOOK_BACKOFF_CAP_MS'
    | 'WEBHOOK_DISABLE_AFTER_MS'
    | 'WEBHOOK_ORDER_WINDOW_MS'
    | 'WEBHOOK_POLL_MS'
    | 'WEBHOOK_LEASE_MS'
    | 'WEBHOOK_CONCURRENCY'
  >;
  store: Store;
  bus: Bus;
  /** Where clusters' projects are looked up, and where a disabled webhook is recorded as a cluster event. */
  clusters: ClusterRepository;
  /** Seals signing secrets at rest (the cluster secrets' key). */
  sealer: Sealer;
  log: Logger;
}

export interface Webhooks {
  resolverDeps: WebhookResolverDeps;
  /** Starts consuming events and sending deliveries. */
  start(): void;
  stop(): Promise<void>;
}

/** Projects of clusters looked up at most this many at once in memory (a cluster never changes project). */
const PROJECT_CACHE = 10_000;

/**
 * Outbound webhooks, wired: the repository, the durable consumers that queue deliveries, and the
 * dispatcher that sends them.
 */
export async function startWebhooks(options: WebhooksOptions): Promise<Webhooks> {
  const { env, store, bus, clusters, sealer, log } = options;
  const repo = await WebhookRepository.open(store, sealer);
  const policy = createAddressPolicy(env.WEBHOOK_ALLOWED_CIDRS);
  const dispatcher = new WebhookDispatcher({
    repo,
    policy,
    log,
    retry: {
      baseMs: env.WEBHOOK_BACKOFF_BASE_MS,
      capMs: env.WEBHOOK_BACKOFF_CAP_MS,
      giveUpAfterMs: env.WEBHOOK_DISABLE_AFTER_MS,
    },
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    pollMs: env.WEBHOOK_POLL_MS,
    leaseMs: env.WEBHOOK_LEASE_MS,
    concurrency: env.WEBHOOK_CONCURRENCY,
    onDisabled: async (webhook, delivery) => {
      if (!delivery.clusterId) return;
      await clusters.record({
        tenantId: webhook.tenantId,
        clusterId: delivery.clusterId,
        time: new Date().toISOString(),
        severity: 'WARNING',
        reason: 'WebhookDisabled',
        message: `webhook ${webhook.id} (${new URL(webhook.url).host}) was disabled: ${webhook.disabledReason}`.slice(
          0,
          2000,
        ),
        object: `webhook/${webhook.id}`,
      });
    },
  });
  const projects = new Map<string, { tenantId: string; projectId: string }>();
  let intake: WebhookIntake | undefined;
  return {
    resolverDeps: { repo, policy, poke: () => dispatcher.poke(), testWaitMs: env.WEBHOOK_TIMEOUT_MS + 1_000 },
    start() {
      intake = startWebhookIntake({
        bus,
        repo,
        log,
        orderWindowMs: env.WEBHOOK_ORDER_WINDOW_MS,
        projectOf: async (tenantId, clusterId) => {
          let known = projects.get(clusterId);
          if (!known) {
            const stored = await clusters.getSpec(clusterId);
            if (!stored) return null;
            if (projects.size >= PROJECT_CACHE) projects.clear();
            known = { tenantId: stored.spec.tenantId, projectId: stored.spec.projectId };
            projects.set(clusterId, known);
          }
          return known.tenantId === tenantId ? known.projectId : null;
        },
      });
      dispatcher.start();
    },
    async stop() {
      await intake?.stop();
      await dispatcher.stop();
    },
  };
}
