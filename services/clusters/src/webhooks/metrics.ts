import { defineCounter, defineHistogram, REMOTE_CALL_BUCKETS } from '@fleetgraph/kit';
import type { SendResult } from './sender.js';

/** Webhook deliveries: each attempt by event and result, its latency by the answer's class. */
const metrics = {
  attempts: defineCounter<'event' | 'result'>({
    name: 'fleetgraph_webhook_delivery_attempts_total',
    help: 'Attempts at delivering a webhook, by event (CLUSTER_PHASE, ..., TEST) and result (delivered, retrying, failed: failed for good).',
    labelNames: ['event', 'result'],
  }),
  latency: defineHistogram<'status_class'>({
    name: 'fleetgraph_webhook_delivery_duration_seconds',
    help: "Attempts at delivering a webhook, from the request to the answer's status line (or the failure), by the answer's class (2xx, 3xx, 4xx, 5xx, none: refused, unreachable or timed out).",
    labelNames: ['status_class'],
    buckets: REMOTE_CALL_BUCKETS,
  }),
  disabled: defineCounter({
    name: 'fleetgraph_webhooks_disabled_total',
    help: 'Webhooks disabled because their deliveries failed for too long.',
  }),
};

/** Counts one attempt at a delivery: its event, what became of it, and how long it took. */
export function noteAttempt(event: string, result: 'delivered' | 'retrying' | 'failed', sent: SendResult): void {
  const m = metrics;
  m.attempts.inc({ event, result });
  const status = sent.status === null ? 'none' : `${Math.floor(sent.status / 100)}xx`;
  m.latency.observe({ status_class: status }, sent.latencyMs / 1000);
}

/** Counts a webhook disabled. */
export function noteDisabled(): void {
  metrics.disabled.inc();
}
