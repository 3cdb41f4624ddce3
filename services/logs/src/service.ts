import { randomUUID } from 'node:crypto';
import { createOutbox, type Bus, type Logger, type Outbox, type Store } from '@fleetgraph/kit';
import { LOG_BUNDLES_STREAM, logBundleChanged } from '@fleetgraph/schema';
import type { Express } from 'express';
import { serveBundleNodes } from './adapters/bundle.bus.js';
import { mintLinksOnPublish } from './adapters/bundle.events.js';
import { BundleRepository } from './adapters/bundle.repo.js';
import { collectionSources } from './adapters/collection-sources.js';
import { storeCollectionSlots } from './adapters/collection-slots.js';
import { DownloadLinks, type DownloadLinksOptions } from './adapters/download-links.js';
import { downloadRoutes } from './adapters/download.route.js';
import { DEFAULT_COLLECTION_SETTINGS, LogCollections, type LogCollectionsDeps } from './app/collections.js';
import type { BlobStore } from './domain/blob-store.js';

export interface LogsServiceOptions {
  store: Store;
  bus: Bus;
  blobs: BlobStore;
  log: Logger;
  links: DownloadLinksOptions;
  settings?: LogCollectionsDeps['settings'];
  replicaId?: string;
  onCollection?: LogCollectionsDeps['onCollection'];
}

/** The logs service without its HTTP server: what the schema and the download route use. */
export interface LogsService {
  bundles: BundleRepository;
  collections: LogCollections;
  links: DownloadLinks;
  blobs: BlobStore;
  /** Publishes the bundles' status changes, stored with them. */
  outbox: Outbox;
  /** Mounts GET /logs/download/... on the subgraph server. */
  routes: (app: Express) => void;
  stop(): Promise<void>;
}

/** Wires the service: its collection, the LOG_BUNDLES stream, the collections and their sweeps, `logs.v1.node.LogBundle`. */
export async function startLogsService(options: LogsServiceOptions): Promise<LogsService> {
  const { store, bus, blobs, log } = options;
  await bus.ensureStreams([LOG_BUNDLES_STREAM]);
  const outbox = await createOutbox({ store, bus, log, events: [logBundleChanged] });
  const bundles = await BundleRepository.open(store, outbox);
  const links = new DownloadLinks(options.links);
  mintLinksOnPublish(outbox, links, (id) => bundles.get(id));
  serveBundleNodes(bus, bundles);
  const settings = { ...DEFAULT_COLLECTION_SETTINGS, ...options.settings };
  const replicaId = options.replicaId ?? `logs-${randomUUID()}`;
  // The limits hold for the service, however many replicas share its store.
  const slots = await storeCollectionSlots({
    store,
    owner: replicaId,
    limits: { total: settings.maxConcurrent, perCluster: settings.maxConcurrentPerCluster },
    leaseMs: settings.leaseMs,
    countQueued: () => bundles.countQueued(),
  });
  const collections = new LogCollections({
    bundles,
    blobs,
    ...collectionSources(bus),
    log,
    settings,
    slots,
    replicaId,
    onCollection: options.onCollection,
  });
  outbox.start();
  collections.start();
  return {
    bundles,
    collections,
    links,
    blobs,
    outbox,
    routes: downloadRoutes({ links, bundles, blobs, log }),
    async stop() {
      await collections.stop();
      await outbox.stop();
    },
  };
}
