import type { Outbox } from '@fleetgraph/kit';
import { logBundleChanged, type LogBundleMessage } from '@fleetgraph/schema';
import type { LogBundle } from '../domain/bundle.js';
import type { DownloadLinks } from './download-links.js';

/**
 * The bundle as it travels on `logs.v1.bundles.<tenantId>.<bundleId>` (the `logBundle`
 * subscription): the GraphQL `LogBundle`'s fields plus its tenant and project. It is written to
 * the outbox with the change, without its download link, which `mintLinksOnPublish` adds when
 * the event goes out.
 */
export function toMessage(bundle: LogBundle, downloadUrl: string | null = null): LogBundleMessage {
  return {
    id: bundle.id,
    tenantId: bundle.tenantId,
    projectId: bundle.projectId,
    clusterId: bundle.clusterId,
    status: bundle.status,
    message: bundle.message,
    fileName: bundle.fileName,
    sizeBytes: bundle.sizeBytes,
    downloadUrl,
    requestedAt: bundle.requestedAt,
    readyAt: bundle.readyAt,
  };
}

/**
 * Download links live minutes: one minted when a change was stored could be dead by the time
 * a NATS outage ends. Each READY event gets a link minted as it is published, from the bundle
 * as stored then (none once the bundle expired or is gone).
 */
export function mintLinksOnPublish(
  outbox: Outbox,
  links: DownloadLinks,
  lookup: (id: string) => Promise<LogBundle | null>,
): void {
  outbox.beforePublish(logBundleChanged, async (message) => {
    if (message.status !== 'READY') return message;
    const bundle = await lookup(message.id);
    return { ...message, downloadUrl: bundle ? await links.urlFor(bundle) : null };
  });
}
