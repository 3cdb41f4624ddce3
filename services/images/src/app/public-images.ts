import { isCloudError, type CloudImage } from '@fleetgraph/clouds';
import type { Logger } from '@fleetgraph/kit';
import pRetry from 'p-retry';
import {
  CATALOGUE,
  catalogueSearchTags,
  configuredImage,
  ImageTagKeys,
  pickCatalogueImage,
  PUBLIC_TENANT,
  type CatalogueEntry,
} from '../domain/catalogue.js';
import type { CopyJob, ImageRecord } from '../domain/image.js';
import { imageDefinition, signatureOf, type ImageDefinition } from '../domain/signature.js';
import { CloudUnavailableError, ImageRequestError } from './errors.js';
import type { ImageCloud, ImageClouds } from './ports.js';
import { newRecord, type ImageRecords } from './records.js';

/** The definition and signature of an out-of-the-box image: its OS version and Kubernetes minor. */
export function catalogueDefinition(entry: CatalogueEntry): { definition: ImageDefinition; signature: string } {
  const definition = imageDefinition({ name: entry.os, version: entry.osVersion }, entry.kubernetesMinor);
  return { definition, signature: signatureOf(definition) };
}

/**
 * The out-of-the-box catalogue (tenant `public`): seeded from each cloud where it is published,
 * and copied into other regions when asked for there.
 */
export class PublicImages {
  constructor(
    private readonly records: ImageRecords,
    private readonly clouds: ImageClouds,
    private readonly log: Logger,
  ) {}

  /** The catalogue image of an entry in a region, creating it (READY, or COPYING) when the service has none yet. */
  async ensure(cloud: ImageCloud, entry: CatalogueEntry, region: string, now = new Date()): Promise<ImageRecord> {
    const { definition, signature } = catalogueDefinition(entry);
    const key = { tenantId: PUBLIC_TENANT, cloud: cloud.type, region, signature };
    const existing = await this.records.repo.findBySignature(key);
    if (existing) return this.records.reuse(existing, now);

    const base = {
      ...key,
      projectId: PUBLIC_TENANT,
      os: entry.os,
      osVersion: entry.osVersion,
      kubernetesVersion: entry.kubernetesMinor,
      source: 'OUT_OF_BOX' as const,
      ansibleRoles: [],
      description: entry.description,
      definition,
    };
    const copy = (source: CopyJob['source'], message: string) =>
      newRecord(
        {
          ...base,
          artifactId: null,
          message,
          job: { kind: 'copy', step: 'start', attempt: 1, source, cloudImageId: null, startedAt: now.toISOString() },
        },
        now,
      );

    if (cloud.catalogue.kind === 'configured') {
      const where = configuredImage(cloud.catalogue.images, entry, region);
      if (where.kind === 'missing') {
        throw new ImageRequestError(
          `no out-of-the-box image ${entry.key} is configured for ${cloud.type}: see IMAGES_${cloud.type}_CATALOGUE`,
        );
      }
      if (where.kind === 'present')
        return this.records.createOrGet(
          newRecord({ ...base, artifactId: where.imageId, message: null, job: null }, now),
        );
      return this.records.createOrGet(
        copy({ region: where.sourceRegion, imageId: where.sourceImageId }, `copying from ${where.sourceRegion}`),
      );
    }

    const found = await this.search(cloud, entry, region);
    if (found?.status === 'available') {
      const kubernetesVersion = found.tags[ImageTagKeys.kubernetesVersion] ?? base.kubernetesVersion;
      const description = found.description ?? base.description;
      return this.records.createOrGet(
        newRecord({ ...base, kubernetesVersion, description, artifactId: found.id, message: null, job: null }, now),
      );
    }
    if (found) {
      // A copy is on its way already (made before this service knew of it): wait for it.
      return this.records.createOrGet(
        newRecord(
          {
            ...base,
            artifactId: null,
            message: `waiting for ${found.id}`,
            job: {
              kind: 'copy',
              step: 'wait',
              attempt: 1,
              source: null,
              cloudImageId: found.id,
              startedAt: now.toISOString(),
            },
          },
          now,
        ),
      );
    }
    if (region === cloud.catalogue.sourceRegion) {
      throw new ImageRequestError(
        `${cloud.type} publishes no ${entry.os} ${entry.osVersion} image ` +
          `with Kubernetes ${entry.kubernetesMinor} in ${region}`,
      );
    }
    return this.records.createOrGet(copy(null, `copying from ${cloud.catalogue.sourceRegion}`));
  }

  /** The cloud's out-of-the-box image of an entry in a region, if it has one. */
  async search(cloud: ImageCloud, entry: CatalogueEntry, region: string): Promise<CloudImage | null> {
    try {
      return pickCatalogueImage(entry, await cloud.provider.findImages(region, catalogueSearchTags(entry)));
    } catch (error) {
      if (isCloudError(error))
        throw new CloudUnavailableError(`could not search ${cloud.type} ${region} for images: ${error.message}`, {
          cause: error,
        });
      throw error;
    }
  }

  /**
   * Records every catalogue image a cloud publishes: found by tags in the local cloud's source
   * region, or listed by configuration for AWS and Azure. Safe to run on any number of replicas.
   * @returns how many catalogue images are recorded
   */
  async seed(now = new Date()): Promise<number> {
    let count = 0;
    for (const cloud of this.clouds.configured) {
      if (cloud.catalogue.kind === 'configured') {
        for (const entry of CATALOGUE) {
          for (const region of Object.keys(cloud.catalogue.images[entry.key] ?? {})) {
            await this.ensure(cloud, entry, region, now);
            count++;
          }
        }
        continue;
      }
      const region = cloud.catalogue.sourceRegion;
      for (const entry of CATALOGUE) {
        const found = await this.search(cloud, entry, region);
        if (!found) {
          this.log.warn(
            { cloud: cloud.type, region, entry: entry.key },
            'the cloud publishes no image for this catalogue entry',
          );
          continue;
        }
        await this.ensure(cloud, entry, region, now);
        count++;
      }
    }
    return count;
  }

  /** Seeds until it succeeds (the cloud may start after the service), with capped backoff. */
  async seedInBackground(signal: AbortSignal, retryMs = 2_000): Promise<void> {
    try {
      const count = await pRetry(() => this.seed(), {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: retryMs,
        maxTimeout: 60_000,
        signal,
        onFailedAttempt: ({ error, attemptNumber }) =>
          this.log.warn({ err: error, attempt: attemptNumber - 1 }, 'could not seed the catalogue yet; retrying'),
      });
      this.log.info({ count }, 'out-of-the-box catalogue seeded');
    } catch (error) {
      // Stopped before it succeeded; anything else is a bug, which retrying would not cure.
      if (!signal.aborted) this.log.error({ err: error }, 'could not seed the catalogue');
    }
  }
}
