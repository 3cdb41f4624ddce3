import type { Bus, Logger, Store } from '@fleetgraph/kit';
import { IMAGES_STREAM } from '@fleetgraph/schema';
import { serveImageNodes, serveImageRequests } from './adapters/image.bus.js';
import { ImageEvents } from './adapters/image.events.js';
import { ImageRepository } from './adapters/image.repo.js';
import { ImageRequests } from './app/image-requests.js';
import { ImageWorker, type WorkerOptions } from './app/image-worker.js';
import { PublicImages } from './app/public-images.js';
import type { ImageClouds } from './app/ports.js';
import { ImageRecords } from './app/records.js';

export interface ImagesServiceOptions {
  store: Store;
  bus: Bus;
  clouds: ImageClouds;
  log: Logger;
  worker?: Partial<WorkerOptions>;
}

/** The images service without its HTTP server: repositories, NATS handlers, the catalogue and the background worker. */
export interface ImagesService {
  images: ImageRepository;
  requests: ImageRequests;
  publicImages: PublicImages;
  worker: ImageWorker;
  /** Settles when the first seeding of the catalogue succeeded (or the service stopped). */
  seeded: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Wires the service: opens its collections, ensures the IMAGES stream, serves
 * `images.v1.resolve` and `images.v1.node.Image`, seeds the out-of-the-box catalogue (retrying until the clouds answer)
 * and starts the worker, which resumes whatever the store says is in progress.
 */
export async function startImagesService(options: ImagesServiceOptions): Promise<ImagesService> {
  const { store, bus, clouds, log } = options;
  await bus.ensureStreams([IMAGES_STREAM]);
  const images = await ImageRepository.open(store);
  const events = new ImageEvents(bus, log);
  const records = new ImageRecords(images, events);
  const publicImages = new PublicImages(records, clouds, log);
  const worker = new ImageWorker(images, clouds, publicImages, events, log, options.worker);
  records.onWork = (id) => worker.kick(id);
  const requests = new ImageRequests(records, clouds, publicImages);
  serveImageRequests(bus, requests, log);
  serveImageNodes(bus, images);

  const stopping = new AbortController();
  const seeded = publicImages.seedInBackground(stopping.signal);
  worker.start();
  return {
    images,
    requests,
    publicImages,
    worker,
    seeded,
    async stop() {
      stopping.abort();
      await worker.stop();
      await seeded;
    },
  };
}
