import type { CloudImage } from '@fleetgraph/clouds';
import {
  CATALOGUE,
  catalogueSearchTags,
  configuredImage,
  ImageTagKeys,
  pickCatalogueImage,
  PUBLIC_TENANT,
  type CatalogueEntry,
} from '../domain/catalogue.js';
import type { CopyJob, Image } from '../domain/image.js';
import { commit, fail, timedOut, wait, type ImagePhase, type PhaseDeps } from './image-phases.js';
import type { ImageCloud } from './ports.js';
import { catalogueDefinition } from './public-images.js';

/**
 * Copying an out-of-the-box image into a region that lacks it: start the copy (or find one made
 * before), then wait until the cloud says it is available.
 */

/**
 * start: a copy made before (by a previous attempt, another replica, a wiped service) is used as
 * is; else the copy is started.
 */
const start: ImagePhase<CopyJob> = async (deps, { image, job, cloud }) => {
  const { provider } = cloud;
  const entry = entryOf(image);
  if (!entry)
    return fail(
      `${image.os} ${image.osVersion} with Kubernetes ${image.kubernetesVersion} is no longer in the catalogue`,
    );
  const there = pickCatalogueImage(entry, await provider.findImages(image.region, catalogueSearchTags(entry)));
  if (there)
    return commit({ job: { ...job, step: 'wait', cloudImageId: there.id } }, { type: 'COPY_STARTED' }, [
      `found ${there.id} in ${image.region}`,
    ]);
  const source = job.source ?? (await copySource(deps, cloud, entry, image));
  if (!source)
    return fail(`no ${entry.os} ${entry.osVersion} image with Kubernetes ${entry.kubernetesMinor} to copy from`);
  const original = await provider.describeImage(source.region, source.imageId);
  if (!original || original.status === 'failed')
    return fail(`the image to copy, ${source.imageId} in ${source.region}, is ${original ? 'failed' : 'gone'}`);
  if (original.status !== 'available') return wait;
  const copy = await provider.copyImage({
    sourceRegion: source.region,
    sourceImageId: source.imageId,
    region: image.region,
    name: copyName(original, job.attempt),
    ...(original.description ? { description: original.description } : {}),
    tags: { ...catalogueTags(original), [ImageTagKeys.catalogue]: entry.key, [ImageTagKeys.imageId]: image.id },
    clientToken: `fleetgraph-image-copy-${image.id}-${job.attempt}`,
  });
  return commit({ job: { ...job, step: 'wait', source, cloudImageId: copy.id } }, { type: 'COPY_STARTED' }, [
    `copying ${source.imageId} from ${source.region} to ${image.region} as ${copy.id}`,
  ]);
};

/** wait: until the copy is available, failed, or the attempt timed out. */
const waitForCopy: ImagePhase<CopyJob> = async ({ options }, { image, job, cloud }) => {
  if (!entryOf(image))
    return fail(
      `${image.os} ${image.osVersion} with Kubernetes ${image.kubernetesVersion} is no longer in the catalogue`,
    );
  const copy = job.cloudImageId ? await cloud.provider.describeImage(image.region, job.cloudImageId) : null;
  if (copy?.status === 'available') {
    return commit(
      { artifactId: copy.id, kubernetesVersion: copy.tags[ImageTagKeys.kubernetesVersion] ?? image.kubernetesVersion },
      { type: 'AVAILABLE' },
      [`${copy.id} is available in ${image.region}`],
    );
  }
  if (copy?.status === 'failed') return fail(copy.statusMessage ?? `the copy ${copy.id} failed`);
  if (timedOut(job, options.copyTimeoutMs))
    return fail(`the copy did not complete within ${Math.round(options.copyTimeoutMs / 60_000)} minutes`);
  // A fresh copy may not be visible yet (clouds are eventually consistent): keep looking until the timeout.
  return wait;
};

/** The phases of a copy, by step. */
export const copyPhases: Record<CopyJob['step'], ImagePhase<CopyJob>> = { start, wait: waitForCopy };

function entryOf(image: Image): CatalogueEntry | undefined {
  return CATALOGUE.find(
    (e) => e.os === image.os && e.osVersion === image.osVersion && catalogueDefinition(e).signature === image.signature,
  );
}

/** Where the out-of-the-box image of an entry is copied from. */
async function copySource(
  { images }: PhaseDeps,
  cloud: ImageCloud,
  entry: CatalogueEntry,
  image: Image,
): Promise<CopyJob['source']> {
  if (cloud.catalogue.kind === 'configured') {
    const where = configuredImage(cloud.catalogue.images, entry, image.region);
    return where.kind === 'copy' ? { region: where.sourceRegion, imageId: where.sourceImageId } : null;
  }
  const region = cloud.catalogue.sourceRegion;
  const known = await images.findBySignature({
    tenantId: PUBLIC_TENANT,
    cloud: cloud.type,
    region,
    signature: image.signature,
  });
  if (known?.status === 'READY' && known.artifactId) return { region, imageId: known.artifactId };
  const found = pickCatalogueImage(entry, await cloud.provider.findImages(region, catalogueSearchTags(entry)));
  return found ? { region, imageId: found.id } : null;
}

/** The tags that make a copy recognisable as the catalogue image it copies. */
function catalogueTags(image: CloudImage): Record<string, string> {
  const keys = [ImageTagKeys.os, ImageTagKeys.osVersion, ImageTagKeys.kubernetesVersion, ImageTagKeys.hardening];
  return Object.fromEntries(keys.filter((k) => image.tags[k] !== undefined).map((k) => [k, image.tags[k]!]));
}

/** The copy's name: the original's, with the attempt after the first (names are unique per account and region). */
function copyName(original: CloudImage, attempt: number): string {
  const suffix = attempt > 1 ? `-r${attempt}` : '';
  return `${original.name.slice(0, 128 - suffix.length)}${suffix}`;
}
