import type { Bus, Logger, Outbox, Store } from '@fleetgraph/kit';
import {
  clusterHealthChanged,
  clusterUsageSampled,
  fleetHealth,
  type ClusterHealthMessage,
  type ClusterUsageMessage,
  type FleetHealthMessage,
} from '@fleetgraph/schema';
import { fleetMessageCheck, usageMessageCheck } from '../ingest/checks.js';
import type { HealthPublisher } from '../ingest/ports.js';

/** The two events sent at every report, their schemas checked by hand where they can be (checks.ts). */
const usageSampled = { ...clusterUsageSampled, schema: usageMessageCheck };
const fleetHealthSent = { ...fleetHealth, schema: fleetMessageCheck };

/**
 * Publishes health changes and usage samples to JetStream for subscriptions:
 *
 * - a health change (rare) through the outbox, to `health.v1.status.<tenantId>.<clusterId>`: stored
 *   at once, published in order per cluster, retried until NATS takes it (a NATS outage delays
 *   health changes, loses none);
 * - a usage sample (one per report and scope: thousands a second for a large fleet) sent with
 *   `bus.send` (core NATS, no acknowledgement) on `health.v1.metrics.<tenantId>.<clusterId>.<scope>`,
 *   which the HEALTH_METRICS stream stores all the same; not waiting for an acknowledgement keeps
 *   the report path cheap, and a sample lost is replaced by the next one within an interval.
 *   Samples are sent in batches every `batchMs`, so that a thousand samples cost one socket
 *   write, not a thousand;
 * - a cluster's fleet health (its status and usage, for `Subscription.fleetHealth`), sent likewise
 *   on `health.v1.fleet.<tenantId>.<projectId>.<clusterId>`; a deleted cluster's is purged.
 */
export class NatsHealthPublisher implements HealthPublisher {
  readonly #inFlight = new Set<Promise<unknown>>();
  #failures = 0;
  #samples: ClusterUsageMessage[] = [];
  #fleet: FleetHealthMessage[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly outbox: Outbox,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly batchMs = 50,
  ) {}

  /** Usage sample batches and health changes that could not be sent or stored since start (health changes in the outbox waiting for NATS are not failures). */
  get failures(): number {
    return this.#failures + this.outbox.stats.dropped;
  }

  health(message: ClusterHealthMessage): void {
    const stored = this.store
      .commit([this.outbox.add(clusterHealthChanged, message, { key: message.clusterId })])
      .then(() => this.outbox.kick())
      .catch((error: unknown) => {
        this.#failures++;
        this.log.error({ err: error, clusterId: message.clusterId }, 'could not store a health change for publishing');
      })
      .finally(() => this.#inFlight.delete(stored));
    this.#inFlight.add(stored);
  }

  usage(message: ClusterUsageMessage): void {
    this.#samples.push(message);
    this.#timer ??= setTimeout(() => this.#sendSamples(), this.batchMs);
  }

  fleet(message: FleetHealthMessage): void {
    this.#fleet.push(message);
    this.#timer ??= setTimeout(() => this.#sendSamples(), this.batchMs);
  }

  forget(cluster: { tenantId: string; projectId: string; clusterId: string }): void {
    const subject = fleetHealth.filter(cluster.tenantId, cluster.projectId, cluster.clusterId);
    const purged = (async () => {
      const manager = await this.bus.manager();
      await manager.streams.purge(fleetHealth.stream, { filter: subject });
    })()
      .catch((error: unknown) =>
        this.log.warn({ err: error, subject }, "could not remove a deleted cluster's fleet health"),
      )
      .finally(() => this.#inFlight.delete(purged));
    this.#inFlight.add(purged);
  }

  #sendSamples(): void {
    this.#timer = undefined;
    const samples = this.#samples;
    const fleet = this.#fleet;
    this.#samples = [];
    this.#fleet = [];
    let failed: unknown;
    for (const message of samples) {
      try {
        this.bus.send(usageSampled, message);
      } catch (error) {
        failed ??= error;
      }
    }
    for (const message of fleet) {
      try {
        this.bus.send(fleetHealthSent, message);
      } catch (error) {
        failed ??= error;
      }
    }
    if (failed !== undefined) {
      this.#failures++;
      this.log.error({ err: failed, samples: samples.length }, 'could not publish usage samples');
    }
  }

  /** Sends the samples waiting and waits for the health changes still being stored in the outbox. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#sendSamples();
    await Promise.allSettled([...this.#inFlight]);
  }
}
