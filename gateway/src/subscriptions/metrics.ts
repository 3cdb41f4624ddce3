import { createMetricsRegistry } from '@fleetgraph/kit/core';
import type { Registry } from 'prom-client';

/** The numbers the subscription engine keeps; `/metrics` reads them at each scrape. */
export interface SubscriptionStats {
  /** WebSocket connections that passed `connection_init`. */
  connections: number;
  /** Subscriptions started and not yet ended. */
  subscriptions: number;
  /**
   * NATS (JetStream) consumers open: one per watched subject or per pattern read whole, plus one
   * per subscription still replaying.
   */
  consumers: number;
  /** `next` frames sent to clients since start. */
  delivered: number;
  /** Executions of a selection over an event since start (one per event per distinct selection). */
  executions: number;
  /** Messages received from NATS since start (shared consumers, replays and last-message reads). */
  messages: number;
  /** Authorisation queries run through the federated query path (identical ones in flight run once). */
  authorisations: number;
  /** Subscribes granted by an authorisation remembered (see SUBSCRIPTION_AUTHORIZATION_MEMORY_MS). */
  authorisationsRemembered: number;
  /** Connections closed because they stopped reading. */
  slowConsumers: number;
  /** Subscriptions ended with an error because the events of their subject could not be read. */
  failed: number;
  /** Events skipped because they were not a JSON object. */
  malformed: number;
  /** The most bytes seen waiting in one socket's send buffer right after a send. */
  maxBufferedBytes: number;
}

/**
 * A Prometheus registry with the engine's metrics, served after the process's (the kit's
 * `metricsHandler`). Gauges and counters are read from `stats` at each scrape, so they never drift
 * from the engine's state.
 */
export function createSubscriptionMetrics(stats: () => SubscriptionStats): Registry {
  const metrics = createMetricsRegistry();
  const gauge = (name: string, help: string, read: (s: SubscriptionStats) => number) =>
    metrics.gauge(name, help, () => read(stats()));
  const counter = (name: string, help: string, read: (s: SubscriptionStats) => number) =>
    metrics.counter(name, help, () => read(stats()));
  gauge(
    'fleetgraph_subscription_connections',
    'Open graphql-ws connections that passed connection_init.',
    (s) => s.connections,
  );
  gauge('fleetgraph_subscriptions_open', 'Open subscriptions.', (s) => s.subscriptions);
  gauge(
    'fleetgraph_subscription_nats_consumers',
    'Open JetStream consumers serving subscriptions.',
    (s) => s.consumers,
  );
  counter(
    'fleetgraph_subscription_events_delivered_total',
    'Events delivered to subscribers (next frames sent).',
    (s) => s.delivered,
  );
  counter(
    'fleetgraph_subscription_executions_total',
    'Selection executions over events (one per event per distinct selection).',
    (s) => s.executions,
  );
  counter(
    'fleetgraph_subscription_nats_messages_total',
    'Messages received from JetStream for subscriptions.',
    (s) => s.messages,
  );
  counter(
    'fleetgraph_subscription_authorisations_total',
    'Authorisation queries run for subscribes (identical ones in flight run once).',
    (s) => s.authorisations,
  );
  counter(
    'fleetgraph_subscription_authorisations_remembered_total',
    'Subscribes granted by an authorisation remembered from an earlier query of the same caller and entity.',
    (s) => s.authorisationsRemembered,
  );
  counter(
    'fleetgraph_subscription_slow_consumers_total',
    'Connections closed because the client stopped reading.',
    (s) => s.slowConsumers,
  );
  counter(
    'fleetgraph_subscriptions_failed_total',
    'Subscriptions ended with an error because the events of their subject could not be read (NATS).',
    (s) => s.failed,
  );
  counter(
    'fleetgraph_subscription_malformed_events_total',
    'Events skipped by subscriptions because they were not a JSON object.',
    (s) => s.malformed,
  );
  return metrics.registry;
}
