import type { Bus, Listening, Logger } from '@fleetgraph/kit';
import { agentReport, getCluster, type AgentReport } from '@fleetgraph/schema';
import { agentReportCheck } from '../ingest/checks.js';
import { ReportOutcome, type HealthIngest } from '../ingest/ingest.js';
import type { ClusterRegistry } from '../ingest/registry.js';

export interface ReportsOptions {
  /**
   * Where a report of a cluster the registry does not know is checked with the clusters service
   * (`clusters.v1.get`): a lifecycle message this replica missed must not leave a cluster without
   * health for good. Without it, such reports are dropped.
   */
  recovery?: { registry: ClusterRegistry; log: Logger; retryAfterMs?: number };
}

/**
 * `agentReport` with its schema checked by hand where it can be (`agentReportCheck`): the same
 * reports taken, the same refused with the same errors, without zod's copy of each.
 */
const agentReports = { ...agentReport, schema: agentReportCheck };

/**
 * Receives `agentReport` (`agent.v1.*.report`, core NATS) into the ingest, every report on
 * every replica. The bus validates each message (`agentReportCheck`) and the ingest applies it in
 * the subscription callback, synchronously: no per-report await, so the event loop only ever
 * queues raw messages. A message that is not a report is counted by the ingest as `malformed`
 * and dropped.
 *
 * A report of a cluster the registry does not know starts one lookup of that cluster at the
 * clusters service; when it exists, it is registered and the report applied. An id the clusters
 * service does not know is not asked about again for `retryAfterMs` (a deleted cluster's agent
 * keeps reporting until its credentials expire).
 */
export function subscribeReports(bus: Bus, ingest: HealthIngest, options: ReportsOptions = {}): Listening {
  const { recovery } = options;
  const asking = new Set<string>();
  const unknownUntil = new Map<string, number>();

  const recover = async (subject: string, report: AgentReport) => {
    if (!recovery) return;
    const { registry, log } = recovery;
    const { clusterId, tenantId } = report;
    if (asking.has(clusterId) || (unknownUntil.get(clusterId) ?? 0) > Date.now()) return;
    asking.add(clusterId);
    try {
      const cluster = await bus.request(getCluster, { tenantId, id: clusterId });
      if (cluster.phase === 'DELETED') throw Object.assign(new Error('deleted'), { code: 'NOT_FOUND' });
      // A lifecycle message that arrived meanwhile is as new or newer: keep it.
      if (!registry.get(clusterId)) {
        registry.apply(cluster);
        log.info({ clusterId, tenantId }, 'cluster learnt from its first report (its lifecycle message was missed)');
      }
      ingest.acceptReport(subject, report);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== 'NOT_FOUND') log.warn({ err: error, clusterId }, 'could not look up the cluster of a report');
      unknownUntil.set(clusterId, Date.now() + (recovery.retryAfterMs ?? 60_000));
      if (unknownUntil.size > 10_000) unknownUntil.delete(unknownUntil.keys().next().value!);
    } finally {
      asking.delete(clusterId);
    }
  };

  // No queue group: every replica takes every report, so that each judges every cluster alike.
  return bus.listen(agentReports, {
    handle: (report, subject) => {
      if (ingest.acceptReport(subject, report) === ReportOutcome.unknown_cluster) void recover(subject, report);
    },
    malformed: (error, subject) => ingest.reject(subject, error),
  });
}
