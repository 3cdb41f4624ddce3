import type { Bus, Logger } from '@fleetgraph/kit';
import { clusterHealthChanged, clusterUsageSampled, type ClusterHealthMessage, type ClusterUsageMessage } from '@fleetgraph/schema';
import type { HealthPublisher } from '../ingest/ports.js';

const encoder = new TextEncoder();

/**
 * Publishes health changes and usage samples to JetStream for subscriptions:
 *
 * - a health change (rare) with an acknowledged publish on `health.v1.status.<tenantId>.<clusterId>`;
 * - a usage sample (one per report and scope: thousands a second for a large fleet) as a plain
 *   NATS publish on `health.v1.metrics.<tenantId>.<clusterId>.<scope>`, which the HEALTH_METRICS
 *   stream stores all the same; not waiting for an acknowledgement keeps the report path cheap,
 *   and a sample lost is replaced by the next one within an interval. Samples are sent in
 *   batches every `batchMs`, so that a thousand samples cost one socket write, not a thousand.
 */
export class NatsHealthPublisher implements HealthPublisher {
  readonly #inFlight = new Set<Promise<unknown>>();
  #failures = 0;
  #samples: ClusterUsageMessage[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly batchMs = 50,
  ) {}

  /** Publishes that failed since start. */
  get failures(): number {
    return this.#failures;
  }

  health(message: ClusterHealthMessage): void {
    const published = this.bus
      .publish(clusterHealthChanged, message)
      .catch((error: unknown) => {
        this.#failures++;
        this.log.error({ err: error, clusterId: message.clusterId }, 'could not publish a health change');
      })
      .finally(() => this.#inFlight.delete(published));
    this.#inFlight.add(published);
  }

  usage(message: ClusterUsageMessage): void {
    this.#samples.push(message);
    this.#timer ??= setTimeout(() => this.#sendSamples(), this.batchMs);
  }

  #sendSamples(): void {
    this.#timer = undefined;
    const samples = this.#samples;
    this.#samples = [];
    try {
      for (const message of samples) this.bus.connection.publish(clusterUsageSampled.subject(message), encoder.encode(JSON.stringify(message)));
    } catch (error) {
      this.#failures++;
      this.log.error({ err: error, samples: samples.length }, 'could not publish usage samples');
    }
  }

  /** Sends the samples waiting and waits for the health changes still being published. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#sendSamples();
    await Promise.allSettled([...this.#inFlight]);
  }
}
