import type { GalleryImageVersion } from '@azure/arm-compute';
import { CloudError } from '../errors.js';
import type { CloudImage, CopyImageInput, CreateImageFromMachineInput, Tags } from '../provider.js';
import { hasTags } from '../tags.js';
import { GALLERY_IMAGE_ID, orNull, URN, vmNameOf, type ArmContext } from './arm.js';
import { sameRegion, toImage } from './mapping.js';

/** Every image is a gallery image definition with this one version. */
const IMAGE_VERSION = '1.0.0';

/**
 * Images on Azure: Azure Compute Gallery image versions, in per-region galleries
 * (`<prefix>_<region>`); copying to a region adds it to the version's target regions, which is
 * how Azure replicates images. Marketplace images are taken as `publisher:offer:sku:version`.
 */
export class AzureImages {
  constructor(private readonly arm: ArmContext) {}

  /** A gallery version as the image it is in `region`, owned by this subscription. */
  private toImage(region: string, name: string, version: GalleryImageVersion, description?: string): CloudImage | null {
    return toImage(region, name, version, this.arm.options.subscriptionId, description);
  }

  private galleryName(region: string): string {
    return (
      `${(this.arm.options.galleryPrefix ?? 'fleetgraph').replace(/[^A-Za-z0-9_.]/g, '_')}_` +
      `${region.replace(/[^A-Za-z0-9]/g, '').toLowerCase()}`
    );
  }

  /** Every gallery image (definition + its version) of this resource group targeting `region`. */
  private async galleryImages(region: string, keep: (name: string, tags: Tags) => boolean): Promise<CloudImage[]> {
    const images: CloudImage[] = [];
    for await (const gallery of this.arm.compute.galleries.listByResourceGroup(this.arm.rg)) {
      for await (const definition of this.arm.compute.galleryImages.listByGallery(this.arm.rg, gallery.name!)) {
        if (!keep(definition.name!, definition.tags ?? {})) continue;
        const version = await orNull(
          this.arm.compute.galleryImageVersions.get(this.arm.rg, gallery.name!, definition.name!, IMAGE_VERSION, {
            expand: 'ReplicationStatus',
          }),
        );
        const image = version && this.toImage(region, definition.name!, version, definition.description);
        if (image) images.push(image);
      }
    }
    return images;
  }

  private async describeGalleryVersion(region: string, id: string): Promise<CloudImage | null> {
    const [, , gallery, image, version] = GALLERY_IMAGE_ID.exec(id) ?? [];
    if (!gallery || !image || !version) return null;
    const found = await orNull(
      this.arm.compute.galleryImageVersions.get(this.arm.rg, gallery, image, version, { expand: 'ReplicationStatus' }),
    );
    return found && this.toImage(region, image, found);
  }

  private async describeMarketplace(region: string, urn: string): Promise<CloudImage | null> {
    const [, publisher, offer, sku, version] = URN.exec(urn)!;
    let resolved = version!;
    if (resolved === 'latest') {
      const versions = await orNull(
        this.arm.compute.virtualMachineImages.list(region, publisher!, offer!, sku!, { top: 1, orderby: 'name desc' }),
      );
      if (!versions?.[0]?.name) return null;
      resolved = versions[0].name;
    }
    const image = await orNull(this.arm.compute.virtualMachineImages.get(region, publisher!, offer!, sku!, resolved));
    return image
      ? { id: urn, name: urn, region, status: 'available', tags: { ...(image.tags ?? {}) }, ownerId: publisher! }
      : null;
  }

  async describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.arm.call('describeImage', async () => {
      if (URN.test(idOrName)) return this.describeMarketplace(region, idOrName);
      if (GALLERY_IMAGE_ID.test(idOrName)) return this.describeGalleryVersion(region, idOrName);
      return (await this.galleryImages(region, (name) => name === idOrName))[0] ?? null;
    });
  }

  async findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.arm.call('findImages', () => this.galleryImages(region, (_name, have) => hasTags(have, tags)));
  }

  async copyImage(input: CopyImageInput): Promise<CloudImage> {
    const op = 'copyImage';
    return this.arm.call(op, async () => {
      if (URN.test(input.sourceImageId)) {
        // Marketplace images are in every region already.
        const image = await this.describeMarketplace(input.region, input.sourceImageId);
        if (!image)
          throw this.arm.invalid(
            op,
            `marketplace image ${input.sourceImageId} is not offered in ${input.region}`,
            'PlatformImageNotFound',
          );
        return image;
      }
      const [, , gallery, image, versionName] = GALLERY_IMAGE_ID.exec(input.sourceImageId) ?? [];
      if (!gallery || !image || !versionName)
        throw this.arm.invalid(op, `${input.sourceImageId} is not an Azure Compute Gallery image version id`);
      const version = await orNull(this.arm.compute.galleryImageVersions.get(this.arm.rg, gallery, image, versionName));
      if (!version)
        throw new CloudError({
          code: 'NOT_FOUND',
          message: `image ${input.sourceImageId} does not exist`,
          cloud: 'AZURE',
          operation: op,
          cloudCode: 'ResourceNotFound',
        });
      const targets = version.publishingProfile?.targetRegions ?? [];
      if (!targets.some((t) => sameRegion(t.name, input.region))) {
        // Adding a target region is how a gallery image is copied; replication is awaited.
        await this.arm.compute.galleryImageVersions.update(
          this.arm.rg,
          gallery,
          image,
          versionName,
          { publishingProfile: { targetRegions: [...targets, { name: input.region, regionalReplicaCount: 1 }] } },
          this.arm.poll,
        );
      }
      const copied = await this.describeGalleryVersion(input.region, input.sourceImageId);
      return (
        copied ?? {
          id: input.sourceImageId,
          name: image,
          region: input.region,
          status: 'pending',
          tags: input.tags ?? {},
        }
      );
    });
  }

  async createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    const op = 'createImageFromMachine';
    const vmName = vmNameOf(input.machineId);
    const gallery = this.galleryName(input.region);
    const tags = input.tags ?? {};
    return this.arm.call(op, async () => {
      const existing = await orNull(
        this.arm.compute.galleryImageVersions.get(this.arm.rg, gallery, input.name, IMAGE_VERSION, {
          expand: 'ReplicationStatus',
        }),
      );
      if (existing) return this.toImage(input.region, input.name, existing, input.description)!;

      const vm = await orNull(this.arm.compute.virtualMachines.get(this.arm.rg, vmName));
      if (!vm)
        throw new CloudError({
          code: 'NOT_FOUND',
          message: `machine ${input.machineId} does not exist`,
          cloud: 'AZURE',
          operation: op,
          cloudCode: 'ResourceNotFound',
        });

      await this.arm.compute.galleries.createOrUpdate(
        this.arm.rg,
        gallery,
        { location: input.region, description: 'Fleetgraph machine images' },
        this.arm.poll,
      );
      await this.arm.compute.galleryImages.createOrUpdate(
        this.arm.rg,
        gallery,
        input.name,
        {
          location: input.region,
          tags,
          description: input.description,
          osType: 'Linux',
          osState: 'Generalized',
          hyperVGeneration: 'V2',
          identifier: { publisher: 'fleetgraph', offer: 'kubernetes-node', sku: input.name },
        },
        this.arm.poll,
      );
      // A generalized image needs a deallocated, generalized source VM.
      await this.arm.compute.virtualMachines.deallocate(this.arm.rg, vmName, this.arm.poll);
      await this.arm.compute.virtualMachines.generalize(this.arm.rg, vmName);
      const version = await this.arm.compute.galleryImageVersions.createOrUpdate(
        this.arm.rg,
        gallery,
        input.name,
        IMAGE_VERSION,
        {
          location: input.region,
          tags,
          publishingProfile: { targetRegions: [{ name: input.region, regionalReplicaCount: 1 }] },
          storageProfile: { source: { virtualMachineId: vm.id! } },
        },
        this.arm.poll,
      );
      return (
        (await this.describeGalleryVersion(input.region, version.id!)) ?? {
          id: version.id!,
          name: input.name,
          region: input.region,
          status: 'pending',
          tags,
        }
      );
    });
  }

  async deleteImage(region: string, imageId: string): Promise<void> {
    await this.arm.call('deleteImage', async () => {
      const [, , gallery, image, versionName] = GALLERY_IMAGE_ID.exec(imageId) ?? [];
      if (!gallery || !image || !versionName) return;
      const version = await orNull(this.arm.compute.galleryImageVersions.get(this.arm.rg, gallery, image, versionName));
      if (!version) return;
      const others = (version.publishingProfile?.targetRegions ?? []).filter((t) => !sameRegion(t.name, region));
      if (others.length > 0 && !sameRegion(version.location, region)) {
        await this.arm.compute.galleryImageVersions.update(
          this.arm.rg,
          gallery,
          image,
          versionName,
          { publishingProfile: { targetRegions: others } },
          this.arm.poll,
        );
        return;
      }
      await this.arm.compute.galleryImageVersions.delete(this.arm.rg, gallery, image, versionName, this.arm.poll);
      await this.arm.compute.galleryImages.delete(this.arm.rg, gallery, image, this.arm.poll);
    });
  }
}
