export { buildImagesSchema, type ImagesDeps } from './schema/index.js';
export { startImagesService, type ImagesService, type ImagesServiceOptions } from './service.js';
export {
  Clouds,
  createClouds,
  type CloudSettings,
  type CloudsConfig,
  type CatalogueSource,
} from './adapters/clouds.js';
export { ImageRepository, type ImageRecord } from './adapters/image.repo.js';
export { BUILDER_CLUSTER_ID, BUILDER_POOL } from './app/build-phases.js';
export { DEFAULT_WORKER_OPTIONS, type WorkerOptions } from './app/image-phases.js';
export type { ImageClouds, ImageCloud, ImageStore } from './app/ports.js';
export {
  CATALOGUE,
  KUBERNETES_MINORS,
  PUBLIC_TENANT,
  findCatalogueEntry,
  type CatalogueEntry,
} from './domain/catalogue.js';
export { signatureOf, imageDefinition, type ImageDefinition } from './domain/signature.js';
