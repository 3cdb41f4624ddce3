import type { Logger } from '@fleetgraph/kit';
import { agentReport } from '@fleetgraph/schema';
import type { NatsConnection, Subscription } from 'nats';
import type { HealthIngest } from '../ingest/ingest.js';

/**
 * Receives `agent.v1.*.report` (core NATS) into the ingest. Each message is applied in the
 * subscription callback, synchronously: no per-report await, so the event loop only ever
 * queues raw messages.
 */
export function subscribeReports(connection: NatsConnection, ingest: HealthIngest, log: Logger): Subscription {
  return connection.subscribe(agentReport.wildcard, {
    queue: 'health',
    callback: (error, message) => {
      if (error) {
        log.error({ err: error }, 'agent report subscription error');
        return;
      }
      try {
        ingest.accept(message.subject, message.data);
      } catch (failure) {
        log.error({ err: failure, subject: message.subject }, 'agent report could not be applied');
      }
    },
  });
}
