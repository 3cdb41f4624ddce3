import { createHash } from 'node:crypto';
import type { Bus, Logger } from '@fleetgraph/kit';
import { logBundleChanged, type LogBundleMessage } from '@fleetgraph/schema';
import type { LogBundle } from '../domain/bundle.js';
import type { DownloadLinks } from './download-links.js';

/** The bundle as it travels: the GraphQL `LogBundle`'s fields plus its tenant and project. */
export async function toMessage(bundle: LogBundle, links: DownloadLinks): Promise<LogBundleMessage> {
  return {
    id: bundle.id,
    tenantId: bundle.tenantId,
    projectId: bundle.projectId,
    clusterId: bundle.clusterId,
    status: bundle.status,
    message: bundle.message,
    fileName: bundle.fileName,
    sizeBytes: bundle.sizeBytes,
    downloadUrl: await links.urlFor(bundle),
    requestedAt: bundle.requestedAt,
    readyAt: bundle.readyAt,
  };
}

/**
 * Publishes every status change on `logs.v1.bundles.<tenantId>.<bundleId>` (JetStream), which the
 * gateway serves as the `logBundle` subscription. The change is stored first: a failed publish is
 * logged, never undoes it.
 */
export class BundleEvents {
  constructor(
    private readonly bus: Bus,
    private readonly links: DownloadLinks,
    private readonly log: Logger,
  ) {}

  async publish(bundle: LogBundle): Promise<void> {
    try {
      const message = await toMessage(bundle, this.links);
      // A retried publish of the same change is dropped; the link is left out, as every publish mints a new one.
      const change = createHash('sha256').update(JSON.stringify({ ...message, downloadUrl: null })).digest('base64url');
      await this.bus.publish(logBundleChanged, message, { msgId: `${bundle.id}-${change}` });
    } catch (error) {
      this.log.error({ err: error, bundleId: bundle.id, status: bundle.status }, 'could not publish the log bundle status');
    }
  }
}
