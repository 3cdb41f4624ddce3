export { buildImagesSchema, type ImagesDeps } from './schema/index.js';
export { startImagesService, type ImagesService, type ImagesServiceOptions } from './service.js';
export { Clouds, createClouds, type CloudSettings, type CloudsConfig, type CatalogueSource } from './adapters/clouds.js';
export { ImageRepository, type ImageRecord } from './adapters/image.repo.js';
export { BUILDER_CLUSTER_ID, BUILDER_POOL, DEFAULT_WORKER_OPTIONS, type WorkerOptions } from './app/image-worker.js';
export { CATALOGUE, KUBERNETES_MINORS, PUBLIC_TENANT, findCatalogueEntry, type CatalogueEntry } from './domain/catalogue.js';
export { signatureOf, imageDefinition, type ImageDefinition } from './domain/signature.js';
