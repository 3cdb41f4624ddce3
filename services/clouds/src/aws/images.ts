import {
  CopyImageCommand,
  CreateImageCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
} from '@aws-sdk/client-ec2';
import type { CloudImage, CopyImageInput, CreateImageFromMachineInput, Tags } from '../provider.js';
import { ec2ClientToken } from '../tags.js';
import { ignoring, type Ec2Context } from './ec2.js';
import { ec2ErrorCode, tagFilters, toImage, toTags } from './mapping.js';

const AMI_ID = /^ami-[0-9a-zA-Z]+$/;

/**
 * Images on EC2: AMIs, looked up by id or by name among the image owners, copied between regions
 * with a client token, captured from instances, deregistered with their snapshots.
 */
export class AwsImages {
  constructor(private readonly ctx: Ec2Context) {}

  async describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.ctx.call('describeImage', async () => {
      const ec2 = this.ctx.client(region);
      if (AMI_ID.test(idOrName)) {
        try {
          const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [idOrName] }));
          return Images[0] ? toImage(region, Images[0]) : null;
        } catch (error) {
          if (ec2ErrorCode(error)?.startsWith('InvalidAMIID.')) return null;
          throw error;
        }
      }
      const { Images = [] } = await ec2.send(
        new DescribeImagesCommand({ Owners: this.ctx.imageOwners, Filters: [{ Name: 'name', Values: [idOrName] }] }),
      );
      const newest = Images.sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
      return newest ? toImage(region, newest) : null;
    });
  }

  async findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.ctx.call('findImages', async () => {
      const { Images = [] } = await this.ctx
        .client(region)
        .send(new DescribeImagesCommand({ Owners: this.ctx.imageOwners, Filters: tagFilters(tags) }));
      return Images.map((image) => toImage(region, image));
    });
  }

  async copyImage(input: CopyImageInput): Promise<CloudImage> {
    return this.ctx.call('copyImage', async () => {
      const tags = input.tags ?? {};
      const { ImageId } = await this.ctx.client(input.region).send(
        new CopyImageCommand({
          SourceRegion: input.sourceRegion,
          SourceImageId: input.sourceImageId,
          Name: input.name,
          Description: input.description,
          ClientToken: ec2ClientToken(input.clientToken),
          ...(Object.keys(tags).length > 0
            ? { TagSpecifications: [{ ResourceType: 'image', Tags: toTags(tags) }] }
            : {}),
        }),
      );
      // EC2 is eventually consistent: a fresh AMI may not be visible to DescribeImages yet.
      return (
        (await this.describeImage(input.region, ImageId!)) ?? {
          id: ImageId!,
          name: input.name,
          region: input.region,
          status: 'pending',
          tags,
        }
      );
    });
  }

  async createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    return this.ctx.call('createImageFromMachine', async () => {
      const tags = input.tags ?? {};
      let imageId: string;
      try {
        const created = await this.ctx.client(input.region).send(
          new CreateImageCommand({
            InstanceId: input.machineId,
            Name: input.name,
            Description: input.description,
            ...(Object.keys(tags).length > 0
              ? { TagSpecifications: [{ ResourceType: 'image', Tags: toTags(tags) }] }
              : {}),
          }),
        );
        imageId = created.ImageId!;
      } catch (error) {
        // CreateImage takes no client token; AMI names are unique per account and region, so a
        // retry finds the image the first call made.
        if (ec2ErrorCode(error) !== 'InvalidAMIName.Duplicate') throw error;
        const { Images = [] } = await this.ctx
          .client(input.region)
          .send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [input.name] }] }));
        if (!Images[0]) throw error;
        return toImage(input.region, Images[0]);
      }
      return (
        (await this.describeImage(input.region, imageId)) ?? {
          id: imageId,
          name: input.name,
          region: input.region,
          status: 'pending',
          tags,
        }
      );
    });
  }

  async deleteImage(region: string, imageId: string): Promise<void> {
    await this.ctx.call('deleteImage', () =>
      ignoring(['InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'], () =>
        this.ctx.client(region).send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true })),
      ),
    );
  }
}
