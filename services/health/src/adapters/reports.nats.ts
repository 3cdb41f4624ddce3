import type { Bus, Listening } from '@fleetgraph/kit';
import { agentReport } from '@fleetgraph/schema';
import type { HealthIngest } from '../ingest/ingest.js';

/**
 * Receives `agentReport` (`agent.v1.*.report`, core NATS) into the ingest, within the `health`
 * queue group. The bus validates each message and the ingest applies it in the subscription
 * callback, synchronously: no per-report await, so the event loop only ever queues raw messages.
 * A message that is not a report is counted by the ingest as `malformed` and dropped.
 */
export function subscribeReports(bus: Bus, ingest: HealthIngest): Listening {
  return bus.listen(agentReport, {
    queue: 'health',
    handle: (report, subject) => ingest.acceptReport(subject, report),
    malformed: (error, subject) => ingest.reject(subject, error),
  });
}
