import type { CloudProvider, Region } from '@fleetgraph/clouds';
import type { ConfiguredCatalogue } from '../domain/catalogue.js';
import type { CloudType, ImageRecord, NewImageRecord } from '../domain/image.js';

/**
 * What the images service's core (requests, the catalogue, the worker and its phases) needs,
 * implemented by the adapters: the store (adapters/image.repo.ts), the clouds
 * (adapters/clouds.ts) and the status events (adapters/image.events.ts). The core knows no adapter.
 */

/** Where images are kept. Every update is a compare-and-set on the version read. */
export interface ImageStore {
  get(id: string): Promise<ImageRecord | null>;
  findBySignature(key: {
    tenantId: string;
    cloud: CloudType;
    region: string;
    signature: string;
  }): Promise<ImageRecord | null>;
  /** @returns null when an image of the same (tenant, cloud, region, signature) exists already. */
  insert(image: NewImageRecord): Promise<ImageRecord | null>;
  /** @throws VersionConflictError when it changed since it was read. */
  replace(image: ImageRecord): Promise<ImageRecord>;
  /** Images with work left (PENDING, COPYING, BUILDING). */
  inProgress(limit?: number): Promise<ImageRecord[]>;
  /** Images whose last status change may not have been published. */
  withPendingEvents(limit?: number): Promise<ImageRecord[]>;
  /** Records that a cluster uses an image; once per (tenant, cluster, image). */
  recordUse(
    use: { tenantId: string; projectId: string; clusterId: string; imageId: string },
    now?: Date,
  ): Promise<void>;
}

/** How the out-of-the-box images of a cloud are found. */
export type CatalogueSource =
  /** Search the cloud's tagged images (the local cloud publishes them in `sourceRegion`). */
  | { kind: 'discover'; sourceRegion: string }
  /** Image ids per catalogue entry and region, from configuration (AWS, Azure). */
  | { kind: 'configured'; images: ConfiguredCatalogue };

/** One cloud the service works on: its provider (`@fleetgraph/clouds`' interface) and how images are made there. */
export interface ImageCloud {
  type: CloudType;
  provider: CloudProvider;
  catalogue: CatalogueSource;
  /** The machine size of image builders. */
  builderInstanceType: string;
  /**
   * Whether builder runs are simulated (the local cloud runs no user data) rather than awaited
   * (cloud-init powers the builder off).
   */
  simulateBuilds: boolean;
}

/** The clouds the service is configured for. */
export interface ImageClouds {
  get(type: CloudType): ImageCloud | undefined;
  readonly configured: ImageCloud[];
  /** The cloud's regions (cached); a failure is a CloudError. */
  regions(type: CloudType): Promise<Region[]>;
  region(type: CloudType, name: string): Promise<Region | null>;
}

/** Where status changes go for watchers (`images.v1.status`). */
export interface ImageStatusEvents {
  /**
   * Publishes the image's pending event and clears the flag; an image whose publish failed keeps
   * it, for a later sweep.
   */
  flush(images: Pick<ImageStore, 'replace'>, image: ImageRecord): Promise<ImageRecord>;
}
